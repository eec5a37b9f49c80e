//! RFC 6587 framing over arbitrary bytes split at an arbitrary point, and cut into small reads: no panic,
//! the same frames whatever the split, and each frame through the syslog decoder. Byte 0 picks the split
//! point and the read size.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use logwire_g3::framing::SyslogFramer;

fn frames(parts: &[&[u8]]) -> (Vec<Vec<u8>>, bool) {
    let mut framer = SyslogFramer::with_max_len(4096);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for part in parts {
        buf.extend_from_slice(part);
        loop {
            match framer.decode(&mut buf) {
                Ok(Some(f)) => out.push(f.to_vec()),
                Ok(None) => break,
                Err(_) => return (out, false),
            }
        }
    }
    match framer.decode_eof(&mut buf) {
        Ok(Some(f)) => out.push(f.to_vec()),
        Ok(None) => {}
        Err(_) => return (out, false),
    }
    (out, true)
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else { return };
    let cut = usize::from(cut).min(stream.len());
    let whole = frames(&[stream]);
    let split = frames(&[&stream[..cut], &stream[cut..]]);
    if whole.1 && split.1 {
        assert_eq!(whole.0, split.0);
    }
    // Many small reads: the search for a line's end goes on where the last read stopped.
    let pieces: Vec<&[u8]> = stream.chunks(1 + cut % 16).collect();
    let many = frames(&pieces);
    assert_eq!(whole, many, "the same frames, and the same error, however the stream was read");
    for f in &whole.0 {
        let _ = logwire_g3::syslog::decode(f);
    }
});
