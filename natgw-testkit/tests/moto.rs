//! The moto test bed end to end: moto and the CBOR proxy start, a simulated incident is seeded,
//! and what a client reads back (DescribeNatGateways, DescribeFlowLogs, FilterLogEvents, and
//! GetMetricData in rpcv2Cbor through the proxy) matches the simulation. Needs the venv of
//! `cargo xtask moto-venv`; no network beyond 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use natgw_core::analyze::{AnalyzeConfig, Analyzer};
use natgw_core::flowlog::{LogFormat, parse_all};
use natgw_core::net::CidrSet;
use natgw_core::report::{Report, Status};
use natgw_testkit::moto::{Moto, MotoOptions, SeedMode, SeedOptions, Seeded, recent};
use natgw_testkit::sim::{NAT_CUSTOM_HEADER, Scenario, Simulation};
use serde_json::Value;

/// idle-leak cut to 8 minutes: the leak starts at 2 min and the ports run out after about 7.
const SECS: u32 = 480;
/// The records seeded: the last two minutes, around the exhaustion (all 8 minutes are ~320,000
/// records, ~20 s to seed and as long to read back from moto).
const RECORDS_FROM: u32 = 360;

fn idle_leak() -> Simulation {
    let scenario = recent(Scenario::builtin("idle-leak").unwrap().with_duration(SECS));
    Simulation::run(&scenario).unwrap()
}

fn inspect(moto: &Moto, seeded: &Seeded, max_datapoints: Option<u32>, dump: Option<&Path>) -> Value {
    let mut args = vec![
        "--endpoint".to_owned(),
        moto.endpoint_url(),
        "--cloudwatch-endpoint".to_owned(),
        moto.cloudwatch_endpoint_url(),
        "--nat-gateway-id".to_owned(),
        seeded.nat_gateway_id.clone(),
        // The window before the span holds the first NODATA record; the last window ends after it.
        "--start".to_owned(),
        (seeded.start - 600).to_string(),
        "--end".to_owned(),
        (seeded.end + 600).to_string(),
    ];
    if let Some(group) = &seeded.log_group {
        args.extend(["--log-group".to_owned(), group.clone()]);
    }
    if let Some(n) = max_datapoints {
        args.extend(["--max-datapoints".to_owned(), n.to_string()]);
    }
    if let Some(path) = dump {
        args.extend(["--dump".to_owned(), path.display().to_string()]);
    }
    moto.run_script("inspect_moto.py", &args).unwrap_or_else(|e| panic!("{e}\n{}", moto.logs()))
}

#[test]
fn a_seeded_incident_reads_back_as_simulated() {
    let sim = idle_leak();
    let metrics = sim.metrics();
    assert!(metrics.total("ErrorPortAllocation") > 0, "the slice must contain the exhaustion");
    let (from, to) = (sim.scenario().start + u64::from(RECORDS_FROM), sim.scenario().end() + 600);
    let text = String::from_utf8(sim.nat_custom()).unwrap();
    let k = NAT_CUSTOM_HEADER.split(' ').position(|f| f == "start").unwrap();
    let starts = text.lines().skip(1).map(|l| l.split(' ').nth(k).unwrap().parse::<u64>().unwrap());
    let records = starts.filter(|t| (from..to).contains(t)).count() as u64;

    let began = Instant::now();
    let moto = Moto::start().unwrap();
    let started = began.elapsed();
    let options = SeedOptions { mode: SeedMode::Diagnose, records_between: Some((from, to)) };
    let seeded = moto.seed_with(&sim, &options).unwrap_or_else(|e| panic!("{e}\n{}", moto.logs()));
    let seeding = began.elapsed() - started;
    eprintln!("moto + proxy up in {started:?}; seeded {records} records in {seeding:?}: {seeded:#?}");

    assert_eq!(seeded.shift_secs, 0, "recent() already put the scenario before now");
    assert_eq!((seeded.start, seeded.end), (sim.scenario().start, sim.scenario().end()));
    assert_eq!(seeded.records_written, records);
    assert_eq!(seeded.log_stream.as_deref(), Some(format!("{}-all", seeded.nat_interface).as_str()));
    assert_eq!(seeded.nat_is_primary, None, "moto omits IsPrimary");

    let t = Instant::now();
    let dump = tempfile::NamedTempFile::new().unwrap();
    let got = inspect(&moto, &seeded, Some(20), Some(dump.path()));
    eprintln!("read back in {:?}", t.elapsed());

    let addr = &got["nat_gateways"]["NatGatewayAddresses"][0];
    assert_eq!(addr["NetworkInterfaceId"], seeded.nat_interface.as_str());
    assert_eq!(addr["PrivateIp"], seeded.nat_private_ip.to_string().as_str());
    assert_eq!(got["nat_gateways"]["VpcId"], seeded.vpc_id.as_str());
    let routed: Vec<&str> = got["routed_subnets"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(routed, seeded.private_subnet_ids.iter().map(String::as_str).collect::<Vec<_>>());

    let flow_logs = got["flow_logs"].as_array().unwrap();
    assert_eq!(flow_logs.len(), 1, "{flow_logs:#?}");
    let fl = &flow_logs[0];
    assert_eq!(fl["FlowLogId"], seeded.flow_log_id.as_deref().unwrap());
    assert_eq!(fl["ResourceId"], seeded.nat_interface.as_str());
    assert_eq!(fl["LogDestinationType"], "cloud-watch-logs");
    assert_eq!(fl["LogGroupName"], seeded.log_group.as_deref().unwrap());
    assert_eq!(fl["MaxAggregationInterval"], 60);
    assert_eq!(fl["LogFormat"], sim.custom_format());
    assert!(sim.custom_format().contains("${pkt-dstaddr}") && sim.custom_format().contains("${tcp-flags}"));

    // Every record is an event, rewritten to moto's interface, address and VPC.
    let events = &got["log_events"];
    assert_eq!(events["count"], records);
    let first = events["first_message"].as_str().unwrap();
    let scenario = sim.scenario();
    assert!(first.contains(&seeded.nat_interface) && first.contains(&seeded.vpc_id), "{first}");
    assert!(!first.contains(&scenario.nat.interface_id) && !first.contains(&scenario.nat.vpc_id), "{first}");
    let ok: Vec<&str> = events["first_ok_message"].as_str().unwrap().split(' ').collect();
    let (nat_ip, sim_ip) = (seeded.nat_private_ip.to_string(), scenario.nat.addresses[0].to_string());
    assert!(ok.contains(&nat_ip.as_str()) && !ok.contains(&sim_ip.as_str()), "{ok:?}");

    // The metrics, through the CBOR proxy, paged 20 datapoints at a time.
    let m = &got["metrics"];
    assert!(m["pages"].as_u64().unwrap() > 1, "paged: {m}");
    let series = &m["series"];
    for (name, stat) in [
        ("ErrorPortAllocation", "sum"),
        ("ConnectionAttemptCount", "sum"),
        ("ConnectionEstablishedCount", "sum"),
        ("IdleTimeoutCount", "sum"),
        ("PacketsDropCount", "sum"),
        ("ActiveConnectionCount", "max"),
    ] {
        let want = if stat == "sum" { metrics.total(name) } else { metrics.max(name) };
        assert_eq!(series[name][stat].as_f64().unwrap(), want as f64, "{name} {stat}");
        assert_eq!(series[name]["points"].as_u64().unwrap(), metrics.get(name).unwrap().len() as u64, "{name}");
    }
    assert!(series["ErrorPortAllocation"]["sum"].as_f64().unwrap() > 0.0);

    // The slice holds the failed attempts but not the connections opened earlier that hold the
    // ports: the logs alone show the leak's destination, not the exhaustion (the full test does).
    let (report, parsed) = local_analysis(&seeded, scenario, &std::fs::read(dump.path()).unwrap());
    assert_eq!(parsed, records);
    let leak = &scenario.destinations[0];
    assert_eq!((report.destinations[0].address, report.destinations[0].port), (IpAddr::V4(leak.ip), leak.port));
}

/// What `diagnose --engine local` does with the events: parse them with the flow log's LogFormat
/// and analyze them with what DescribeNatGateways and DescribeVpcs say. Returns the report and the
/// records parsed.
fn local_analysis(seeded: &Seeded, scenario: &Scenario, events: &[u8]) -> (Report, u64) {
    let format = LogFormat::parse(seeded.log_format.as_deref().unwrap()).unwrap();
    let mut analyzer = Analyzer::new(AnalyzeConfig {
        nat_addresses: vec![IpAddr::V4(seeded.nat_private_ip)],
        nat_interface: Some(seeded.nat_interface.parse().unwrap()),
        vpc_cidrs: CidrSet::new(scenario.vpc_cidrs.iter().map(|c| c.parse().unwrap())),
        nat_gateway_id: Some(seeded.nat_gateway_id.clone()),
        vpc_id: Some(seeded.vpc_id.clone()),
        ..AnalyzeConfig::default()
    });
    let stats = parse_all(events, format.clone(), true, &mut |r| analyzer.push(r));
    assert_eq!(stats.skipped, 0, "{:?}", stats.bad_lines);
    let records = stats.records;
    analyzer.add_input(seeded.log_group.clone().unwrap(), &format, stats);
    (analyzer.finish().unwrap(), records)
}

/// The whole 8 minutes (~320,000 records: ~10 s to seed, ~20 s to page through moto): the local
/// analysis of the events moto serves finds the exhaustion, although moto's NAT IP lies outside
/// the VPC's CIDRs.
#[test]
fn the_local_analysis_of_what_moto_serves_finds_the_exhaustion() {
    let sim = idle_leak();
    let moto = Moto::start().unwrap();
    let seeded = moto.seed(&sim, SeedMode::Diagnose).unwrap_or_else(|e| panic!("{e}\n{}", moto.logs()));
    let dump = tempfile::NamedTempFile::new().unwrap();
    let got = inspect(&moto, &seeded, None, Some(dump.path()));
    assert_eq!(got["log_events"]["count"], seeded.records_written);
    let scenario = sim.scenario();
    let (report, parsed) = local_analysis(&seeded, scenario, &std::fs::read(dump.path()).unwrap());
    assert_eq!(parsed, seeded.records_written);
    let leak = &scenario.destinations[0];
    let top = &report.destinations[0];
    eprintln!("{:#?}\n{:#?}", report.verdict, top.evidence);
    assert_eq!(report.verdict.status, Status::Exhausted, "{:#?}", report.verdict);
    assert_eq!((top.address, top.port), (IpAddr::V4(leak.ip), leak.port));
}

#[test]
fn doctor_mode_seeds_gateways_without_usable_flow_logs() {
    let sim = Simulation::run(&recent(Scenario::builtin("healthy").unwrap().with_duration(120))).unwrap();
    let moto = Moto::start_with(MotoOptions { max_datapoints: Some(7), ..MotoOptions::default() }).unwrap();
    let seeded = moto.seed(&sim, SeedMode::Doctor).unwrap_or_else(|e| panic!("{e}\n{}", moto.logs()));
    assert_eq!(seeded.log_group, None);
    assert_eq!(seeded.records_written, 0);
    let cases: Vec<&str> = seeded.doctor_cases.iter().map(|c| c.case.as_str()).collect();
    assert_eq!(cases, ["no-flow-log", "s3-only", "default-format-600s"]);
    assert_eq!(seeded.doctor_cases[0].nat_gateway_id, seeded.nat_gateway_id);

    let got = inspect(&moto, &seeded, None, None);
    assert_eq!(got["flow_logs"].as_array().unwrap().len(), 0, "{:#}", got["flow_logs"]);
    // The proxy's own page size applies when the request sets none.
    assert!(got["metrics"]["pages"].as_u64().unwrap() > 1);

    for case in &seeded.doctor_cases[1..] {
        let other = Seeded { nat_gateway_id: case.nat_gateway_id.clone(), log_group: None, ..seeded.clone() };
        let got = inspect(&moto, &other, None, None);
        let fl = &got["flow_logs"].as_array().unwrap()[0];
        assert_eq!(fl["FlowLogId"], case.flow_log_id.as_deref().unwrap());
        match case.case.as_str() {
            "s3-only" => {
                assert_eq!(fl["LogDestinationType"], "s3");
                assert_eq!(fl["ResourceId"], case.vpc_id.as_str());
            }
            _ => {
                assert_eq!(fl["LogDestinationType"], "cloud-watch-logs");
                assert_eq!(fl["MaxAggregationInterval"], 600);
                assert_eq!(fl["ResourceId"], case.nat_interface.as_str());
                assert!(!fl["LogFormat"].as_str().unwrap().contains("pkt-dstaddr"));
            }
        }
    }
}

#[test]
fn the_python_side_passes_its_own_tests() {
    let python = natgw_testkit::moto::python_in(&natgw_testkit::moto::venv_dir());
    assert!(python.exists(), "no {}: run `cargo xtask moto-venv`", python.display());
    let out = Command::new(python)
        .args(["-m", "unittest", "-q", "test_cbor_proxy", "test_orphan_guard"])
        .current_dir(Moto::scripts_dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn env_points_a_child_at_moto_only() {
    let moto = Moto::start().unwrap();
    let env = moto.env();
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
    assert_eq!(get("AWS_ENDPOINT_URL"), moto.endpoint_url());
    assert_eq!(get("AWS_ENDPOINT_URL_CLOUDWATCH"), moto.cloudwatch_endpoint_url());
    assert_eq!(get("AWS_EC2_METADATA_DISABLED"), "true");
    assert_eq!(std::fs::read_to_string(get("AWS_CONFIG_FILE")).unwrap(), "");
    assert_eq!(std::fs::read_to_string(get("AWS_SHARED_CREDENTIALS_FILE")).unwrap(), "");
    // A child sees exactly our AWS_* variables, whatever the developer has set.
    let mut cmd = Command::new("env");
    cmd.env("AWS_PROFILE", "someones-prod");
    let out = moto.apply(&mut cmd).output().unwrap();
    let mut seen: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("AWS_"))
        .map(|l| l.split('=').next().unwrap().to_owned())
        .collect();
    seen.sort();
    let mut want: Vec<String> = env.into_iter().map(|(k, _)| k).collect();
    want.sort();
    assert_eq!(seen, want);
}
