//! One module per subcommand.

pub mod g3;
pub mod nix;
pub mod qlog;
pub mod query;
pub mod serve;
pub mod spop;

/// Errors of the CLI: one plain line each (what failed, where, what to do).
pub type Result<T> = std::result::Result<T, anyhow::Error>;
