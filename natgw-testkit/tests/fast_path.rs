//! Differential tests of the analyzer's fast path (`natgw_core::analyze::FastShard`) against the
//! reference path: the same records, split over several shards in a scrambled order, must give the
//! same report, byte for byte, over every simulator scenario and layout and over random inputs, with
//! the NAT addresses configured, inferred by a first pass, or guessed from the first records and
//! confirmed by the pass (read again when the guess was wrong); and so must the streaming estimate
//! (`FlowStreams`), fed block by block in input order as the CLI's sequencer feeds it, whenever the
//! records come in time order (it must say so when they do not).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::net::IpAddr;

use natgw_core::analyze::{AnalyzeConfig, Analyzer, FastShard, FlowStreams, LaneFlows, NatFlows};
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

/// Why the fast path gave no report to compare.
#[derive(Debug, PartialEq)]
enum Skip {
    /// The first pass found no NAT gateway (the CLI then takes the reference path).
    NotInferred,
    /// The streams saw records out of order (the CLI then reads again, in memory).
    Unusable,
}

/// How the fast path's flows stream.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stream {
    /// They do not: all in memory.
    Off,
    /// Each block's flows to the whole streams, in input order.
    Whole,
    /// Each block's flows split into the streams' lanes (this many client lanes); each lane is fed
    /// in input order, but the lanes one after the other, the last first (as threads feeding lanes
    /// at their own pace might).
    /// Destinations stream from their first, sixth or 65th record (by the number of shards), so
    /// that small inputs stream, and records kept are handed over at different points.
    Lanes(usize),
}

/// How the fast path finds the NAT gateway when it is not configured.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Nat {
    /// A first pass over the records (over shards too) infers it.
    FirstPass,
    /// It is guessed from this many first records; the pass's shards collect the evidence and
    /// confirm it, else the records are read again (the guess's shards and streams dropped).
    Guess(usize),
}

/// The report of the fast path: the records dealt over `shards` shards in blocks, the shards merged in
/// reverse order (as threads finishing in any order would). Streaming, each block's NAT flows go
/// to the streaming estimate in input order, as the CLI's sequencer does.
fn fast(
    config: &AnalyzeConfig,
    inputs: &[Input],
    shards: usize,
    block: usize,
    mode: Stream,
    nat: Nat,
) -> Result<String, Skip> {
    let mut a = Analyzer::new(config.clone());
    let mut guessed = false;
    if let (Some(template), Nat::Guess(first)) = (a.nat_evidence(), nat) {
        let mut sample = template;
        let mut n = 0usize;
        for (_, bytes) in inputs {
            parse_all(bytes, LogFormat::default(), false, &mut |r| {
                if n < first {
                    sample.push(r);
                }
                n += 1;
            });
        }
        guessed = a.guess_nat(sample);
    }
    if let Some(template) = a.nat_evidence().filter(|_| !guessed) {
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
            return Err(Skip::NotInferred);
        }
    }
    loop {
        let template = a.fast_shard().expect("the NAT addresses are known");
        let template = if guessed { template.collect_nat_evidence() } else { template };
        let (parts, stats, streams) = fast_pass(&a, inputs, template, shards, block, mode);
        let mut parts = parts;
        if guessed {
            guessed = false;
            let mut all = a.nat_evidence().expect("not configured");
            for p in parts.iter_mut().rev() {
                all.absorb(p.take_nat_evidence().expect("collected"));
            }
            if !a.confirm_nat(all) {
                // The shards' evidence over every record is the sample's when that was every record.
                assert_ne!(nat, Nat::Guess(usize::MAX), "a guess from every record was not confirmed");
                continue;
            }
        }
        if let Some(streams) = streams {
            if !streams.usable() {
                return Err(Skip::Unusable);
            }
            a.absorb_streams(streams);
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
        return match a.finish() {
            Err(natgw_core::analyze::AnalyzeError::StreamOrder) => Err(Skip::Unusable),
            r => Ok(outcome(r)),
        };
    }
}

/// What one pass of [`fast`] fills: the shards, each input's parse counts, and the streams (when
/// streaming).
type Pass = (Vec<FastShard>, Vec<(&'static str, ParseStats)>, Option<FlowStreams>);

/// One pass of [`fast`] over the records, into `shards` copies of `template`.
fn fast_pass(a: &Analyzer, inputs: &[Input], template: FastShard, shards: usize, block: usize, mode: Stream) -> Pass {
    let stream = mode != Stream::Off;
    let mut parts = vec![template; shards];
    let mut stats: Vec<(&'static str, ParseStats)> = Vec::new();
    // In lanes, destinations stream after 0, 5 or 64 records: the random inputs' destinations are
    // too quiet to stream otherwise (they would keep their records for the reference).
    let mut streams = match mode {
        Stream::Lanes(k) => a.flow_streams_in_lanes(k).keeping_records([0, 5, 64][shards % 3]),
        _ => a.flow_streams(),
    };
    // Per lane, the shares of the blocks, in input order.
    let mut shares: Vec<Vec<LaneFlows>> = Vec::new();
    let mut hand_over = |streams: &mut FlowStreams, flows: NatFlows| match mode {
        Stream::Lanes(_) => {
            for (lane, share) in flows.into_lanes(streams.client_lanes()).into_iter().enumerate() {
                if shares.len() <= lane {
                    shares.resize_with(lane + 1, Vec::new);
                }
                shares[lane].push(share);
            }
        }
        _ => streams.feed(flows),
    };
    let mut n = 0usize;
    for (name, bytes) in inputs {
        let s = parse_all(bytes, LogFormat::default(), false, &mut |r| {
            let part = &mut parts[(n / block) % shards];
            part.push(r);
            n += 1;
            if stream && n.is_multiple_of(block) {
                hand_over(&mut streams, part.take_flows());
            }
        });
        stats.push((name, s));
    }
    if stream {
        // The last, partial block.
        hand_over(&mut streams, parts[(n.saturating_sub(1) / block) % shards].take_flows());
        if let Stream::Lanes(k) = mode {
            let mut lanes = streams.into_lanes();
            assert_eq!(lanes.len(), k + 1);
            for (lane, shares) in lanes.iter_mut().zip(shares).rev() {
                shares.into_iter().for_each(|s| lane.feed(s));
            }
            lanes.reverse();
            streams = FlowStreams::from_lanes(lanes);
        }
    }
    (parts, stats, stream.then_some(streams))
}

fn outcome(r: Result<natgw_core::report::Report, natgw_core::analyze::AnalyzeError>) -> String {
    match r {
        Ok(report) => serde_json::to_string_pretty(&report).unwrap(),
        Err(e) => format!("error: {e}"),
    }
}

/// How the streaming estimate must behave on an input.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Order {
    /// The records are in time order: the streams must be usable.
    InTime,
    /// They may not be: the streams may refuse, but when they do not, they must agree.
    Any,
}

/// Checks the paths agree; returns whether there was a report (not an error).
fn assert_same(what: &str, config: &AnalyzeConfig, inputs: &[Input], order: Order) -> bool {
    let want = reference(config, inputs);
    // Guessed from a few records (often wrong, then read again), or from all of them (always right).
    let nats: &[Nat] = if config.nat_addresses.is_empty() {
        &[Nat::FirstPass, Nat::Guess(20), Nat::Guess(usize::MAX)]
    } else {
        &[Nat::FirstPass]
    };
    for (shards, block) in [(1, usize::MAX), (3, 1), (2, 997)] {
        for stream in [Stream::Off, Stream::Whole, Stream::Lanes(3)] {
            // Guesses on one layout of several shards only (each takes a pass or two).
            let nats = if block == 997 { nats } else { &[Nat::FirstPass] };
            for &nat in nats {
                let got = match fast(config, inputs, shards, block, stream, nat) {
                    Ok(got) => got,
                    Err(Skip::NotInferred) => {
                        assert!(
                            want.starts_with("error"),
                            "{what}: the NAT was not inferred, yet the reference found it"
                        );
                        continue;
                    }
                    Err(Skip::Unusable) => {
                        assert_eq!(
                            order,
                            Order::Any,
                            "{what}: the streams refused records in time order ({shards} {block} {stream:?} {nat:?})"
                        );
                        continue;
                    }
                };
                if got != want {
                    let line = want.lines().zip(got.lines()).position(|(a, b)| a != b).unwrap_or(0);
                    panic!(
                        "{what}: fast path ({shards} shards, blocks of {block}, streaming {stream:?}, NAT {nat:?}) \
                         differs from the reference at line {line}:\n  reference: {}\n  fast:      {}",
                        want.lines().nth(line).unwrap_or(""),
                        got.lines().nth(line).unwrap_or("")
                    );
                }
            }
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
    // The NAT interface's records and the clients' interleaved in time, as VPC-level logs are (and
    // as the CLI reads files of one period).
    let vpc = {
        let (nat, clients) = (sim.nat_v2(), sim.clients_v2());
        let body = clients.iter().position(|b| *b == b'\n').map_or(&clients[..], |n| &clients[n + 1..]);
        in_time_order(&[&nat[..], body].concat(), false)
    };
    let layouts: [(&str, Vec<Input>); 3] = [
        ("nat-v2", vec![("nat-v2", sim.nat_v2())]),
        ("nat-custom", vec![("nat-custom", sim.nat_custom())]),
        ("nat-v2+clients", vec![("vpc-v2", vpc)]),
    ];
    for (layout, inputs) in &layouts {
        assert!(assert_same(&format!("{name} {layout}"), &config, inputs, Order::InTime), "{name} {layout}: no report");
    }
    // One file after the other: the streams may refuse (a client's flows on both must meet), and
    // must agree when they do not.
    let apart = [("nat-v2", sim.nat_v2()), ("clients-v2", sim.clients_v2())];
    assert_same(&format!("{name} nat-v2, then clients-v2"), &config, &apart, Order::Any);
    // The VPC ranges assumed; the NAT inferred by a first pass.
    let assumed = AnalyzeConfig { vpc_cidrs: CidrSet::default(), ..config.clone() };
    assert_same(&format!("{name} nat-v2+clients, assumed ranges"), &assumed, &layouts[2].1, Order::InTime);
    let inferred = AnalyzeConfig { nat_addresses: Vec::new(), ..config.clone() };
    for (layout, inputs) in &layouts {
        assert!(assert_same(&format!("{name} {layout}, NAT inferred"), &inferred, inputs, Order::InTime));
    }
}

/// Random records over small pools of addresses, ports and times, so that legs, port reuse, ties,
/// several interfaces, secondary NAT addresses, reversed start/end, NODATA and REJECT all occur.
/// `realistic`: the NAT gateway's legs only on its interface (eni-0aaa), a client's own records only
/// on the other, as AWS logs them; else any record on any interface. Besides, strangers (instances
/// whose traffic leaves another way) reach the same hosts from their own interface (eni-0ccc), and,
/// when not realistic, from a client's (eni-0bbb) too, which streams must refuse.
fn random_input(rng: &mut SmallRng, lines: usize, custom: bool, realistic: bool) -> Vec<u8> {
    let mut out = String::new();
    if custom {
        out.push_str("version interface-id srcaddr dstaddr srcport dstport protocol bytes start end action log-status tcp-flags pkt-srcaddr pkt-dstaddr\n");
    } else {
        out.push_str("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n");
    }
    let nat = ["10.0.0.5", "10.0.0.6"];
    let clients = ["10.0.1.10", "10.0.1.11", "10.0.2.12", "100.64.0.9"];
    let hosts = ["52.1.1.1", "52.1.1.2", "198.51.100.7"];
    let strangers = ["10.0.3.30", "10.0.3.31"];
    let ifaces = ["eni-0aaa", "eni-0aaa", "eni-0aaa", "eni-0bbb"];
    let t0 = 1_700_000_000u64;
    for _ in 0..lines {
        let mut iface = ifaces[rng.random_range(0..ifaces.len())];
        let n = nat[usize::from(rng.random_bool(0.2))];
        let mut c = clients[rng.random_range(0..clients.len())];
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
        let mut leg = rng.random_range(0..5);
        if rng.random_bool(0.1) {
            (c, leg) = (strangers[rng.random_range(0..strangers.len())], 4);
            iface = if realistic || rng.random_bool(0.8) { "eni-0ccc" } else { "eni-0bbb" };
        }
        let (src, dst, sport, dport, psrc, pdst) = match leg {
            0 => (c, n, cport, hport, c, h),
            1 => (n, h, nport, hport, n, h),
            2 => (h, n, hport, nport, h, n),
            3 => (n, c, hport, cport, h, c),
            _ => (c, h, cport, hport, c, h),
        };
        let iface = match (realistic, leg) {
            (true, 4) if iface != "eni-0ccc" => "eni-0bbb",
            (true, 0..4) => "eni-0aaa",
            _ => iface,
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

/// The input without its interface-id column (the header's too).
fn without_interface_ids(input: &[u8], custom: bool) -> Vec<u8> {
    let column = if custom { 1 } else { 2 };
    let mut out = String::new();
    for line in std::str::from_utf8(input).unwrap().lines() {
        let mut words: Vec<&str> = line.split(' ').collect();
        assert!(words[column] == "interface-id" || words[column].starts_with("eni-"), "{line}");
        words.remove(column);
        out.push_str(&words.join(" "));
        out.push('\n');
    }
    out.into_bytes()
}

/// The lines sorted by (first, last second, TCP flags), as the estimator orders one port's records.
fn in_time_order(input: &[u8], custom: bool) -> Vec<u8> {
    let text = std::str::from_utf8(input).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let (s, e, f) = if custom { (8, 9, Some(12)) } else { (10, 11, None) };
    let mut body: Vec<&str> = lines.collect();
    body.sort_by_key(|l| {
        let w: Vec<&str> = l.split(' ').collect();
        let (a, b) = (w[s].parse::<u64>().unwrap(), w[e].parse::<u64>().unwrap());
        (a.min(b), a.max(b), f.map(|i| w[i].parse::<u16>().unwrap()))
    });
    let mut out = format!("{header}\n");
    for l in body {
        out.push_str(l);
        out.push('\n');
    }
    out.into_bytes()
}

#[test]
fn random_inputs_give_the_reference_report() {
    let mut rng = SmallRng::seed_from_u64(0x5eed);
    let mut reports = 0;
    let mut named_without_ids = 0;
    for round in 0..40 {
        let custom = round % 2 == 1;
        let lines = [50, 400, 3000][round % 3];
        // Half the rounds in time order and on the interfaces AWS would log them on, so the streams
        // must take them; unless the NAT interface's records name destinations (the custom format's
        // pkt-dstaddr) while the same clients' own interfaces are read too: the streams refuse that
        // (see FlowStreams).
        let realistic = round % 4 < 2;
        let mut input = random_input(&mut rng, lines, custom, realistic);
        let order = if realistic {
            input = in_time_order(&input, custom);
            if custom { Order::Any } else { Order::InTime }
        } else {
            Order::Any
        };
        // A quarter of the rounds without interface IDs: every record is then taken as the NAT
        // gateway's, and the addresses that send out of the VPC beside it are told apart.
        if round % 4 == 1 || round % 8 == 2 {
            input = without_interface_ids(&input, custom);
        }
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
        let inputs = [("random", input)];
        named_without_ids += usize::from(reference(&config, &inputs).contains("The records have no interface ID"));
        reports += usize::from(assert_same(&format!("random round {round}"), &config, &inputs, order));
    }
    // The rounds without interface IDs name the addresses that send out beside the gateway.
    assert!(named_without_ids >= 3, "only {named_without_ids} rounds named addresses without interface IDs");
    // A fifth of the rounds name a NAT address that never occurs; most others must reach a report.
    assert!(reports >= 25, "only {reports} of 40 random rounds produced a report");
}

/// A v2 log of 60 rounds 10 s apart: `round(i, line)` writes round `i`'s lines, each (interface,
/// source, destination, source port, destination port).
fn v2_rounds(mut round: impl FnMut(u64, &mut dyn FnMut(&str, &str, &str, u64, u64))) -> Vec<u8> {
    let mut text = String::from(
        "version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n",
    );
    for i in 0..60u64 {
        let (start, end) = (1_700_000_000 + i * 10, 1_700_000_000 + i * 10 + 5);
        round(i, &mut |iface, src, dst, sport, dport| {
            writeln!(text, "2 123456789012 {iface} {src} {dst} {sport} {dport} 6 3 100 {start} {end} ACCEPT OK")
                .unwrap();
        });
    }
    text.into_bytes()
}

/// VPC-level logs of two NAT gateways and an instance with a public address, all reaching one host:
/// only the clients behind the gateway analysed count, on every path, and the report says which
/// interfaces were left out. (Before, the other gateway's client and the instance showed as sources,
/// and the other client's unanswered attempts as this gateway's.)
#[test]
fn client_interfaces_not_behind_the_gateway_are_left_out() {
    let host = "52.1.1.1";
    let text = v2_rounds(|i, line| {
        let (cport, nport) = (30_000 + i, 2_000 + i);
        // This gateway (10.0.0.5) and its client 10.0.1.10.
        line("eni-0aaa", "10.0.1.10", "10.0.0.5", cport, 443);
        line("eni-0aaa", "10.0.0.5", host, nport, 443);
        line("eni-0aaa", host, "10.0.0.5", 443, nport);
        line("eni-0aaa", "10.0.0.5", "10.0.1.10", 443, cport);
        line("eni-0c10", "10.0.1.10", host, cport, 443);
        line("eni-0c10", host, "10.0.1.10", 443, cport);
        // The other gateway (10.0.0.6: a client of its own interface, as this one sees it) and its
        // client 10.0.2.20, whose attempts go unanswered.
        line("eni-0bbb", "10.0.2.20", "10.0.0.6", cport, 443);
        line("eni-0bbb", "10.0.0.6", host, nport, 443);
        for k in 0..3 {
            line("eni-0c20", "10.0.2.20", host, cport + 100 * k, 443);
        }
        // An instance with a public address: out through the internet gateway.
        line("eni-0c30", "10.0.3.30", host, cport, 443);
        line("eni-0c30", host, "10.0.3.30", 443, cport);
    });
    let inputs = [("vpc", text)];
    let given = AnalyzeConfig {
        nat_addresses: vec!["10.0.0.5".parse().unwrap()],
        nat_interface: Some(InterfaceId::try_from("eni-0aaa".to_owned()).unwrap()),
        vpc_cidrs: CidrSet::new(["10.0.0.0/16".parse().unwrap()]),
        ..AnalyzeConfig::default()
    };
    let inferred = AnalyzeConfig { nat_addresses: Vec::new(), nat_interface: None, ..given.clone() };
    for config in [given.clone(), inferred] {
        assert!(assert_same("two gateways", &config, &inputs, Order::InTime));
        let report: serde_json::Value = serde_json::from_str(&reference(&config, &inputs)).unwrap();
        assert_eq!(report["input"]["nat_interface"], "eni-0aaa");
        let dest = &report["destinations"][0];
        assert_eq!((&dest["address"], &dest["port"]), (&serde_json::json!(host), &serde_json::json!(443)));
        let sources: Vec<&str> =
            dest["sources"].as_array().unwrap().iter().map(|s| s["address"].as_str().unwrap()).collect();
        assert_eq!(sources, ["10.0.1.10"]);
        assert_eq!(dest["sources"][0]["connections"], 60);
        assert_eq!(dest["evidence"]["dropped_attempts"], 0);
        // The other client's 180 attempts, the other gateway's 60 and the instance's 60.
        let notes = report["notes"].to_string();
        assert!(notes.contains("Left out 300 flows out of the VPC logged only on other interfaces"), "{notes}");
    }
    // The instance's address given as the NAT's by mistake: no client shows on its interface, so no
    // client's connection counts.
    let mistaken = AnalyzeConfig { nat_addresses: vec!["10.0.3.30".parse().unwrap()], nat_interface: None, ..given };
    assert!(assert_same("the instance taken for the gateway", &mistaken, &inputs, Order::InTime));
    let report: serde_json::Value = serde_json::from_str(&reference(&mistaken, &inputs)).unwrap();
    assert_eq!(report["input"]["nat_interface"], "eni-0c30");
    assert_eq!(report["destinations"][0]["sources"], serde_json::json!([]));
    assert_eq!(report["attribution"]["method"], "unavailable");
    let notes = report["notes"].to_string();
    assert!(notes.contains("Left out 360 flows out of the VPC logged only on other interfaces"), "{notes}");
    let note = report["attribution"]["note"].as_str().unwrap();
    assert!(note.starts_with("No client connection logged on other interfaces shows on the NAT gateway's"), "{note}");
}

/// Connection by connection: a client that goes through the gateway for half the time (its subnet
/// moved to another gateway, whose logs are not read) counts for that half; an instance that goes
/// out by itself does not count because it once reached the gateway's address (a probe); nor does a
/// client's connection from a port it also uses through the gateway, to another destination.
#[test]
fn only_connections_seen_on_the_nat_interface_count() {
    let text = v2_rounds(|i, line| {
        let (cport, nport) = (30_000 + i, 2_000 + i);
        if i < 30 {
            line("eni-0aaa", "10.0.1.10", "10.0.0.5", cport, 443);
            line("eni-0aaa", "10.0.0.5", "52.1.1.1", nport, 443);
            line("eni-0aaa", "52.1.1.1", "10.0.0.5", 443, nport);
            line("eni-0aaa", "10.0.0.5", "10.0.1.10", 443, cport);
        }
        line("eni-0c10", "10.0.1.10", "52.1.1.1", cport, 443);
        line("eni-0c10", "52.1.1.1", "10.0.1.10", 443, cport);
        // The same client port to another destination, on the same port, direct: a connection of
        // its own (when the NAT interface names its destination) or not told apart (else).
        if i == 5 {
            line("eni-0c10", "10.0.1.10", "198.51.100.9", cport, 443);
        }
        // The instance probes the gateway's address, and goes out by itself.
        line("eni-0aaa", "10.0.3.30", "10.0.0.5", 40_000 + i, 22);
        line("eni-0c30", "10.0.3.30", "10.0.0.5", 40_000 + i, 22);
        line("eni-0c30", "10.0.3.30", "52.1.1.1", cport, 443);
        line("eni-0c30", "52.1.1.1", "10.0.3.30", 443, cport);
    });
    let inputs = [("vpc", text)];
    let config = AnalyzeConfig {
        nat_addresses: vec!["10.0.0.5".parse().unwrap()],
        vpc_cidrs: CidrSet::new(["10.0.0.0/16".parse().unwrap()]),
        ..AnalyzeConfig::default()
    };
    assert!(assert_same("connection by connection", &config, &inputs, Order::InTime));
    let report: serde_json::Value = serde_json::from_str(&reference(&config, &inputs)).unwrap();
    let dest = &report["destinations"][0];
    assert_eq!(dest["address"], "52.1.1.1");
    assert_eq!(dest["sources"], serde_json::json!([{"address": "10.0.1.10", "connections": 30, "bytes": 6000}]));
    assert_eq!(report["attribution"]["method"], "client-interfaces");
    // The client's 30 later connections and the instance's 60.
    let notes = report["notes"].to_string();
    assert!(notes.contains("Left out 90 flows out of the VPC logged only on other interfaces"), "{notes}");
}
