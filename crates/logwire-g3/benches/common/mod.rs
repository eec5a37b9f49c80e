//! Inputs shared by the g3 benches.

use logwire_g3::emit::encode_syslog;
use logwire_g3::{G3Log, Origin};

/// The capture's records as round `round` of a long-running g3proxy would log them: every task gets its own
/// task_id and a later `start_at`. Repeating the capture verbatim would put all rounds' records on the same
/// 27 trace ids and times, which flatters the store's indexes.
pub fn as_round(logs: &[G3Log], round: usize) -> Vec<Vec<u8>> {
    // g3proxy's task ids are UUID v1: the first 8 hex digits are the low 32 bits of a 100 ns clock. One round
    // = 200 ms later, so 2000 rounds stay inside one 429 s wrap of that field, as in a real log.
    let ticks = (round as u32).wrapping_mul(2_000_000);
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
                    "start_at" => *v = (v.as_i64().unwrap() + round as i64 * 200_000_000).into(),
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
