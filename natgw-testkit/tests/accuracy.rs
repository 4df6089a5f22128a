//! Accuracy of the local analyzer against the simulator's ground truth: every scenario, each log
//! layout (NAT interface in v2; in the custom format; v2 plus the clients' interfaces).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::net::IpAddr;

use natgw_core::analyze::{AnalyzeConfig, Analyzer};
use natgw_core::flowlog::{LogFormat, parse_all};
use natgw_core::net::CidrSet;
use natgw_core::report::{Report, Status};
use natgw_testkit::sim::{Scenario, Simulation, Verdict};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Layout {
    NatV2,
    NatCustom,
    NatV2AndClients,
}

fn analyze(sim: &Simulation, layout: Layout) -> Report {
    let scenario = sim.scenario();
    let cidrs = CidrSet::new(scenario.vpc_cidrs.iter().map(|c| c.parse().unwrap()));
    let mut a = Analyzer::new(AnalyzeConfig { vpc_cidrs: cidrs, ..AnalyzeConfig::default() });
    let mut feed = |name: &str, bytes: Vec<u8>| {
        let mut sink = Vec::new();
        let stats = parse_all(&bytes, LogFormat::default(), false, &mut |r| sink.push(format!("{r:?}")));
        // Parse again straight into the analyzer (records borrow the buffer).
        let _ = sink;
        let stats2 = parse_all(&bytes, LogFormat::default(), false, &mut |r| a.push(r));
        assert_eq!(stats.records, stats2.records);
        assert_eq!(stats.skipped, 0, "{name}: {:?}", stats.bad_lines);
        a.add_input(name, &LogFormat::default(), stats2);
    };
    match layout {
        Layout::NatV2 => feed("nat-v2", sim.nat_v2()),
        Layout::NatCustom => feed("nat-custom", sim.nat_custom()),
        Layout::NatV2AndClients => {
            feed("nat-v2", sim.nat_v2());
            feed("clients-v2", sim.clients_v2());
        }
    }
    a.finish().unwrap()
}

fn check(name: &str) {
    let scenario = Scenario::builtin(name).unwrap();
    let sim = Simulation::run(&scenario).unwrap();
    let truth = sim.truth();
    let top_truth = truth.destinations.iter().max_by_key(|d| (d.peak, d.attempts)).unwrap();
    let mut failures = Vec::new();
    for layout in [Layout::NatV2, Layout::NatCustom, Layout::NatV2AndClients] {
        let r = analyze(&sim, layout);
        let top = &r.destinations[0];
        let want_status = match truth.verdict {
            Verdict::Healthy => Status::Healthy,
            Verdict::AtRisk => Status::AtRisk,
            Verdict::Exhaustion => Status::Exhausted,
        };
        let err = (top.peak_connections as f64 - f64::from(top_truth.peak)) / f64::from(top_truth.peak);
        eprintln!(
            "{name:>14} {layout:<16?} verdict {:?} (truth {:?}) top {}:{} peak {} [{}-{}] truth {} ({:+.1}%) hold {:?} ab {:?} (truth {:?}) drops {} nat {:?}",
            r.verdict.status,
            truth.verdict,
            top.address,
            top.port,
            top.peak_connections,
            top.peak_connections_range[0],
            top.peak_connections_range[1],
            top_truth.peak,
            err * 100.0,
            top.evidence.hold_model,
            top.evidence.abandoned_share,
            top_truth.abandoned_share_truth,
            top.evidence.dropped_attempts,
            r.input.nat_addresses,
        );
        if r.verdict.status != want_status {
            failures.push(format!("{layout:?}: verdict {:?}, truth {:?}", r.verdict.status, truth.verdict));
        }
        if top.address != IpAddr::V4(top_truth.ip) || top.port != top_truth.port || top.protocol.0 != top_truth.protocol
        {
            failures.push(format!(
                "{layout:?}: top destination {}:{}, truth {}:{}",
                top.address, top.port, top_truth.ip, top_truth.port
            ));
        }
        if err.abs() > 0.10 {
            failures.push(format!(
                "{layout:?}: peak {} vs truth {} ({:+.1}%)",
                top.peak_connections,
                top_truth.peak,
                err * 100.0
            ));
        }
        let addrs: Vec<IpAddr> = truth.nat_addresses.iter().map(|a| IpAddr::V4(*a)).collect();
        let mut got_addrs = r.input.nat_addresses.clone();
        got_addrs.sort();
        let mut want_addrs = addrs.clone();
        want_addrs.sort();
        if got_addrs != want_addrs {
            failures.push(format!("{layout:?}: NAT addresses {got_addrs:?}, truth {want_addrs:?}"));
        }
        if layout != Layout::NatV2 {
            let got: Vec<IpAddr> = top.sources.iter().take(5).map(|s| s.address).collect();
            let want: Vec<IpAddr> = top_truth.top_clients.iter().take(5).map(|c| IpAddr::V4(c.ip)).collect();
            if got != want {
                failures.push(format!("{layout:?}: top-5 clients {got:?}, truth {want:?}"));
            }
            for (s, c) in top.sources.iter().zip(&top_truth.top_clients).take(5) {
                if s.connections != c.attempts {
                    failures.push(format!(
                        "{layout:?}: client {} connections {} vs truth attempts {}",
                        s.address, s.connections, c.attempts
                    ));
                }
            }
        } else if !top.sources.is_empty() {
            failures.push("NatV2: sources attributed where attribution is impossible".into());
        }
    }
    assert!(failures.is_empty(), "{name}:\n  {}", failures.join("\n  "));
}

#[test]
fn healthy() {
    check("healthy");
}

#[test]
fn hot_s3() {
    check("hot-s3");
}

#[test]
fn idle_leak() {
    check("idle-leak");
}

#[test]
fn two_addresses() {
    check("two-addresses");
}

#[test]
fn udp_dns() {
    check("udp-dns");
}
