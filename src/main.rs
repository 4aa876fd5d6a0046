//! The command line. Parses arguments, loads settings and calls into the
//! library; the `cli` modules own everything printed to stdout.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            // By the error's type, as the HTTP status is (never by its text).
            ExitCode::from(ambassador::problem::kind_of(&e).exit_code())
        }
    }
}
