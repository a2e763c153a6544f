//! `gma`: the one binary. It parses the command line, loads configuration, calls one library
//! function per subcommand and turns the result into an exit code. No logic of its own lives
//! here.

mod backend;
mod bigquery_args;
mod cli;
mod duration_arg;
mod github_args;
mod import;
mod leech;
mod logging;
mod query;
mod retry;
mod serve;
mod signals;
mod size_arg;
mod stores;
mod views;
mod views_refresh;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    // Two TLS crypto providers are compiled in (ring and aws-lc-rs); rustls needs one chosen
    // before any HTTPS client is built, or Google's storage client panics
    // (docs/architecture.md#tls-crypto-provider).
    gma_pipeline::tls::install_crypto_provider();
    let cli = Cli::parse();
    logging::init(cli.log_format, &cli.log_level);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("gma: could not start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Import(args) => import::run(args).await,
            Command::Retry(args) => retry::run(*args).await,
            Command::Leech(args) => leech::run(*args).await,
            Command::Query(args) => query::run(args).await,
            Command::Views(args) => views::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if query::is_broken_pipe(&error) {
                // The reader of our output went away (`gma query ... | head`): not a failure.
                return ExitCode::SUCCESS;
            }
            // The whole chain, each cause once (as `{error:#}`, without the repeats of
            // libraries whose errors print their source too).
            eprintln!("gma: {}", gma_store::error_chain(&*error));
            ExitCode::FAILURE
        }
    }
}
