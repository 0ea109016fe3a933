//! The `camshard` executable: parses the command line, loads configuration, then runs the
//! server or an admin subcommand.

use std::process::ExitCode;

use clap::Parser;

use camshard::cli::{Cli, Command};
use camshard::config::{Config, Overrides};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let overrides = Overrides {
        config: cli.common.config.clone(),
        listen: cli.serve.listen.clone(),
        demo: cli.common.demo,
        state_dir: cli.common.state_dir.clone(),
        data_dir: cli.common.data_dir.clone(),
        shards: cli.serve.shards,
        cores: cli.serve.cores.clone(),
        capture_cores: cli.serve.capture_cores.clone(),
        runtime: cli.serve.runtime.clone(),
    };
    let config = match Config::load(&overrides, |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("camshard: {e}");
            return ExitCode::from(2);
        }
    };
    let result = match &cli.command {
        Some(Command::Token(args)) => camshard::commands::token::run(&config, args),
        Some(Command::Apikey { action }) => camshard::commands::apikey::run(&config, action),
        Some(Command::Call(args)) => match camshard::commands::call::run(&config, args) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        Some(Command::Demand { camera }) => {
            let code = camshard::commands::demand(config.state_dir(), camera);
            return ExitCode::from(code as u8);
        }
        None => {
            camshard::logging::init(&config.logging.level, config.logging.format);
            camshard::server::run(config).map_err(|e| e.to_string())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "camshard failed");
            eprintln!("camshard: {e}");
            ExitCode::FAILURE
        }
    }
}
