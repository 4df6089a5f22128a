//! Where one thread's time goes in the local analysis: the core pipeline run on a flow-log file three
//! times over, each adding a stage — parse; parse + classify (the per-record legs); the whole
//! analysis (+ the destination and client streams, and the report). Wall time, median of the runs.
//! `cargo xtask bench` runs it on its 10 M-line file and adds the table to docs/benchmarks.md.
//!
//! `cargo bench -p natgw-core --bench phases -- FILE NAT_IP [VPC_CIDR ...]` prints one JSON object.

#![expect(clippy::print_stdout, clippy::print_stderr, reason = "a benchmark binary: what it prints is its result")]

use std::io::Read;
use std::time::{Duration, Instant};

use natgw_core::analyze::{AnalyzeConfig, Analyzer, FIELDS};
use natgw_core::flowlog::{LogFormat, StreamParser};
use natgw_core::net::CidrSet;

/// The stages a run goes through.
#[derive(Clone, Copy, PartialEq)]
enum Upto {
    Parse,
    Classify,
    Whole,
}

/// The CLI's read size for plain files.
const READ: usize = 256 << 10;

fn run(path: &str, cfg: &AnalyzeConfig, upto: Upto) -> Result<Duration, String> {
    let t = Instant::now();
    let mut a = Analyzer::new(cfg.clone());
    let mut shard = a.fast_shard().ok_or("the NAT address is needed")?;
    let mut streams = a.flow_streams();
    let mut parser = StreamParser::new(LogFormat::default(), false).with_fields(FIELDS);
    let mut f = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut buf = vec![0u8; READ];
    let mut checksum = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| format!("{path}: {e}"))?;
        if n == 0 {
            break;
        }
        match upto {
            Upto::Parse => parser.feed(&buf[..n], &mut |r| checksum ^= r.start.unwrap_or(0)),
            _ => parser.feed(&buf[..n], &mut |r| shard.push(r)),
        }
        match upto {
            Upto::Parse => {}
            // Classifying hands the flows over as the CLI does; only the whole run streams them.
            Upto::Classify => drop(shard.take_flows()),
            Upto::Whole => streams.feed(shard.take_flows()),
        }
    }
    let fmt = parser.format().clone();
    let stats = parser.finish(&mut |r| shard.push(r));
    if upto == Upto::Whole {
        streams.feed(shard.take_flows());
        a.add_input(path, &fmt, stats);
        a.absorb_fast(shard);
        a.absorb_streams(streams);
        let report = a.finish().map_err(|e| e.to_string())?;
        checksum ^= report.destinations.len() as u64;
    }
    std::hint::black_box(checksum);
    Ok(t.elapsed())
}

fn main() -> Result<(), String> {
    // `cargo bench` passes `--bench`; the rest are ours.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let [path, nat, cidrs @ ..] = &args[..] else {
        eprintln!("usage: cargo bench -p natgw-core --bench phases -- FILE NAT_IP [VPC_CIDR ...]");
        return Ok(());
    };
    let blocks: Result<Vec<_>, _> = cidrs.iter().map(|c| c.parse().map_err(|e| format!("{c}: {e}"))).collect();
    let cfg = AnalyzeConfig {
        nat_addresses: vec![nat.parse().map_err(|e| format!("{nat}: {e}"))?],
        vpc_cidrs: CidrSet::new(blocks?),
        top: 65535,
        ..AnalyzeConfig::default()
    };
    let runs = 5;
    let mut out = serde_json::Map::new();
    for (name, upto) in [("parse", Upto::Parse), ("classify", Upto::Classify), ("whole", Upto::Whole)] {
        run(path, &cfg, upto)?; // warm-up
        let mut times: Vec<Duration> = (0..runs).map(|_| run(path, &cfg, upto)).collect::<Result<_, _>>()?;
        times.sort();
        out.insert(name.into(), times[runs / 2].as_secs_f64().into());
    }
    println!("{}", serde_json::Value::Object(out));
    Ok(())
}
