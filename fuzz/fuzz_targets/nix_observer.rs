//! Nix op framer: the passive observer fed arbitrary client and daemon bytes in arbitrary splits.
//! Input: `shared/nix_conversation.rs` (u32 LE client length, client bytes, daemon bytes; the seeds are
//! the fixtures in this form). Checks: no panic; never more bytes consumed than fed; the same events
//! whatever the split (fed whole vs in chunks) as long as sync is kept. When both directions hold a fault,
//! which one is found first depends on the split, so after a loss of sync only a common prefix is required.
#![no_main]

#[path = "shared/nix_conversation.rs"]
mod nix_conversation;

use libfuzzer_sys::fuzz_target;
use logwire_nix::observer::{Direction, Event, Observer};
use logwire_nix::wire::Limits;

fn run(c2s: &[u8], s2c: &[u8], chunk: usize) -> (Vec<Event>, u64, u64) {
    let mut observer = Observer::new(Limits { max_string: 1 << 16, max_list: 1 << 10 });
    let mut events = Vec::new();
    let (mut c, mut s) = (0, 0);
    while c < c2s.len() || s < s2c.len() {
        let ce = (c + chunk).min(c2s.len());
        observer.feed_client(&c2s[c..ce]);
        c = ce;
        let se = (s + chunk).min(s2c.len());
        observer.feed_daemon(&s2c[s..se]);
        s = se;
        events.extend(std::iter::from_fn(|| observer.poll_event()));
    }
    let consumed_c = observer.consumed(Direction::ClientToDaemon);
    let consumed_s = observer.consumed(Direction::DaemonToClient);
    assert!(consumed_c <= c2s.len() as u64 && consumed_s <= s2c.len() as u64);
    (events, consumed_c, consumed_s)
}

fuzz_target!(|data: &[u8]| {
    let Some((c2s, s2c, chunk_byte)) = nix_conversation::split(data) else { return };
    let whole = run(c2s, s2c, usize::MAX / 2);
    let chunk = 1 + chunk_byte as usize % 61;
    let pieces = run(c2s, s2c, chunk);
    let lost = |events: &[Event]| events.iter().any(|e| matches!(e, Event::OutOfSync { .. }));
    if !lost(&whole.0) && !lost(&pieces.0) {
        assert_eq!(whole, pieces, "events depend on the split");
    } else {
        let synced = |events: &[Event]| -> Vec<Event> {
            events.iter().filter(|e| !matches!(e, Event::OutOfSync { .. })).cloned().collect()
        };
        let (a, b) = (synced(&whole.0), synced(&pieces.0));
        let n = a.len().min(b.len());
        assert_eq!(a[..n], b[..n], "events before the loss of sync depend on the split");
    }
});
