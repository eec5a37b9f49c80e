//! `.sqlog.gz` and `.sqlog.zst`: recognised by their magic bytes, decompressed within a size limit.

use crate::error::{QlogError, Result};
use std::io::Read;
use std::path::Path;

/// Files larger than this (after decompression) are refused: 4 GiB.
pub const DEFAULT_LIMIT: u64 = 4 << 30;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// The input itself, or its decompressed bytes when it starts with a gzip or zstd magic number.
pub fn decompress(input: Vec<u8>, limit: u64) -> Result<Vec<u8>> {
    if input.starts_with(GZIP_MAGIC) {
        #[cfg(feature = "gzip")]
        return read_limited(flate2::read::MultiGzDecoder::new(&input[..]), limit);
        #[cfg(not(feature = "gzip"))]
        return Err(QlogError::Decompress(std::io::Error::other("built without the gzip feature")));
    }
    if input.starts_with(ZSTD_MAGIC) {
        #[cfg(feature = "zstd")]
        return read_limited(zstd::stream::read::Decoder::new(&input[..]).map_err(QlogError::Decompress)?, limit);
        #[cfg(not(feature = "zstd"))]
        return Err(QlogError::Decompress(std::io::Error::other("built without the zstd feature")));
    }
    if input.len() as u64 > limit {
        return Err(QlogError::TooLarge { limit });
    }
    Ok(input)
}

#[allow(dead_code)]
fn read_limited(r: impl Read, limit: u64) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    r.take(limit.saturating_add(1)).read_to_end(&mut out).map_err(QlogError::Decompress)?;
    if out.len() as u64 > limit {
        return Err(QlogError::TooLarge { limit });
    }
    Ok(out)
}

/// Reads a file (plain, .gz or .zst) into memory.
pub fn load(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path)?;
    if meta.len() > DEFAULT_LIMIT {
        return Err(QlogError::TooLarge { limit: DEFAULT_LIMIT });
    }
    decompress(std::fs::read(path)?, DEFAULT_LIMIT)
}
