//! Differential tests of the analyzer's fast path (`natgw_core::analyze::FastShard`) against the
//! reference path: the same records, split over several shards in a scrambled order, must give the
//! same report, byte for byte, over every simulator scenario and layout and over random inputs, with
//! the NAT addresses configured or inferred by a first pass.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::net::IpAddr;

use natgw_core::analyze::{AnalyzeConfig, Analyzer};
use natgw_core::flowlog::{LogFormat, ParseStats, parse_all};
use natgw_core::net::{CidrSet, InterfaceId};
use natgw_testkit::sim::{Scenario, Simulation};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// One input: its name and text.
type Input = (&'static str, Vec<u8>);

/// The report of the reference path: every record pushed in order.
fn reference(config: &AnalyzeConfig, inputs: &[Input]) -> String {
    let mut a = Analyzer::new(config.clone());
    for (name, bytes) in inputs {
        let stats = parse_all(bytes, LogFormat::default(), false, &mut |r| a.push(r));
        a.add_input(*name, &LogFormat::default(), stats);
    }
    outcome(a.finish())
}

/// The report of the fast path: the records dealt over `shards` shards in blocks, the shards merged in
/// reverse order (as threads finishing in any order would).
/// Without configured NAT addresses, a first pass over the records (over shards too) infers them; when
/// it cannot, the result is `None` (the CLI then takes the reference path).
fn fast(config: &AnalyzeConfig, inputs: &[Input], shards: usize, block: usize) -> Option<String> {
    let mut a = Analyzer::new(config.clone());
    if let Some(template) = a.nat_evidence() {
        let mut parts = vec![template; shards];
        let mut n = 0usize;
        for (_, bytes) in inputs {
            parse_all(bytes, LogFormat::default(), false, &mut |r| {
                parts[(n / block) % shards].push(r);
                n += 1;
            });
        }
        let mut evidence = parts.pop().unwrap();
        for p in parts.into_iter().rev() {
            evidence.absorb(p);
        }
        if !a.infer_nat(evidence) {
            return None;
        }
    }
    let template = a.fast_shard().expect("the NAT addresses are known");
    let mut parts = vec![template; shards];
    let mut stats: Vec<(&str, ParseStats)> = Vec::new();
    let mut n = 0usize;
    for (name, bytes) in inputs {
        let s = parse_all(bytes, LogFormat::default(), false, &mut |r| {
            parts[(n / block) % shards].push(r);
            n += 1;
        });
        stats.push((name, s));
    }
    // Threads sort their shards before handing them over; a shard that did not must merge the same.
    for (k, mut p) in parts.into_iter().enumerate().rev() {
        if k % 2 == 0 {
            p.sort();
        }
        a.absorb_fast(p);
    }
    for (name, s) in stats {
        a.add_input(name, &LogFormat::default(), s);
    }
    Some(outcome(a.finish()))
}

fn outcome(r: Result<natgw_core::report::Report, natgw_core::analyze::AnalyzeError>) -> String {
    match r {
        Ok(report) => serde_json::to_string_pretty(&report).unwrap(),
        Err(e) => format!("error: {e}"),
    }
}

/// Checks the paths agree; returns whether there was a report (not an error).
fn assert_same(what: &str, config: &AnalyzeConfig, inputs: &[Input]) -> bool {
    let want = reference(config, inputs);
    for (shards, block) in [(1, usize::MAX), (3, 1), (2, 997)] {
        let Some(got) = fast(config, inputs, shards, block) else {
            assert!(want.starts_with("error"), "{what}: the NAT was not inferred, yet the reference found it");
            continue;
        };
        if got != want {
            let line = want.lines().zip(got.lines()).position(|(a, b)| a != b).unwrap_or(0);
            panic!(
                "{what}: fast path ({shards} shards, blocks of {block}) differs from the reference at line {line}:\n  \
                 reference: {}\n  fast:      {}",
                want.lines().nth(line).unwrap_or(""),
                got.lines().nth(line).unwrap_or("")
            );
        }
    }
    !want.starts_with("error")
}

fn scenario_config(scenario: &Scenario) -> AnalyzeConfig {
    AnalyzeConfig {
        nat_addresses: scenario.nat.addresses.iter().map(|a| IpAddr::V4(*a)).collect(),
        vpc_cidrs: CidrSet::new(scenario.vpc_cidrs.iter().map(|c| c.parse().unwrap())),
        ..AnalyzeConfig::default()
    }
}

/// Every builtin scenario has its test below (one each, so they run in parallel).
#[test]
fn every_builtin_scenario_is_covered() {
    assert_eq!(Scenario::builtin_names(), ["healthy", "hot-s3", "idle-leak", "two-addresses", "udp-dns"]);
}

#[test]
fn healthy() {
    scenario_gives_the_reference_report("healthy");
}

#[test]
fn hot_s3() {
    scenario_gives_the_reference_report("hot-s3");
}

#[test]
fn idle_leak() {
    scenario_gives_the_reference_report("idle-leak");
}

#[test]
fn two_addresses() {
    scenario_gives_the_reference_report("two-addresses");
}

#[test]
fn udp_dns() {
    scenario_gives_the_reference_report("udp-dns");
}

/// Every layout, with the NAT configured (VPC ranges given or assumed) or inferred.
fn scenario_gives_the_reference_report(name: &str) {
    let scenario = Scenario::builtin(name).unwrap();
    let sim = Simulation::run(&scenario).unwrap();
    let config = scenario_config(&scenario);
    let layouts: [(&str, Vec<Input>); 3] = [
        ("nat-v2", vec![("nat-v2", sim.nat_v2())]),
        ("nat-custom", vec![("nat-custom", sim.nat_custom())]),
        ("nat-v2+clients", vec![("nat-v2", sim.nat_v2()), ("clients-v2", sim.clients_v2())]),
    ];
    for (layout, inputs) in &layouts {
        assert!(assert_same(&format!("{name} {layout}"), &config, inputs), "{name} {layout}: no report");
    }
    // The VPC ranges assumed; the NAT inferred by a first pass.
    let assumed = AnalyzeConfig { vpc_cidrs: CidrSet::default(), ..config.clone() };
    assert_same(&format!("{name} nat-v2+clients, assumed ranges"), &assumed, &layouts[2].1);
    let inferred = AnalyzeConfig { nat_addresses: Vec::new(), ..config.clone() };
    for (layout, inputs) in &layouts {
        assert!(assert_same(&format!("{name} {layout}, NAT inferred"), &inferred, inputs));
    }
}

/// Random records over small pools of addresses, ports and times, so that legs, port reuse, ties,
/// several interfaces, secondary NAT addresses, reversed start/end, NODATA and REJECT all occur.
fn random_input(rng: &mut SmallRng, lines: usize, custom: bool) -> Vec<u8> {
    let mut out = String::new();
    if custom {
        out.push_str("version interface-id srcaddr dstaddr srcport dstport protocol bytes start end action log-status tcp-flags pkt-srcaddr pkt-dstaddr\n");
    } else {
        out.push_str("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n");
    }
    let nat = ["10.0.0.5", "10.0.0.6"];
    let clients = ["10.0.1.10", "10.0.1.11", "10.0.2.12", "100.64.0.9"];
    let hosts = ["52.1.1.1", "52.1.1.2", "198.51.100.7"];
    let ifaces = ["eni-0aaa", "eni-0aaa", "eni-0aaa", "eni-0bbb"];
    let t0 = 1_700_000_000u64;
    for _ in 0..lines {
        let iface = ifaces[rng.random_range(0..ifaces.len())];
        let n = nat[usize::from(rng.random_bool(0.2))];
        let c = clients[rng.random_range(0..clients.len())];
        let h = hosts[rng.random_range(0..hosts.len())];
        let proto = if rng.random_bool(0.8) { 6 } else { 17 };
        let hport = if proto == 6 { [443, 80][rng.random_range(0..2)] } else { 53 };
        let nport = rng.random_range(1024..1064u16);
        let cport = rng.random_range(30000..30040u16);
        let start = t0 + rng.random_range(0..3000u64);
        let mut end = start + rng.random_range(0..70u64);
        if rng.random_bool(0.02) {
            end = start.saturating_sub(5);
        }
        // Which leg: client → NAT, NAT → host, host → NAT, NAT → client, or a client's own record.
        let (src, dst, sport, dport, psrc, pdst) = match rng.random_range(0..5) {
            0 => (c, n, cport, hport, c, h),
            1 => (n, h, nport, hport, n, h),
            2 => (h, n, hport, nport, h, n),
            3 => (n, c, hport, cport, h, c),
            _ => (c, h, cport, hport, c, h),
        };
        let action = if rng.random_bool(0.03) { "REJECT" } else { "ACCEPT" };
        let status = if rng.random_bool(0.02) { "NODATA" } else { "OK" };
        let bytes = rng.random_range(40..5000u32);
        if custom {
            let flags = [0u16, 2, 3, 1, 18, 19, 4][rng.random_range(0..7)];
            let (psrc, pdst) = if rng.random_bool(0.1) { ("-", "-") } else { (psrc, pdst) };
            writeln!(
                out,
                "5 {iface} {src} {dst} {sport} {dport} {proto} {bytes} {start} {end} {action} {status} {flags} {psrc} {pdst}"
            )
            .unwrap();
        } else {
            writeln!(
                out,
                "2 123456789012 {iface} {src} {dst} {sport} {dport} {proto} 3 {bytes} {start} {end} {action} {status}"
            )
            .unwrap();
        }
    }
    out.into_bytes()
}

#[test]
fn random_inputs_give_the_reference_report() {
    let mut rng = SmallRng::seed_from_u64(0x5eed);
    let mut reports = 0;
    for round in 0..40 {
        let custom = round % 2 == 1;
        let lines = [50, 400, 3000][round % 3];
        let input = random_input(&mut rng, lines, custom);
        let nat: Vec<IpAddr> = match round % 5 {
            0 => vec!["10.0.0.5".parse().unwrap()],
            1 => vec!["10.0.0.5".parse().unwrap(), "10.0.0.6".parse().unwrap()],
            2 => vec!["10.0.0.6".parse().unwrap()],
            3 => Vec::new(),                        // inferred
            _ => vec!["10.9.9.9".parse().unwrap()], // never seen: an error either way
        };
        let config = AnalyzeConfig {
            nat_addresses: nat,
            vpc_cidrs: if round % 5 == 0 {
                CidrSet::default()
            } else {
                CidrSet::new(["10.0.0.0/16".parse().unwrap(), "100.64.0.0/16".parse().unwrap()])
            },
            nat_interface: (round % 7 == 3).then(|| InterfaceId::try_from("eni-0bbb".to_owned()).unwrap()),
            ..AnalyzeConfig::default()
        };
        reports += usize::from(assert_same(&format!("random round {round}"), &config, &[("random", input)]));
    }
    // A fifth of the rounds name a NAT address that never occurs; most others must reach a report.
    assert!(reports >= 25, "only {reports} of 40 random rounds produced a report");
}
