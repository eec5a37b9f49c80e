//! Inputs shared by the g3 benches.

use logwire_g3::emit::encode_syslog;
use logwire_g3::{G3Log, Origin};

/// How much later each round happens, in g3proxy's clocks (task ids and `start_at`).
pub const ROUND_NS: i64 = 10_000_000;

/// The capture's records as round `round` of a long-running g3proxy would log them: every task gets its own
/// task_id and a later `start_at`. Repeating the capture verbatim would put all rounds' records on the same
/// 27 trace ids and times, which flatters the store's indexes.
///
/// g3proxy's task ids are UUID v1: the first 8 hex digits are the low 32 bits of a 100 ns clock, which wraps
/// every 429 s. A round is [`ROUND_NS`] (10 ms) later, so 40,000 rounds (1.5 M model records) stay inside one
/// wrap. One commit of the store (4,096 records, about 108 rounds) then spans about 1 s of that clock; in a
/// real log at 350 k records/s it spans 12 ms, so the bench's clock still runs about 100 times fast. Rounds
/// of 200 ms (until stop 15) ran it about 2,000 times fast: a 40,000-round run wrapped 18 times, and each
/// commit's ids, spread over 5 % of the key range, landed between those of every earlier wrap all over the
/// `records_trace` index. No real log does that, and it made big stores look slow.
pub fn as_round(logs: &[G3Log], round: usize) -> Vec<Vec<u8>> {
    let ticks = (round as i64 * (ROUND_NS / 100)) as u32;
    logs.iter()
        .map(|log| {
            let mut log = log.clone();
            for (k, v) in &mut log.fields {
                match k.as_ref() {
                    "task_id" => {
                        let id = v.as_str().unwrap();
                        let low = u32::from_str_radix(&id[..8], 16).unwrap().wrapping_add(ticks);
                        *v = format!("{low:08x}{}", &id[8..]).into();
                    }
                    "start_at" => *v = (v.as_i64().unwrap() + round as i64 * ROUND_NS).into(),
                    _ => {}
                }
            }
            let Origin::Syslog(h) = &log.origin else { unreachable!() };
            encode_syslog(&log, h)
        })
        .collect()
}

/// CPU time (user + system) so far of this process's thread whose name starts with `prefix` (Linux).
pub fn thread_cpu_secs(prefix: &str) -> Option<f64> {
    let ticks_per_s = 100.0; // USER_HZ on Linux
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end().starts_with(prefix) {
            let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
            // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
            let rest = &stat[stat.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split(' ').collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            return Some((utime + stime) / ticks_per_s);
        }
    }
    None
}
