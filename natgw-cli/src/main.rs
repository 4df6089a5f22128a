//! `aws-natgw`: the command-line front of natgw. Thin glue: parse flags into typed values, read
//! inputs, call natgw-core, render, and map outcomes to documented exit codes.

mod args;
mod exit;
mod input;
mod live;
mod render;

use std::io::{self, Write};
use std::net::IpAddr;
use std::process::ExitCode;

use clap::Parser;
use natgw_core::analyze::{AnalyzeConfig, AnalyzeError, Analyzer};
use natgw_core::insights::{self, NatTarget, QueryScope, SourceView};
use natgw_core::limits::MAX_ADDRESSES;
use natgw_core::net::CidrSet;
use natgw_core::prefixes::ServicePrefixes;

use args::{AnalyzeArgs, Cli, Command, QueryArgs, QueryKindArg};

/// An error with its exit code.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure { code, message: message.into() }
    }
}

/// Writes a command's output to standard output and gives back its exit code, `code`. A reader that
/// went away (`aws-natgw … | head`) is no error, and the code still says what the command found: a
/// closed pipe must not turn "exhausted" into "healthy".
fn emit(code: u8, write: impl FnOnce(&mut io::StdoutLock<'static>) -> io::Result<()>) -> Result<u8, Failure> {
    let mut out = io::stdout().lock();
    match write(&mut out).and_then(|()| out.flush()) {
        Ok(()) => Ok(code),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(code),
        Err(e) => Err(Failure::new(exit::ERROR, format!("writing output: {e}"))),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { exit::USAGE } else { exit::HEALTHY };
            let _ = e.print();
            return exit::code(code);
        }
    };
    let result = match cli.command {
        Command::Analyze(a) => analyze(a),
        Command::Diagnose(a) => live::diagnose(a),
        Command::Doctor(a) => live::doctor(a),
        Command::Metrics(a) => live::metrics(a),
        Command::Scan(a) => live::scan(a),
        Command::Query(q) => query(q),
    };
    match result {
        Ok(code) => exit::code(code),
        Err(f) => {
            let _ = writeln!(io::stderr(), "aws-natgw: {}", f.message);
            exit::code(f.code)
        }
    }
}

fn analyze(a: AnalyzeArgs) -> Result<u8, Failure> {
    let prefixes = match &a.aws_ip_ranges {
        None => ServicePrefixes { region: a.region.clone(), ..ServicePrefixes::default() },
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::new(exit::INPUT, format!("cannot read {}: {e}", path.display())))?;
            ServicePrefixes::from_ip_ranges_json(&text, a.region.as_deref())
                .map_err(|e| Failure::new(exit::INPUT, format!("{}: {e}", path.display())))?
        }
    };
    let mut nat_ips: Vec<IpAddr> = a.nat_ips.iter().map(IpAddr::to_canonical).collect();
    nat_ips.sort_unstable();
    nat_ips.dedup();
    if nat_ips.len() > MAX_ADDRESSES as usize {
        return Err(Failure::new(
            exit::USAGE,
            format!("--nat-ip names {} addresses; a NAT gateway has at most {MAX_ADDRESSES}", nat_ips.len()),
        ));
    }
    if a.files.iter().filter(|f| input::is_stdin(f)).count() > 1 {
        return Err(Failure::new(exit::USAGE, "standard input (-) can be read only once"));
    }
    let config = AnalyzeConfig {
        nat_addresses: a.nat_ips.clone(),
        nat_interface: a.nat_interface.clone(),
        vpc_cidrs: CidrSet::new(a.vpc_cidrs.iter().copied()),
        top: usize::from(a.top),
        top_sources: 10,
        prefixes,
        nat_gateway_id: a.nat_gateway_id.clone(),
        ..AnalyzeConfig::default()
    };
    // Before reading a byte: a NAT address outside the VPC's blocks is a mistake in the arguments.
    natgw_core::analyze::check_config(&config).map_err(|e| Failure::new(exit::USAGE, e.to_string()))?;
    let format = a.log_format.clone().unwrap_or_default();
    let cores = || std::thread::available_parallelism().map_or(1, |n| n.get()).min(usize::from(args::MAX_THREADS));
    let threads = a.threads.map_or_else(cores, usize::from);
    let files = input::Inputs::gather(&a.files).map_err(|e| Failure::new(exit::INPUT, e.0))?;
    for path in files.repeated() {
        let _ = if input::is_stdin(path) {
            writeln!(io::stderr(), "aws-natgw: standard input is a file named too; the file is read, whole")
        } else {
            writeln!(io::stderr(), "aws-natgw: {} is a file named before; it is read once", path.display())
        };
    }
    for (name, why) in files.in_memory() {
        let _ = writeln!(io::stderr(), "aws-natgw: reading {name} into memory: {why}");
    }
    let analyse = |stream: bool| {
        let mut analyzer = Analyzer::new(config.clone());
        let read = input::read_all(&files, &format, threads, &mut analyzer, stream)
            .map_err(|e| Failure::new(exit::INPUT, e.0))?;
        Ok::<_, Failure>((analyzer.finish(), read.skipped))
    };
    // Streaming keeps memory flat; records that still come out of time order (a file far out of order
    // within, say) are read again and kept in memory. Same report either way.
    let (report, skipped) = match analyse(true)? {
        (Err(AnalyzeError::StreamOrder), _) => analyse(false)?,
        other => other,
    };
    for why in skipped {
        let _ = writeln!(io::stderr(), "aws-natgw: left out: {why}");
    }
    let report = report.map_err(|e| Failure::new(exit::INPUT, e.to_string()))?;
    emit(live::status_code(report.verdict.status), |out| render::report(&report, a.output, out))
}

fn query(q: QueryArgs) -> Result<u8, Failure> {
    let nat =
        NatTarget { interface: q.nat_interface.clone(), addresses: q.nat_ips.clone(), vpc_cidrs: q.vpc_cidrs.clone() };
    let scope =
        QueryScope { log_groups: Vec::new(), start: 0, end: 0, format: q.log_format.clone().unwrap_or_default() };
    let usage = |e: insights::QueryError| Failure::new(exit::USAGE, e.to_string());
    let built = match q.kind {
        QueryKindArg::TopDestinations => insights::top_destinations(&nat, &scope, q.limit).map_err(usage)?,
        QueryKindArg::PortsPerMinute => insights::ports_per_minute(&nat, &scope, q.limit).map_err(usage)?,
        QueryKindArg::DestinationFlows => insights::destination_flows(&nat, &q.destinations, &scope).map_err(usage)?,
        QueryKindArg::TopSources => {
            let [d] = q.destinations.as_slice() else {
                return Err(Failure::new(
                    exit::USAGE,
                    "top-sources takes exactly one --destination ADDRESS:PORT/PROTOCOL",
                ));
            };
            let view = if q.client_interfaces { SourceView::ClientInterfaces } else { SourceView::NatPktDstaddr };
            insights::top_sources(&nat, d, view, &scope, q.limit).map_err(usage)?
        }
    };
    emit(exit::HEALTHY, |out| writeln!(out, "{}", built.text))
}
