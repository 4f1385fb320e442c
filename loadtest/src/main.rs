//! The `uss-loadtest` binary: parses the flags, runs the load test on an actix system,
//! prints the summary table and writes `--json`. Exits 1 on a setup failure or when any
//! request failed, 2 on bad flags.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use uss_loadtest::args::{self, Command, USAGE};

/// mimalloc, as the server has: glibc's malloc took ~2% of the machine's CPU in the
/// load generator's share of a single-event run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let mut options = match args::parse(std::env::args_os().skip(1)) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("uss-loadtest: {e:#}");
            return ExitCode::from(2);
        }
    };
    options.progress = std::io::stdout().is_terminal();
    let summary = match actix_rt::System::new().block_on(uss_loadtest::run(&options)) {
        Ok(summary) => summary,
        Err(e) => {
            eprintln!("uss-loadtest: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", summary.table());
    if let Some(path) = &options.json {
        if let Err(e) = std::fs::write(path, summary.to_json()) {
            eprintln!("uss-loadtest: failed to write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if summary.requests_failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
