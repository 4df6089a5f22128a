//! The live diagnosis, orchestrated against a simulated account (natgw-aws' mockall mock answering
//! from the scenario simulator): every scenario through both engines, checked against the
//! simulator's truth and against the local analyzer over the same records (one estimator, two engines).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::net::IpAddr;
use std::sync::Arc;

use natgw_aws::live::{self, DiagnoseOptions, Engine, LiveError};
use natgw_aws::runner::{QueryRunner, RunnerOptions};
use natgw_core::analyze::{AnalyzeConfig, Analyzer};
use natgw_core::flowlog::{LogFormat, parse_all};
use natgw_core::net::CidrSet;
use natgw_core::report::{AttributionMethod, Report, Status};
use natgw_testkit::aws::{Account, Logging, scenario_mock};
use natgw_testkit::sim::{Scenario, Simulation, Verdict};

fn quiet(_: &str) {}

fn fast() -> RunnerOptions {
    RunnerOptions {
        poll_initial: std::time::Duration::from_millis(1),
        poll_max: std::time::Duration::from_millis(2),
        ..RunnerOptions::default()
    }
}

async fn diagnose(sim: &Simulation, logging: Logging, engine: Engine) -> (Result<Report, LiveError>, Arc<Account>) {
    let account = Arc::new(Account::of(sim, logging));
    let api = scenario_mock(account.clone());
    let runner = QueryRunner::new(&api, fast());
    let sc = sim.scenario();
    let mut opts = DiagnoseOptions::new(&sc.nat.nat_gateway_id, sc.start / 60 * 60, sc.end().div_ceil(60) * 60 + 60);
    opts.engine = engine;
    let r = live::diagnose(&api, &runner, &opts, &quiet).await;
    (r, account)
}

/// The local analyzer over the NAT interface's custom-format records that start inside `ranges`
/// (what the live path read), told the NAT addresses and VPC.
fn local(sim: &Simulation, ranges: &[(u64, u64)]) -> Report {
    let sc = sim.scenario();
    let mut a = Analyzer::new(AnalyzeConfig {
        nat_addresses: sc.nat.addresses.iter().map(|a| IpAddr::V4(*a)).collect(),
        vpc_cidrs: CidrSet::new(sc.vpc_cidrs.iter().map(|c| c.parse().unwrap())),
        ..AnalyzeConfig::default()
    });
    let format = LogFormat::parse(sim.custom_format()).unwrap();
    let text = sim.nat_custom();
    let kept: Vec<&[u8]> = text
        .split(|b| *b == b'\n')
        .skip(1)
        .filter(|line| {
            let mut start = None;
            parse_all(line, format.clone(), true, &mut |r| start = r.start);
            start.is_some_and(|s| ranges.iter().any(|&(a, b)| (a..=b).contains(&s)))
        })
        .collect();
    let stats = parse_all(&kept.join(&b'\n'), format.clone(), true, &mut |r| a.push(r));
    a.add_input("nat-custom", &format, stats);
    a.finish().unwrap()
}

fn want(v: Verdict) -> Status {
    match v {
        Verdict::Healthy => Status::Healthy,
        Verdict::AtRisk => Status::AtRisk,
        Verdict::Exhaustion => Status::Exhausted,
    }
}

async fn check(name: &str) {
    let sim = Simulation::run(&Scenario::builtin(name).unwrap()).unwrap();
    let truth = sim.truth();
    let top_truth = truth.destinations.iter().max_by_key(|d| (d.peak, d.attempts)).unwrap();
    for engine in [Engine::Insights, Engine::Local] {
        let (r, account) = diagnose(&sim, Logging::Custom, engine).await;
        let r = r.unwrap_or_else(|e| panic!("{name} {engine:?}: {e}"));
        let reference = local(&sim, &live_ranges(&r));
        let top = &r.destinations[0];
        eprintln!(
            "{name:<14} {engine:?}: {:?} top {}:{} peak {} (local {}, truth {}) queries {}",
            r.verdict.status,
            top.address,
            top.port,
            top.peak_connections,
            reference.destinations[0].peak_connections,
            top_truth.peak,
            account.queries_started()
        );
        for d in r.destinations.iter().take(3) {
            eprintln!(
                "  {}:{} peak {} range {:?} ppm {} err {:?} sat {}",
                d.address,
                d.port,
                d.peak_connections,
                d.peak_connections_range,
                d.evidence.max_ports_per_minute,
                d.evidence.error_port_allocation,
                d.saturated
            );
        }
        eprintln!(
            "  ranges {:?} windows {:?} notes {:?} findings {:?}",
            live_ranges(&r),
            r.live.as_ref().unwrap().error_windows,
            r.notes,
            r.findings.iter().map(|f| &f.id).collect::<Vec<_>>()
        );
        assert_eq!(r.verdict.status, want(truth.verdict), "{name} {engine:?}: {}", r.verdict.summary);
        assert_eq!(top.address.to_string(), top_truth.ip.to_string(), "{name} {engine:?}");
        assert_eq!(top.port, top_truth.port, "{name} {engine:?}");
        // One estimator: the live engines reach the local analyzer's estimate of the same records.
        let local_top = reference.destinations.iter().find(|d| d.address == top.address && d.port == top.port).unwrap();
        let diff = top.peak_connections.abs_diff(local_top.peak_connections) as f64;
        assert!(
            diff <= 0.02 * local_top.peak_connections as f64,
            "{name} {engine:?}: live {} vs local {}",
            top.peak_connections,
            local_top.peak_connections
        );
        // The metrics are evidence: errors pinned on the saturated destination, with the count.
        let errors = sim.metrics().total("ErrorPortAllocation");
        let live = r.live.as_ref().unwrap();
        assert_eq!(live.error_windows.iter().map(|w| w.errors).sum::<u64>(), errors);
        if errors > 0 {
            assert!(top.saturated && top.evidence.error_port_allocation == Some(errors), "{name} {engine:?}");
        }
        // Attribution: pkt-dstaddr in the custom format; the top clients are the truth's.
        assert_eq!(r.attribution.method, AttributionMethod::PktDstaddr, "{name} {engine:?}");
        let want_clients: Vec<String> = top_truth.top_clients.iter().take(3).map(|c| c.ip.to_string()).collect();
        let got_clients: Vec<String> = top.sources.iter().take(3).map(|s| s.address.to_string()).collect();
        assert_eq!(got_clients, want_clients, "{name} {engine:?}");
        match engine {
            Engine::Insights => {
                assert!(live.bytes_scanned > 0 && !live.queries.is_empty() && live.events_pulled == 0);
            }
            Engine::Local => assert!(live.events_pulled > 0 && account.queries_started() == 0),
        }
    }
}

#[tokio::test]
async fn healthy() {
    check("healthy").await;
}

#[tokio::test]
async fn hot_s3() {
    check("hot-s3").await;
}

#[tokio::test]
async fn idle_leak() {
    check("idle-leak").await;
}

#[tokio::test]
async fn two_addresses() {
    check("two-addresses").await;
}

#[tokio::test]
async fn udp_dns() {
    check("udp-dns").await;
}

#[tokio::test]
async fn default_format_cannot_attribute_but_still_estimates() {
    let sim = Simulation::run(&Scenario::builtin("idle-leak").unwrap()).unwrap();
    let (r, _) = diagnose(&sim, Logging::Default, Engine::Insights).await;
    let r = r.unwrap();
    assert_eq!(r.verdict.status, Status::Exhausted);
    assert_eq!(r.attribution.method, AttributionMethod::Unavailable);
    let ids: Vec<&str> = r.findings.iter().map(|f| f.id.as_str()).collect();
    assert!(ids.contains(&"no-pkt-dstaddr") && ids.contains(&"attribution-unavailable"), "{ids:?}");
}

#[tokio::test]
async fn without_flow_logs_the_metrics_still_give_the_verdict() {
    let sim = Simulation::run(&Scenario::builtin("idle-leak").unwrap()).unwrap();
    let (r, account) = diagnose(&sim, Logging::None, Engine::Insights).await;
    let r = r.unwrap();
    assert_eq!(r.verdict.status, Status::Exhausted);
    assert!(r.destinations.is_empty());
    assert_eq!(r.findings[0].id, "no-flow-logs");
    assert!(r.findings[0].remedies[0].command.as_deref().unwrap().starts_with("aws ec2 create-flow-logs"));
    assert_eq!(account.queries_started(), 0, "no query without a log group");
}

#[tokio::test]
async fn an_unknown_gateway_lists_the_regions_gateways() {
    let sim = Simulation::run(&Scenario::builtin("healthy").unwrap()).unwrap();
    let api = scenario_mock(Arc::new(Account::of(&sim, Logging::Custom)));
    let runner = QueryRunner::new(&api, fast());
    let opts = DiagnoseOptions::new("nat-0000000000000dead", 0, 3600);
    let e = live::diagnose(&api, &runner, &opts, &quiet).await.unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("NAT gateway nat-0000000000000dead not found in us-east-1; the region has: nat-"), "{msg}");
    // By Name tag too.
    let nat = live::find_nat(&api, "healthy-nat").await.unwrap();
    assert_eq!(nat.id, sim.scenario().nat.nat_gateway_id);
}

#[tokio::test]
async fn scan_ranks_gateways_by_errors() {
    let sim = Simulation::run(&Scenario::builtin("idle-leak").unwrap()).unwrap();
    let api = scenario_mock(Arc::new(Account::of(&sim, Logging::Custom)));
    let sc = sim.scenario();
    let rows = live::scan(&api, sc.start / 60 * 60, sc.end() + 60, 4).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].errors, sim.metrics().total("ErrorPortAllocation"));
    assert_eq!(rows[0].peak_active_connections, Some(sim.metrics().max("ActiveConnectionCount")));
    assert_eq!(live::scan_verdict(&rows).status, Status::Exhausted);
}

fn live_ranges(r: &Report) -> Vec<(u64, u64)> {
    r.live.as_ref().unwrap().analysed_ranges.iter().map(|[a, b]| (a.0, b.0)).collect()
}
