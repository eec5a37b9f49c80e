//! `logwire query` and `logwire tail`: the read side of the store.

use crate::commands::Result;
use anyhow::{bail, Context};
use clap::Args;
use logwire_model::Record;
use logwire_store::{render_json_line, render_table, QueryResult, Tailer};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Args, Debug)]
pub struct QueryArgs {
    /// SQLite store file.
    #[arg(long, default_value = crate::DEFAULT_DB)]
    pub db: PathBuf,
    /// One JSON object per row (keys = column names; `attrs` as an object) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// SQL to run, read-only. Example: "SELECT name, count(*) FROM events GROUP BY name".
    pub sql: String,
}

#[derive(Args, Debug)]
pub struct TailArgs {
    /// SQLite store file.
    #[arg(long, default_value = crate::DEFAULT_DB)]
    pub db: PathBuf,
    /// Print what is already stored first.
    #[arg(long)]
    pub from_start: bool,
    /// One JSON object per record.
    #[arg(long)]
    pub json: bool,
    /// Poll interval in milliseconds.
    #[arg(long, default_value_t = 200)]
    pub interval_ms: u64,
    /// Stop after this many records (default: follow until Ctrl-C).
    #[arg(long)]
    pub limit: Option<u64>,
}

fn require_store(db: &Path) -> Result<()> {
    if !db.exists() {
        bail!("no store at {}: start `logwire serve` first or pass --db PATH", db.display());
    }
    Ok(())
}

pub fn run_query(args: QueryArgs) -> Result<ExitCode> {
    require_store(&args.db)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.json {
        logwire_store::query_each(&args.db, &args.sql, |columns, row| {
            writeln!(out, "{}", render_json_line(columns, row))
        })
        .with_context(|| format!("query on {} failed", args.db.display()))?;
    } else {
        let result: QueryResult = logwire_store::query(&args.db, &args.sql)
            .with_context(|| format!("query on {} failed", args.db.display()))?;
        let _ = write!(out, "{}", render_table(&result));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_tail(args: TailArgs) -> Result<ExitCode> {
    require_store(&args.db)?;
    let mut tailer =
        Tailer::new(&args.db, !args.from_start).with_context(|| format!("cannot read {}", args.db.display()))?;
    let mut printed = 0u64;
    let stdout = std::io::stdout();
    loop {
        let batch = tailer.poll().with_context(|| format!("cannot read {}", args.db.display()))?;
        let mut out = stdout.lock();
        for (_, rec) in batch {
            let line = if args.json { serde_json::to_string(&rec).unwrap_or_default() } else { format_record(&rec) };
            if writeln!(out, "{line}").is_err() {
                return Ok(ExitCode::SUCCESS); // stdout closed (e.g. piped into head)
            }
            printed += 1;
            if args.limit.is_some_and(|l| printed >= l) {
                return Ok(ExitCode::SUCCESS);
            }
        }
        let _ = out.flush();
        drop(out);
        std::thread::sleep(Duration::from_millis(args.interval_ms));
    }
}

/// One human line per record: time, source, kind, trace, name, level, attrs, body.
pub fn format_record(r: &Record) -> String {
    let mut s = format!("{} {:<4} {:<10} {} {}", format_time(r.time_ns), r.source, r.kind, r.trace_id, r.name);
    if let Some(l) = r.level {
        s.push_str(&format!(" [{l}]"));
    }
    if !r.attrs.is_empty() {
        s.push(' ');
        s.push_str(&serde_json::Value::Object(r.attrs.clone()).to_string());
    }
    if let Some(b) = &r.body {
        s.push_str(" | ");
        s.push_str(b);
    }
    s
}

/// RFC 3339 UTC with microseconds, from ns since the epoch.
pub fn format_time(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let micros = ns.rem_euclid(1_000_000_000) / 1000;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(format_time(1_795_000_000_123_456_789), "2026-11-18T11:06:40.123456Z");
    }
}
