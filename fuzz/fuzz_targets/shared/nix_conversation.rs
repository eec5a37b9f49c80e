//! The input layout of the Nix conversation targets (`nix_observer`, `nix_recorder`; the seeds are the
//! fixtures in this form): u32 LE length of the client bytes, the client bytes, then the daemon bytes.

/// The client and daemon bytes, and the byte after the length that picks the chunk size; `None` when the
/// input is too short to hold them.
pub fn split(data: &[u8]) -> Option<(&[u8], &[u8], u8)> {
    let (len, rest) = data.split_first_chunk::<4>()?;
    let chunk_byte = *rest.first()?;
    let (c2s, s2c) = rest.split_at((u32::from_le_bytes(*len) as usize).min(rest.len()));
    Some((c2s, s2c, chunk_byte))
}
