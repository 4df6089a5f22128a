//! cargo xtask: project automation (`cargo xtask ci`, `simulate`, `sample`, `codegen`, `moto-venv`).
#![allow(clippy::print_stdout, clippy::print_stderr)] // a developer tool that talks on the terminal

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

mod bench;
mod bench_data;
mod moto_venv;

#[derive(Parser)]
#[command(name = "xtask", about = "natgw project automation")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// What CI runs: rustfmt check, clippy with -D warnings, codegen check, then `test`.
    Ci,
    /// The whole test suite: makes sure the moto venv exists (PyPI, once), then runs
    /// `cargo test --workspace --all-features` (no network beyond 127.0.0.1).
    Test,
    /// Run a simulator scenario and write its flow logs, metrics and truth to a folder.
    Simulate {
        /// Scenario name (see `--list`).
        #[arg(long, required_unless_present = "list")]
        scenario: Option<String>,
        #[arg(long, required_unless_present = "list")]
        out: Option<PathBuf>,
        #[arg(long)]
        seed: Option<u64>,
        /// Simulated start (Unix seconds); default: the scenario's own.
        #[arg(long)]
        start: Option<u64>,
        /// List the scenarios.
        #[arg(long)]
        list: bool,
    },
    /// Regenerate the bundled sample incident under examples/.
    Sample,
    /// Benchmark `aws-natgw analyze` against DuckDB, polars, mawk, pigz, wc and cat on simulated flow
    /// logs (10 M lines), and write docs/benchmarks.md.
    Bench {
        /// Timed runs per tool (after one warm-up); the median is reported.
        #[arg(long, default_value_t = 5)]
        runs: u32,
    },
    /// Regenerate generated files (docs/report.schema.json); with --check, fail if they are stale.
    Codegen {
        #[arg(long)]
        check: bool,
    },
    /// The smoke test against a real AWS account with your own credentials (read-only calls; Logs
    /// Insights bills per GB scanned): `NATGW_LIVE_NAT=nat-… NATGW_LIVE_SINCE=30m AWS_PROFILE=…`.
    LiveTest,
    /// Create or update the Python venv of the moto end-to-end tests (moto, boto3, cbor2 from
    /// natgw-testkit/moto/requirements.txt); does nothing when it matches the requirements already.
    MotoVenv {
        /// Where; default: $NATGW_MOTO_VENV, else target/moto-venv.
        #[arg(long)]
        venv: Option<PathBuf>,
        /// The Python that creates it.
        #[arg(long, default_value = "python3")]
        python: String,
    },
}

fn main() -> Result<()> {
    match Cli::parse().task {
        Task::Ci => ci(),
        Task::Test => test(),
        Task::LiveTest => run(Command::new("cargo").args([
            "test",
            "-p",
            "natgw-cli",
            "--test",
            "it",
            "live_account",
            "--",
            "--ignored",
            "--nocapture",
        ])),
        Task::Simulate { scenario, out, seed, start, list } => {
            if list {
                for name in natgw_testkit::sim::Scenario::builtin_names() {
                    println!("{name}");
                }
                return Ok(());
            }
            let (Some(scenario), Some(out)) = (scenario, out) else { bail!("--scenario and --out are required") };
            simulate(&scenario, &out, seed, start)
        }
        Task::Sample => sample(),
        Task::Bench { runs } => bench::run(&root(), runs),
        Task::Codegen { check } => codegen(check),
        Task::MotoVenv { venv, python } => {
            let venv = std::path::absolute(venv.unwrap_or_else(natgw_testkit::moto::venv_dir))?;
            moto_venv::ensure(&venv, &python)
        }
    }
}

/// The bundled sample incident: an idle-connection leak, cut to 12 minutes so it stays small.
const SAMPLE_SCENARIO: &str = "idle-leak";
const SAMPLE_SECS: u32 = 720;
/// The sample ships the NAT interface's log in the custom format (attribution, TCP flags) only.
const SAMPLE_DROP: &[&str] = &["nat-eni-v2.log.gz", "clients-v2.log.gz"];

fn sample() -> Result<()> {
    use natgw_testkit::sim::{Scenario, Simulation};
    let scenario = Scenario::builtin(SAMPLE_SCENARIO).context("sample scenario missing")?.with_duration(SAMPLE_SECS);
    let sim = Simulation::run(&scenario)?;
    let out = root().join("examples").join(SAMPLE_SCENARIO);
    std::fs::create_dir_all(&out)?;
    for path in sim.write_to(&out)? {
        if path.file_name().is_some_and(|n| SAMPLE_DROP.iter().any(|d| n == *d)) {
            std::fs::remove_file(&path)?;
        }
    }
    eprintln!("wrote the sample incident to {}", out.display());
    Ok(())
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {cmd:?}");
    let status = cmd.current_dir(root()).status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

fn ci() -> Result<()> {
    run(Command::new("cargo").args(["fmt", "--all", "--", "--check"]))?;
    run(Command::new("cargo").args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    codegen(true)?;
    test()
}

fn test() -> Result<()> {
    moto_venv::ensure(&std::path::absolute(natgw_testkit::moto::venv_dir())?, "python3")?;
    run(Command::new("cargo").args(["test", "--workspace", "--all-features"]).env("INSTA_UPDATE", "no"))
}

fn simulate(name: &str, out: &Path, seed: Option<u64>, start: Option<u64>) -> Result<()> {
    use natgw_testkit::sim::{Scenario, Simulation};
    let mut scenario = Scenario::builtin(name)
        .with_context(|| format!("unknown scenario {name:?}; known: {}", Scenario::builtin_names().join(", ")))?;
    if let Some(seed) = seed {
        scenario.seed = seed;
    }
    if let Some(start) = start {
        scenario = scenario.with_start(start);
    }
    let sim = Simulation::run(&scenario).with_context(|| format!("simulating {name}"))?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    sim.write_to(out).with_context(|| format!("writing to {}", out.display()))?;
    eprintln!("wrote scenario {name} to {}", out.display());
    Ok(())
}

fn codegen(check: bool) -> Result<()> {
    let schema = schemars::schema_for!(natgw_core::report::Report);
    let text = serde_json::to_string_pretty(&schema)? + "\n";
    let path = root().join("docs/report.schema.json");
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current == text {
        return Ok(());
    }
    if check {
        bail!("{} is stale: run `cargo xtask codegen`", path.display());
    }
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
