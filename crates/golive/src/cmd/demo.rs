//! `golive demo`: the seed go-live on this machine with real traffic (see `crate::demo`).

pub use crate::demo::Args;

pub async fn run(args: Args) -> anyhow::Result<std::process::ExitCode> {
    crate::demo::run(args).await
}
