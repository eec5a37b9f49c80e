//! `logwire qlog …`: summary, convert, check and plot for qlog files of any version.

use crate::commands::Result;
use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use logwire_qlog::tools::{self, Layout};
use logwire_qlog::Serialization;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
pub enum QlogCommand {
    /// Per connection: duration, packets and bytes sent/received, packets lost, min and smoothed RTT,
    /// cwnd range, streams, HTTP requests.
    Summary(SummaryArgs),
    /// Rewrite a file (any version) in the newest layout, as JSON-SEQ or contained JSON.
    Convert(ConvertArgs),
    /// Spec problems against the newest drafts, each with its record number; exits 1 on errors.
    Check(FileArg),
    /// Draw cwnd, bytes in flight and RTT over time, with packet-loss marks, as an SVG.
    Plot(PlotArgs),
}

#[derive(Args, Debug)]
pub struct SummaryArgs {
    /// qlog files: .sqlog, .qlog, optionally .gz or .zst.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct FileArg {
    pub file: PathBuf,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum To {
    /// JSON-SEQ (application/qlog+json-seq, `.sqlog`).
    Seq,
    /// Contained JSON (application/qlog+json, `.qlog`).
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LayoutArg {
    /// The newest drafts' names and header.
    Newest,
    /// The newest header plus qlog_version/qlog_format and 0.3 event names: what qvis can open.
    Qvis,
}

#[derive(Args, Debug)]
pub struct ConvertArgs {
    pub file: PathBuf,
    #[arg(long, value_enum, default_value_t = To::Seq)]
    pub to: To,
    #[arg(long, value_enum, default_value_t = LayoutArg::Newest)]
    pub layout: LayoutArg,
    /// Output file (default: standard output).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct PlotArgs {
    pub file: PathBuf,
    /// The SVG to write.
    #[arg(short, long)]
    pub output: PathBuf,
    /// The connection (group id) to draw; default: the first one with recovery metrics.
    #[arg(long)]
    pub connection: Option<String>,
}

fn load(path: &Path) -> Result<Vec<u8>> {
    logwire_qlog::compress::load(path).with_context(|| format!("cannot read {}", path.display()))
}

pub fn run(cmd: QlogCommand) -> Result<ExitCode> {
    match cmd {
        QlogCommand::Summary(a) => {
            for f in &a.files {
                let bytes = load(f)?;
                let s =
                    tools::summarise(&bytes).with_context(|| format!("{} is not a readable qlog file", f.display()))?;
                print!("{}", tools::render_summary(&f.display().to_string(), &s));
            }
            Ok(ExitCode::SUCCESS)
        }
        QlogCommand::Convert(a) => {
            let bytes = load(&a.file)?;
            let to = match a.to {
                To::Seq => Serialization::Seq,
                To::Json => Serialization::Contained,
            };
            let layout = match a.layout {
                LayoutArg::Newest => Layout::Newest,
                LayoutArg::Qvis => Layout::Qvis,
            };
            let (out, damage) = tools::convert(&bytes, to, layout)
                .with_context(|| format!("{} is not a readable qlog file", a.file.display()))?;
            for d in &damage {
                eprintln!("logwire: {}: skipped {d}", a.file.display());
            }
            match &a.output {
                Some(p) => std::fs::write(p, &out).with_context(|| format!("cannot write {}", p.display()))?,
                None => std::io::Write::write_all(&mut std::io::stdout().lock(), &out)?,
            }
            Ok(ExitCode::SUCCESS)
        }
        QlogCommand::Check(a) => {
            let bytes = load(&a.file)?;
            let problems =
                tools::check(&bytes).with_context(|| format!("{} is not a readable qlog file", a.file.display()))?;
            for p in &problems {
                println!("{}: {p}", a.file.display());
            }
            let errors = problems.iter().filter(|p| p.error).count();
            println!("{}: {} error(s), {} warning(s)", a.file.display(), errors, problems.len() - errors);
            Ok(if errors > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        QlogCommand::Plot(a) => {
            let bytes = load(&a.file)?;
            let title = a.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let svg = tools::plot_svg(&bytes, a.connection.as_deref(), &title)
                .with_context(|| format!("{} is not a readable qlog file", a.file.display()))?;
            if !svg.contains("<path") {
                bail!("{} has no recovery metrics to plot", a.file.display());
            }
            std::fs::write(&a.output, svg).with_context(|| format!("cannot write {}", a.output.display()))?;
            println!("logwire: wrote {}", a.output.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}
