//! Capture sources: each one connects a protocol crate's runtime to the store.

pub mod g3;
pub mod nix;
pub mod qlog;
pub mod spop;
