//! `camshard-bench`: load generator for camshard and other WebSocket JSON-RPC 2.0 servers.

use std::process::ExitCode;

use camshard_bench::cli::{Cli, Command};
use camshard_bench::run::write_json;
use clap::Parser;

fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))
}

fn real_main(cli: Cli) -> Result<(), String> {
    match cli.cmd {
        Command::Run(args) => {
            let rt = runtime(args.load.threads)?;
            let res = rt.block_on(camshard_bench::run::run(&args, None))?;
            res.print_table();
            if let Some(p) = &args.json {
                write_json(p, &res)?;
            }
            Ok(())
        }
        Command::Sequence(args) => {
            let rt = runtime(1)?;
            let res = rt.block_on(camshard_bench::sequence::sequence(&args))?;
            camshard_bench::sequence::print(&res);
            if let Some(p) = &args.json {
                write_json(p, &res)?;
            }
            Ok(())
        }
        Command::Worker(args) => {
            let rt = runtime(args.load.threads)?;
            rt.block_on(camshard_bench::worker::worker_main(&args))
        }
        Command::Compare(args) => {
            let rt = runtime(args.load.threads)?;
            rt.block_on(camshard_bench::compare::compare(&args))
                .map(|_| ())
        }
        Command::Fanout(args) => {
            let rt = runtime(args.threads)?;
            let res = rt.block_on(camshard_bench::fanout::fanout(&args))?;
            res.print_table();
            if let Some(p) = &args.json {
                write_json(p, &res)?;
            }
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    match real_main(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("camshard-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
