//! `logwire g3 …`: import captured g3proxy logs, print task statistics.

use crate::commands::Result;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use logwire_g3::stream::StreamDecoder;
use logwire_model::{now_ns, Record};
use logwire_store::{render_json_lines, render_table, Store, StoreHandle, WriterConfig};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum G3Command {
    /// Load captured g3proxy logs: syslog lines or datagrams (one per line, or RFC 6587 octet-counted),
    /// or a fluentd forward byte stream; the format is detected per file.
    Import(ImportArgs),
    /// Per-group task statistics: count, reasons, p50/p90/p99 of wait/ready/total time, bytes up/down.
    /// The same numbers are in the views g3_stats_by_<server|task_type|reason|user|upstream>.
    Stats(StatsArgs),
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// SQLite store file (created if missing).
    #[arg(long, default_value = crate::DEFAULT_DB)]
    pub db: PathBuf,
    /// Files to load.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// SQLite store file.
    #[arg(long, default_value = crate::DEFAULT_DB)]
    pub db: PathBuf,
    /// Only tasks that ended within this long before now: `90s`, `15m`, `2h`, `7d`.
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Group by.
    #[arg(long, default_value = "server", value_parser = ["server", "task_type", "reason", "user", "upstream"])]
    pub by: String,
    /// One JSON object per group instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: G3Command) -> Result<ExitCode> {
    match cmd {
        G3Command::Import(args) => import(args),
        G3Command::Stats(args) => stats(args),
    }
}

/// Files above this size get a progress bar.
const PROGRESS_ABOVE: u64 = 4 << 20;
/// Records handed to the store's writer at a time.
const BATCH: usize = 8192;

/// Hand `records` to the writer, waiting while its queue is half full: an import never drops.
fn send_all(writer: &StoreHandle, records: &mut Vec<Record>) -> Result<()> {
    while !writer.has_room_for_bulk() {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    if !writer.try_send(std::mem::replace(records, Vec::with_capacity(BATCH * 2))) {
        bail!("the store's writer stopped: {}", writer.stats().last_error.unwrap_or_default());
    }
    Ok(())
}

fn import(args: ImportArgs) -> Result<ExitCode> {
    // The writer thread stores one batch while this thread decodes the next: 1.6 times as fast as decoding
    // and inserting in turn (540,000 g3 logs, 368 MB: 5.1-5.2 s -> 3.1-3.2 s).
    let writer = Store::spawn_writer(&args.db, WriterConfig::default())
        .with_context(|| format!("cannot open the store {}", args.db.display()))?;
    crate::sources::g3::install_views(&args.db)?;
    let (mut total_logs, mut total_bad) = (0u64, 0u64);
    for path in &args.files {
        let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        let bar = if size > PROGRESS_ABOVE {
            let bar = indicatif::ProgressBar::new(size);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.set_message(path.display().to_string());
            Some(bar)
        } else {
            None
        };
        let mut decoder = StreamDecoder::default();
        let mut chunk = vec![0u8; 1 << 20];
        let mut decoded = Vec::new();
        let mut records = Vec::with_capacity(BATCH * 2);
        let (mut logs, mut bad) = (0u64, 0u64);
        let now = now_ns();
        let mut at_eof = false;
        while !at_eof {
            let n = file.read(&mut chunk).with_context(|| format!("cannot read {}", path.display()))?;
            let fed = if n == 0 {
                at_eof = true;
                decoder.finish(&mut decoded)
            } else {
                decoder.feed(&chunk[..n], &mut decoded)
            };
            if let Some(bar) = &bar {
                bar.inc(n as u64);
            }
            for result in decoded.drain(..) {
                match result {
                    Ok(log) => {
                        logs += 1;
                        records.extend(logwire_g3::record::to_records(&log, now));
                    }
                    Err(e) => {
                        bad += 1;
                        if bad <= 10 {
                            eprintln!("logwire: {}: skipped a record: {e}", path.display());
                        }
                    }
                }
            }
            if records.len() >= BATCH || at_eof {
                send_all(&writer, &mut records)?;
            }
            if let Err(e) = fed {
                if let Some(bar) = &bar {
                    bar.abandon();
                }
                bail!("{}: stopped after {logs} records: {e}", path.display());
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        println!("logwire: {}: {logs} g3proxy records imported, {bad} skipped", path.display());
        total_logs += logs;
        total_bad += bad;
    }
    let stats = writer.close().with_context(|| format!("cannot finish writing {}", args.db.display()))?;
    if stats.failed > 0 || stats.dropped > 0 {
        bail!(
            "{} of {} records could not be written to {}: {}",
            stats.failed + stats.dropped,
            stats.accepted,
            args.db.display(),
            stats.last_error.unwrap_or_default()
        );
    }
    if args.files.len() > 1 {
        println!("logwire: {total_logs} records imported, {total_bad} skipped, into {}", args.db.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `90s`, `15m`, `2h`, `7d` (or g3proxy's own `1.5s` / `250ms` forms) → ns.
fn parse_since(s: &str) -> Option<i64> {
    if let Some(ns) = logwire_g3::value::parse_duration(s) {
        return i64::try_from(ns).ok();
    }
    let (num, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: i64 = num.parse().ok()?;
    let secs = match unit {
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(secs)?.checked_mul(1_000_000_000)
}

fn stats(args: StatsArgs) -> Result<ExitCode> {
    if !args.db.exists() {
        bail!(
            "no store at {}: run `logwire serve --syslog-udp …` or `logwire g3 import FILE` first",
            args.db.display()
        );
    }
    let since_ns = match &args.since {
        Some(s) => Some(now_ns() - parse_since(s).with_context(|| format!("--since {s}: use e.g. 90s, 15m, 2h, 7d"))?),
        None => None,
    };
    let sql = logwire_g3::sql::stats_select(&args.by, since_ns).with_context(|| format!("--by {}", args.by))?;
    let result =
        logwire_store::query(&args.db, &sql).with_context(|| format!("stats on {} failed", args.db.display()))?;
    if args.json {
        print!("{}", render_json_lines(&result));
    } else if result.rows.is_empty() {
        println!("no finished g3proxy tasks{}", args.since.map(|s| format!(" in the last {s}")).unwrap_or_default());
    } else {
        print!("{}", render_table(&result));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn since_forms() {
        assert_eq!(super::parse_since("90s"), Some(90_000_000_000));
        assert_eq!(super::parse_since("15m"), Some(900_000_000_000));
        assert_eq!(super::parse_since("2h"), Some(7_200_000_000_000));
        assert_eq!(super::parse_since("250ms"), Some(250_000_000));
        assert_eq!(super::parse_since("x"), None);
        assert_eq!(super::parse_since(""), None);
    }
}
