//! A scheduling hint for logwire's own background threads.
//!
//! logwire shares its machine with the daemons it watches, and on a busy machine what it costs them is
//! not only CPU time but wake-ups: with the default policy, a thread woken by a socket or a queue
//! preempts whatever runs on that CPU (the Nix daemon writing a build log, say), runs a few
//! microseconds, and hands the CPU back. Threads whose work is about throughput, not latency (the store's
//! writer, the Nix relay while a build log streams), use [`prefer_throughput`] instead: they keep their
//! full fair share of the CPU, but waking them does not preempt anyone, so they run a moment later and do
//! more per wake-up. When a CPU is idle they still run at once. The price is latency on a busy machine,
//! which is why the relay goes back to [`restore_normal`] as soon as a client sends a request.

/// Puts the calling thread under Linux's `SCHED_BATCH` policy: same weight and nice value as before, but
/// waking it does not preempt.
///
/// A process spawned from such a thread inherits the policy; spawn daemons and user commands with
/// [`restore_normal`] in their `pre_exec`, or from another thread.
///
/// It is a hint: callers may ignore the error. Elsewhere than Linux it does nothing.
pub fn prefer_throughput() -> std::io::Result<()> {
    set_policy(Policy::Batch)
}

/// Puts the calling thread (or, in a `pre_exec` hook, the child about to exec) back under the normal
/// policy. It only makes one system call, so it is safe between `fork` and `exec`.
pub fn restore_normal() -> std::io::Result<()> {
    set_policy(Policy::Normal)
}

enum Policy {
    Normal,
    Batch,
}

fn set_policy(policy: Policy) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let policy = match policy {
            Policy::Normal => libc::SCHED_OTHER,
            Policy::Batch => libc::SCHED_BATCH,
        };
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is a valid sched_param for the duration of the call; pid 0 is this thread.
        if unsafe { libc::sched_setscheduler(0, policy, &param) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = policy;
    Ok(())
}

/// Whether the calling thread runs under `SCHED_BATCH` (false elsewhere than Linux).
pub fn is_throughput_thread() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: no pointers; pid 0 is this thread.
        let policy = unsafe { libc::sched_getscheduler(0) };
        policy == libc::SCHED_BATCH
    }
    #[cfg(not(target_os = "linux"))]
    false
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// Field 41 of /proc/PID/stat: the scheduling policy (0 normal, 3 batch).
    fn policy_of(stat: &str) -> u32 {
        let after_name = &stat[stat.rfind(')').expect("comm ends with )") + 2..];
        // Fields after the name start at field 3.
        after_name.split(' ').nth(41 - 3).expect("policy field").parse().expect("numeric policy")
    }

    #[test]
    fn a_throughput_thread_is_batch_until_restored() {
        std::thread::spawn(|| {
            assert!(!is_throughput_thread(), "a new thread starts under the normal policy");
            prefer_throughput().expect("SCHED_BATCH needs no privilege");
            assert!(is_throughput_thread());
            let tid = unsafe { libc::gettid() };
            let own = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).expect("own stat");
            assert_eq!(policy_of(&own), libc::SCHED_BATCH as u32);
            let inherited = std::process::Command::new("cat").arg("/proc/self/stat").output().expect("run cat");
            let inherited = String::from_utf8(inherited.stdout).expect("utf-8 stat");
            assert_eq!(policy_of(&inherited), libc::SCHED_BATCH as u32, "a child inherits the policy");
            let mut cat = std::process::Command::new("cat");
            cat.arg("/proc/self/stat");
            // SAFETY: restore_normal makes one system call and allocates nothing.
            unsafe { std::os::unix::process::CommandExt::pre_exec(&mut cat, restore_normal) };
            let reset = String::from_utf8(cat.output().expect("run cat").stdout).expect("utf-8 stat");
            assert_eq!(policy_of(&reset), libc::SCHED_OTHER as u32, "restore_normal in pre_exec resets it");
            restore_normal().expect("back to normal");
            assert!(!is_throughput_thread());
        })
        .join()
        .expect("test thread");
        assert!(!is_throughput_thread(), "other threads keep their policy");
    }
}
