mod cli;
mod cli_flags;
mod commands;
mod preset;

use clap::Parser;
use cli::{Cli, Command};
use std::process::ExitCode;

/// Writing to a closed pipe (`rift inspect … | head -1`) ends rift quietly, as it ends every
/// Unix tool, instead of panicking inside `println!` (Rust's runtime ignores SIGPIPE, so
/// each print would fail with EPIPE). rift writes to no child process and no socket, and
/// every session file is replaced atomically, so dying of SIGPIPE loses nothing saved.
#[cfg(unix)]
fn restore_default_sigpipe() {
    // SAFETY: installs the default disposition at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() -> ExitCode {
    #[cfg(unix)]
    restore_default_sigpipe();
    rift::engine::device::tune_allocator();
    // A panic is a bug in rift, never the user's fault: say so in one paragraph instead of
    // a backtrace. (Bad input is reported through errors, below.)
    std::panic::set_hook(Box::new(|info| {
        // Silent for the panics rift contains (see engine::panics), a bug report otherwise.
        if let Some(report) = rift::engine::panics::bug_report(info) {
            eprintln!("{report}");
        }
    }));
    let mut cli = Cli::parse_from(preset::expand(std::env::args_os().collect()));
    // `--zoo` becomes the flags and the file it stands for before any command runs.
    if let Err(e) = commands::apply_zoo(&mut cli.command) {
        eprintln!("error: {}", error_paragraph(&e));
        return ExitCode::FAILURE;
    }
    let result = match &cli.command {
        Command::Doctor(a) => commands::doctor(a),
        Command::Inspect(a) => commands::inspect(a),
        Command::Eval(a) => commands::eval(a),
        Command::Predict(a) => commands::predict(a),
        Command::Mrc(a) => commands::mrc(a),
        Command::Merge(a) => commands::merge(a),
        Command::Finetune(a) => commands::finetune(a),
        Command::Interpolate(a) => commands::interpolate(a),
        Command::Ood(a) => commands::ood(a),
        Command::TrainAt(a) => commands::train_at(a),
        Command::Run(a) => commands::run(a),
        Command::Compare(a) => commands::compare(a),
        Command::Report(a) => commands::report(a),
        Command::Demo(a) => commands::demo(a),
        Command::Tui(a) => commands::tui(a),
        Command::Zoo(a) => commands::zoo(a),
    };
    // The command is over: its session lock goes (a killed process leaves its record).
    commands::release_held_locks();
    if std::env::var_os("RIFT_PEAK_MEMORY").is_some() {
        // For benchmarks: the process's peak resident memory, as the kernel counts it.
        if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
            if let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:")) {
                eprintln!("peak memory: {}", line.trim_start_matches("VmHWM:").trim());
            }
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_paragraph(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes as one paragraph (`engine::error_text`).
fn error_paragraph(e: &anyhow::Error) -> String {
    rift::engine::error_text::paragraph(e.as_ref())
}
