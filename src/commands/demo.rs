//! `rift demo`: the pipeline on the bundled MNIST subset and demo AT model, with settings
//! chosen to finish in a few minutes on a 2-core CPU. It goes through the same code as
//! `rift run`, by building that command line.
use crate::cli::{Cli, Command, DemoArgs};
use anyhow::{bail, Result};
use clap::Parser;

pub const DEMO_MODEL: &str = "assets/demo/mnist_at_resnet18w8.safetensors";
pub const DEMO_DATA: &str = "assets/demo";

/// The `rift run` flags of the demo (recorded in its session.yaml like any run).
pub fn demo_run_args(session: &str, device: &str) -> Vec<String> {
    [
        "rift",
        "run",
        "--checkpoint",
        DEMO_MODEL,
        "--dataset",
        "mnist",
        "--data-dir",
        DEMO_DATA,
        "--eps",
        "0.2",
        "--step",
        "0.05",
        "--steps",
        "10",
        "--adv-limit",
        "500",
        "--fast",
        "--lr",
        "0.01",
        "--epochs",
        "6",
        "--alphas",
        "0:1:0.1",
        "--refine",
        "1",
        "--session",
        session,
        "--device",
        device,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

pub fn demo(args: &DemoArgs) -> Result<()> {
    if !std::path::Path::new(DEMO_MODEL).exists() {
        bail!("the demo model {DEMO_MODEL} is missing: run rift demo from the repository root (where assets/ is)");
    }
    let mut argv = demo_run_args(&args.session.display().to_string(), &args.device);
    if let Some(out) = &args.output {
        argv.extend(["--output".to_string(), out.display().to_string()]);
    }
    let cli = Cli::try_parse_from(&argv)?;
    match cli.command {
        Command::Run(run) if args.headless => super::run(&run),
        Command::Run(run) => {
            super::tui::explore(&run, args.theme.clone(), "rift demo --headless", None)
        }
        _ => bail!("internal: the demo command line did not parse as `rift run`"),
    }
}
