//! Plain-text and JSON-lines rendering of query results, for `logwire query`.

use crate::read::QueryResult;
use serde_json::Value;
use std::fmt::Write;

/// An aligned plain-text table: a header line, a rule, one line per row, and a count line such as
/// `(3 rows)`. Columns are separated by ` | `; numbers are right-aligned, everything else left-aligned.
/// NULL is shown as `NULL`, text as is (control characters escaped as `\n`, `\t`, `\u{1b}` so a row stays
/// on one line), JSON objects (BLOBs) as compact JSON. Trailing spaces are trimmed.
pub fn render_table(result: &QueryResult) -> String {
    let cells: Vec<Vec<String>> = result.rows.iter().map(|row| row.iter().map(cell_text).collect()).collect();
    let mut widths: Vec<usize> = result.columns.iter().map(|c| c.chars().count()).collect();
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    if !result.columns.is_empty() {
        let header: Vec<(&str, bool)> = result.columns.iter().map(|c| (c.as_str(), false)).collect();
        push_line(&mut out, &widths, &header);
        let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
        out.push_str(&rule.join("-+-"));
        out.push('\n');
        for (row, values) in cells.iter().zip(&result.rows) {
            let line: Vec<(&str, bool)> =
                row.iter().zip(values).map(|(text, value)| (text.as_str(), value.is_number())).collect();
            push_line(&mut out, &widths, &line);
        }
    }
    let n = result.rows.len();
    let _ = writeln!(out, "({n} {})", if n == 1 { "row" } else { "rows" });
    out
}

/// Append one table line; each cell is `(text, right_aligned)`.
fn push_line(out: &mut String, widths: &[usize], cells: &[(&str, bool)]) {
    let start = out.len();
    for (i, ((text, right), &width)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            out.push_str(" | ");
        }
        // Width in `format!` counts chars, as `widths` does.
        let _ = if *right { write!(out, "{text:>width$}") } else { write!(out, "{text:<width$}") };
    }
    let trimmed = out[start..].trim_end_matches(' ').len();
    out.truncate(start + trimmed);
    out.push('\n');
}

/// How one value is shown in a table cell.
pub fn cell_text(value: &Value) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::String(s) => {
            let mut text = String::with_capacity(s.len());
            for c in s.chars() {
                if c.is_control() {
                    text.extend(c.escape_default());
                } else {
                    text.push(c);
                }
            }
            text
        }
        other => other.to_string(),
    }
}

/// One JSON object per row, one per line, keys = column names in column order.
///
/// The `attrs` column holds JSON *text* in the database; here a value of a column named exactly `attrs`
/// that is a string holding a valid JSON object is emitted as that object (so `jq '.attrs.args.port'` works
/// on `SELECT * FROM events`). Any other value, in `attrs` or elsewhere, is emitted as it came. Objects are
/// written field by field, so a query with two columns of the same name yields both keys.
pub fn render_json_lines(result: &QueryResult) -> String {
    let mut out = String::new();
    for row in &result.rows {
        out.push_str(&render_json_line(&result.columns, row));
        out.push('\n');
    }
    out
}

/// One row as a JSON object on one line (no newline); see [`render_json_lines`].
pub fn render_json_line(columns: &[String], row: &[Value]) -> String {
    let mut out = String::from("{");
    for (i, (column, value)) in columns.iter().zip(row).enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(column.clone()).to_string());
        out.push(':');
        match (column.as_str(), value) {
            ("attrs", Value::String(text)) => match serde_json::from_str::<Value>(text) {
                Ok(object @ Value::Object(_)) => out.push_str(&object.to_string()),
                _ => out.push_str(&value.to_string()),
            },
            _ => out.push_str(&value.to_string()),
        }
    }
    out.push('}');
    out
}
