//! Tests of the simulator: determinism, port accounting, truth invariants and flow-log invariants.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::net::Ipv4Addr;

use super::engine::{FIN, Kind, SYN, SYN_ACK};
use super::flowlog::window_start;
use super::*;

/// A built-in scenario cut to its first `secs` seconds, to keep byte-level tests fast.
fn shortened(name: &str, secs: u32) -> Scenario {
    Scenario::builtin(name).expect("built-in scenario").with_duration(secs)
}

fn run(sc: &Scenario) -> Simulation {
    Simulation::run(sc).expect("valid scenario")
}

fn lines(bytes: &[u8]) -> Vec<&str> {
    std::str::from_utf8(bytes).expect("flow logs are ASCII").lines().collect()
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("an IPv4 address")
}

fn num(s: &str) -> i64 {
    s.parse().expect("a number")
}

// ---------------------------------------------------------------- determinism

#[test]
fn same_seed_gives_identical_bytes_and_another_seed_differs() {
    let sc = shortened("healthy", 420);
    let a = run(&sc);
    let b = run(&sc);
    assert_eq!(a.nat_v2(), b.nat_v2());
    assert_eq!(a.nat_custom(), b.nat_custom());
    assert_eq!(a.clients_v2(), b.clients_v2());
    assert_eq!(a.truth(), b.truth());
    assert_eq!(a.metrics(), b.metrics());

    let c = run(&sc.clone().with_seed(sc.seed + 1));
    assert_ne!(a.nat_v2(), c.nat_v2());
    assert_ne!(a.clients_v2(), c.clients_v2());
    assert_ne!(a.truth(), c.truth());
}

#[test]
fn builtin_names_all_build_and_unknown_is_none() {
    for name in Scenario::builtin_names() {
        let sc = Scenario::builtin(name).expect("listed names build");
        assert_eq!(&sc.name, name);
        sc.validate().expect("built-in scenarios are valid");
        assert!((20 * 60..=30 * 60).contains(&sc.duration_secs));
    }
    assert!(Scenario::builtin("nope").is_none());
    let moved = Scenario::builtin("healthy").expect("healthy").with_start(1_700_000_007);
    assert_eq!(moved.start, 1_700_000_007);
    assert_eq!(moved.end(), 1_700_000_007 + 1500);
}

#[test]
fn invalid_scenarios_are_rejected() {
    let base = shortened("healthy", 120);
    let mut sc = base.clone();
    sc.nat.addresses = (1..=9).map(|h| Ipv4Addr::new(10, 0, 0, h)).collect();
    assert!(matches!(Simulation::run(&sc), Err(SimError::InvalidScenario(_))));
    let mut sc = base.clone();
    sc.destinations[0].clients.clients.push(10_000);
    assert!(matches!(Simulation::run(&sc), Err(SimError::InvalidScenario(_))));
    let mut sc = base.clone();
    let twin = sc.destinations[0].clone();
    sc.destinations.push(twin);
    assert!(matches!(Simulation::run(&sc), Err(SimError::InvalidScenario(_))));
    let mut sc = base;
    sc.destinations[1].packets_per_time = Range::new(0, 2);
    assert!(matches!(Simulation::run(&sc), Err(SimError::InvalidScenario(_))));
}

#[test]
fn create_date_is_utc_calendar_time() {
    assert_eq!(output::create_date(1_780_000_000), "2026-05-28-20-26-40");
    assert_eq!(output::create_date(951_782_400), "2000-02-29-00-00-00");
}

// ---------------------------------------------------------------- port accounting

/// Rebuilds every hold from the connections and checks the engine's truth against it: no NAT port is
/// held twice at once, per-address and total peaks match, nothing exceeds 55,000 per address.
fn check_port_accounting(sim: &Simulation) {
    let sc = sim.scenario();
    let n_addr = sc.nat.addresses.len();
    let mut holds: Vec<(u16, u8, u16, u32, u32)> = Vec::new();
    for c in &sim.conns {
        let release = match c.kind {
            Kind::Failed => continue,
            Kind::Closed => c.l + 1,
            Kind::Unanswered if sc.destinations[usize::from(c.dest)].protocol == TCP => c.l + 1,
            Kind::Unanswered | Kind::Abandoned | Kind::Udp => c.l + IDLE_TIMEOUT_SECS + 1,
        };
        assert!((NAT_PORT_MIN..=NAT_PORT_MAX).contains(&c.nport));
        holds.push((c.dest, c.addr, c.nport, c.o, release));
    }
    holds.sort_unstable();
    for w in holds.windows(2) {
        if w[0].0 == w[1].0 && w[0].1 == w[1].1 && w[0].2 == w[1].2 {
            assert!(w[1].3 >= w[0].4, "port held twice: {:?} then {:?}", w[0], w[1]);
        }
    }
    // Sweep: +1 at o, -1 at release; releases before arrivals within a second.
    let mut events: Vec<(u16, u32, i32, u8)> = Vec::new();
    for &(d, a, _, o, r) in &holds {
        events.push((d, o, 1, a));
        events.push((d, r, -1, a));
    }
    events.sort_unstable_by_key(|&(d, t, delta, a)| (d, t, delta, a));
    let mut by_dest: BTreeMap<u16, (u32, u32, Vec<u32>)> = BTreeMap::new();
    let mut held = vec![0i64; n_addr];
    let mut cur_dest = u16::MAX;
    let mut i = 0;
    while i < events.len() {
        let (d, t) = (events[i].0, events[i].1);
        if d != cur_dest {
            held = vec![0; n_addr];
            cur_dest = d;
        }
        while i < events.len() && events[i].0 == d && events[i].1 == t {
            held[usize::from(events[i].3)] += i64::from(events[i].2);
            i += 1;
        }
        let e = by_dest.entry(d).or_insert((0, 0, vec![0; n_addr]));
        let total = held.iter().sum::<i64>() as u32;
        if total > e.0 {
            e.0 = total;
            e.1 = t;
        }
        for (a, &h) in held.iter().enumerate() {
            assert!(h >= 0 && h <= i64::from(PORTS_PER_ADDRESS));
            e.2[a] = e.2[a].max(h as u32);
        }
    }
    for (d, truth) in sim.truth().destinations.iter().enumerate() {
        let (peak, at, per_addr) = by_dest.get(&(d as u16)).cloned().unwrap_or((0, 0, vec![0; n_addr]));
        assert_eq!(truth.peak, peak, "{}", truth.label);
        if peak > 0 {
            assert_eq!(truth.peak_at, sc.start + u64::from(at), "{}", truth.label);
        }
        let expected: BTreeMap<Ipv4Addr, u32> = sc.nat.addresses.iter().copied().zip(per_addr).collect();
        assert_eq!(truth.per_address_peak, expected, "{}", truth.label);
        assert_eq!(truth.limit, PORTS_PER_ADDRESS * n_addr as u32);
    }
}

/// Truth facts every scenario must satisfy, whatever its story.
fn check_truth(sim: &Simulation) {
    let sc = sim.scenario();
    let t = sim.truth();
    assert_eq!(t.scenario, sc.name);
    assert_eq!(t.destinations.len(), sc.destinations.len());
    let expected_verdict = if t.destinations.iter().any(|d| d.failures > 0) {
        Verdict::Exhaustion
    } else if t.destinations.iter().any(|d| f64::from(d.peak) >= 0.8 * f64::from(d.limit)) {
        Verdict::AtRisk
    } else {
        Verdict::Healthy
    };
    assert_eq!(t.verdict, expected_verdict);
    for d in &t.destinations {
        assert!(d.per_address_peak.values().all(|&p| p <= PORTS_PER_ADDRESS));
        assert_eq!(d.saturated, d.failures > 0);
        assert_eq!(d.attempts, d.failures + d.established + d.unanswered);
        assert!(d.retries <= d.failures);
        if d.failures > 0 {
            // Failures only happen when every address is full.
            assert_eq!(d.peak, d.limit, "{}", d.label);
        }
        let (first, last) = d.failures_between.unwrap_or((t.start, t.start));
        assert!(t.start <= first && first <= last && last < t.end);
        // Top clients: sorted, distinct, well separated at the top, and never so busy that a client
        // port would be reused for the destination (each attempt is a distinct (ip, port) flow).
        assert!(d.top_clients.len() <= 10);
        for w in d.top_clients.windows(2) {
            assert!(w[0].attempts > w[1].attempts || (w[0].attempts == w[1].attempts && w[0].ip < w[1].ip));
        }
        let top: Vec<u64> = d.top_clients.iter().map(|c| c.attempts).collect();
        for k in 0..5.min(top.len().saturating_sub(1)) {
            assert!(top[k] * 100 >= top[k + 1] * 105, "{}: top clients not separated: {top:?}", d.label);
        }
        let span = u64::from(CLIENT_PORT_MAX - CLIENT_PORT_MIN) + 1;
        assert!(top.first().copied().unwrap_or(0) < span);
        assert!(d.top_clients.iter().all(|c| c.bytes > 0));
        match d.abandoned_share_truth {
            Some(s) => {
                assert_eq!(d.protocol, TCP);
                assert!((0.0..=1.0).contains(&s));
            }
            None => assert!(d.protocol == UDP || d.established == 0),
        }
        assert!(d.held_max_per_minute.iter().all(|&(_, h)| h <= d.peak));
    }

    // Metrics agree with the truth.
    let m = sim.metrics();
    let sum = |f: fn(&DestTruth) -> u64| t.destinations.iter().map(f).sum::<u64>();
    assert_eq!(m.total("ErrorPortAllocation"), sum(|d| d.failures));
    assert_eq!(m.total("ConnectionAttemptCount"), sum(|d| d.attempts));
    assert_eq!(m.total("ConnectionEstablishedCount"), sum(|d| d.established));
    assert_eq!(m.total("PacketsDropCount"), 0);
    let tcp_limit: u64 = t.destinations.iter().filter(|d| d.protocol == TCP).map(|d| u64::from(d.limit)).sum();
    assert!(m.max("ActiveConnectionCount") <= tcp_limit);
    for d in t.destinations.iter().filter(|d| d.protocol == TCP) {
        if d.peak_at < t.end {
            assert!(m.max("ActiveConnectionCount") >= u64::from(d.peak));
        }
    }
    let client_bytes: u64 = t.destinations.iter().flat_map(|d| &d.top_clients).map(|c| c.bytes).sum();
    assert!(
        client_bytes <= m.total("BytesInFromSource") + m.total("BytesOutToSource"),
        "top clients' bytes are part of the traffic"
    );
    let minutes = ((t.end - 1) / 60 - t.start / 60 + 1) as usize;
    for (name, points) in &m.series {
        assert_eq!(points.len(), minutes, "{name}");
        assert!(points.iter().all(|&(ts, _)| ts % 60 == 0));
        assert!(points.windows(2).all(|w| w[1].0 == w[0].0 + 60));
    }
}

// ---------------------------------------------------------------- flow logs

/// A parsed custom-format NAT record.
#[derive(Debug, Clone, Copy)]
struct Custom<'a> {
    f: [&'a str; 24],
}

impl<'a> Custom<'a> {
    fn parse(line: &'a str) -> Self {
        let mut f = [""; 24];
        let mut n = 0;
        for (i, x) in line.split(' ').enumerate() {
            assert!(i < 24, "too many fields: {line}");
            f[i] = x;
            n += 1;
        }
        assert_eq!(n, 24, "field count: {line}");
        Custom { f }
    }
    fn src(&self) -> &'a str {
        self.f[7]
    }
    fn dst(&self) -> &'a str {
        self.f[8]
    }
    fn sport(&self) -> u16 {
        num(self.f[9]) as u16
    }
    fn dport(&self) -> u16 {
        num(self.f[10]) as u16
    }
    fn pkt_src(&self) -> &'a str {
        self.f[11]
    }
    fn pkt_dst(&self) -> &'a str {
        self.f[12]
    }
    fn protocol(&self) -> u8 {
        num(self.f[13]) as u8
    }
    fn start(&self) -> i64 {
        num(self.f[16])
    }
    fn end(&self) -> i64 {
        num(self.f[17])
    }
    fn flags(&self) -> u8 {
        num(self.f[19]) as u8
    }
    fn status(&self) -> &'a str {
        self.f[20]
    }
    fn direction(&self) -> &'a str {
        self.f[21]
    }
    fn service(&self) -> &'a str {
        self.f[22]
    }
}

type DestKey = (Ipv4Addr, u16, u8);

fn check_nat_logs(sim: &Simulation) {
    let sc = sim.scenario();
    let truth = sim.truth();
    let interval = i64::from(sc.interval_secs);
    let off = i64::from(sim.nat_offset);
    let primary = sc.nat.addresses[0].to_string();
    let addrs: BTreeSet<String> = sc.nat.addresses.iter().map(ToString::to_string).collect();
    let dests: BTreeMap<DestKey, usize> =
        sc.destinations.iter().enumerate().map(|(i, d)| ((d.ip, d.port, d.protocol), i)).collect();

    let custom_bytes = sim.nat_custom();
    let v2_bytes = sim.nat_v2();
    let custom = lines(&custom_bytes);
    let v2 = lines(&v2_bytes);
    assert_eq!(custom[0], NAT_CUSTOM_HEADER);
    assert_eq!(v2[0], V2_HEADER);
    assert_eq!(custom.len(), v2.len());
    assert_eq!(
        NAT_CUSTOM_HEADER,
        sim.custom_format()
            .split(' ')
            .map(|f| f.trim_start_matches("${").trim_end_matches('}'))
            .collect::<Vec<_>>()
            .join(" ")
    );

    let mut client_flows: BTreeMap<DestKey, HashSet<(Ipv4Addr, u16)>> = BTreeMap::new();
    let mut answered: HashSet<(Ipv4Addr, u16, Ipv4Addr, u16)> = HashSet::new();
    let mut requested: HashSet<(Ipv4Addr, u16, Ipv4Addr, u16)> = HashSet::new();
    let mut syn_ack = 0u64;
    let mut fin = 0u64;
    let mut nat_sources: BTreeSet<&str> = BTreeSet::new();
    let mut statuses: BTreeMap<&str, usize> = BTreeMap::new();
    let mut prev_ws = i64::MIN;
    for (cl, vl) in custom[1..].iter().zip(&v2[1..]) {
        let r = Custom::parse(cl);
        let v: Vec<&str> = vl.split(' ').collect();
        assert_eq!(v.len(), 14, "{vl}");
        *statuses.entry(r.status()).or_default() += 1;
        assert_eq!(r.f[0], "5");
        assert_eq!(r.f[1], sc.nat.vpc_id);
        assert_eq!(r.f[4], sc.nat.interface_id);
        assert_eq!(r.f[23], sc.nat.az_id);
        assert_eq!(v[2], sc.nat.interface_id);
        // Both formats describe the same record, field for field.
        assert_eq!(
            [v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[13]],
            [r.f[7], r.f[8], r.f[9], r.f[10], r.f[13], r.f[15], r.f[14], r.f[16], r.f[17], r.f[20]]
        );
        let (start, end) = (r.start(), r.end());
        let ws = window_start(start, off, interval);
        assert!(start <= end && end < ws + interval, "{cl}");
        assert!(ws >= prev_ws, "records sorted by window");
        prev_ws = ws;
        if r.status() != "OK" {
            assert_eq!((start, end), (ws, ws + interval - 1));
            assert!(cl.contains(" - - - - - - - - - - "));
            continue;
        }
        assert!(start >= sc.start as i64 && end < sc.end() as i64);
        assert_eq!(r.f[6], "IPv4");
        assert_eq!(r.f[18], "ACCEPT");
        let proto = r.protocol();
        if proto == UDP {
            assert_eq!(r.flags(), 0);
        }
        let (src_ip, pkt_src, pkt_dst) = (ip(r.src()), ip(r.pkt_src()), ip(r.pkt_dst()));
        match r.direction() {
            "ingress" if addrs.contains(r.pkt_dst()) => {
                // host → NAT: logged to the primary address, pkt-dstaddr is the address used.
                assert_eq!(r.dst(), primary);
                assert!(dests.contains_key(&(src_ip, r.sport(), proto)));
                assert_eq!(r.service(), "-");
            }
            "ingress" => {
                // client → NAT.
                assert_eq!(r.dst(), primary);
                assert_eq!(r.src(), r.pkt_src());
                let key = (pkt_dst, r.dport(), proto);
                let d = dests.get(&key).copied().expect("known destination");
                let expect = sc.destinations[d].aws_service().unwrap_or("-");
                assert_eq!(r.service(), expect);
                assert!((CLIENT_PORT_MIN..=CLIENT_PORT_MAX).contains(&r.sport()));
                client_flows.entry(key).or_default().insert((src_ip, r.sport()));
                requested.insert((src_ip, r.sport(), pkt_dst, r.dport()));
                if proto == TCP {
                    assert_eq!(r.flags() & !(SYN | FIN), 0);
                }
            }
            "egress" if addrs.contains(r.pkt_src()) => {
                // NAT → host.
                assert_eq!(r.src(), r.pkt_src());
                assert_eq!(r.dst(), r.pkt_dst());
                assert!((NAT_PORT_MIN..=NAT_PORT_MAX).contains(&r.sport()));
                let d = dests.get(&(pkt_dst, r.dport(), proto)).copied().expect("known destination");
                assert_eq!(r.service(), sc.destinations[d].aws_service().unwrap_or("-"));
                nat_sources.insert(r.f[7]);
            }
            "egress" => {
                // NAT → client.
                assert_eq!(r.src(), primary);
                assert_eq!(r.dst(), r.pkt_dst());
                assert!(dests.contains_key(&(pkt_src, r.sport(), proto)));
                answered.insert((pkt_dst, r.dport(), pkt_src, r.sport()));
                if proto == TCP {
                    if r.flags() & SYN_ACK == SYN_ACK {
                        syn_ack += 1;
                    }
                    if r.flags() & FIN != 0 {
                        fin += 1;
                    }
                }
            }
            other => panic!("bad flow-direction {other}"),
        }
    }
    assert!(statuses.get("NODATA").copied().unwrap_or(0) >= 1);
    assert_eq!(statuses.get("SKIPDATA").copied(), Some(1));

    // Distinct client flows per destination are exactly the attempts.
    for (d, spec) in truth.destinations.iter().zip(&sc.destinations) {
        let seen = client_flows.get(&(spec.ip, spec.port, spec.protocol)).map_or(0, HashSet::len);
        assert_eq!(seen as u64, d.attempts, "{}", d.label);
    }
    // Failed attempts show only as client → NAT legs; every answered connection has a NAT → client leg.
    let mut closed_in_span = 0u64;
    let mut tcp_answered = 0u64;
    for c in &sim.conns {
        let spec = &sc.destinations[usize::from(c.dest)];
        let client = sc.clients[usize::from(c.client)].ip;
        let key = (client, c.cport, spec.ip, spec.port);
        assert!(requested.contains(&key));
        let is_answered = !matches!(c.kind, Kind::Failed | Kind::Unanswered);
        assert_eq!(answered.contains(&key), is_answered, "{c:?}");
        if spec.protocol == TCP && is_answered {
            tcp_answered += 1;
            if c.kind == Kind::Closed && c.l < sc.duration_secs {
                closed_in_span += 1;
            }
        }
    }
    assert_eq!(syn_ack, tcp_answered);
    assert_eq!(fin, closed_in_span);
    // Every address that held ports for a destination sends from its own address.
    let used: BTreeSet<String> = truth
        .destinations
        .iter()
        .flat_map(|d| &d.per_address_peak)
        .filter(|&(_, &p)| p > 0)
        .map(|(a, _)| a.to_string())
        .collect();
    assert_eq!(nat_sources.iter().map(|s| (*s).to_string()).collect::<BTreeSet<_>>(), used);
}

fn check_client_logs(sim: &Simulation) {
    let sc = sim.scenario();
    let interval = i64::from(sc.interval_secs);
    let bytes = sim.clients_v2();
    let all = lines(&bytes);
    assert_eq!(all[0], V2_HEADER);
    let eni: HashMap<&str, usize> = sc.clients.iter().enumerate().map(|(i, c)| (c.interface_id.as_str(), i)).collect();
    let mut flows: BTreeMap<DestKey, HashSet<(Ipv4Addr, u16)>> = BTreeMap::new();
    let mut nodata = 0;
    let mut skipdata = 0;
    for l in &all[1..] {
        let f: Vec<&str> = l.split(' ').collect();
        assert_eq!(f.len(), 14, "{l}");
        assert_eq!(f[0], "2");
        assert_eq!(f[1], sc.account_id);
        let ci = *eni.get(f[2]).expect("a client interface");
        let off = i64::from(sim.client_offsets[ci]);
        let (start, end) = (num(f[10]), num(f[11]));
        let ws = window_start(start, off, interval);
        assert!(start <= end && end < ws + interval, "{l}");
        match f[13] {
            "NODATA" => {
                nodata += 1;
                continue;
            }
            "SKIPDATA" => {
                skipdata += 1;
                continue;
            }
            s => assert_eq!(s, "OK"),
        }
        let client = sc.clients[ci].ip.to_string();
        let proto = num(f[7]) as u8;
        if f[3] == client {
            let key = (ip(f[4]), num(f[6]) as u16, proto);
            flows.entry(key).or_default().insert((ip(f[3]), num(f[5]) as u16));
        } else {
            assert_eq!(f[4], client, "{l}");
        }
    }
    assert!(nodata >= sc.clients.len(), "one NODATA window per interface at least");
    assert_eq!(skipdata, 1);
    for (d, spec) in sim.truth().destinations.iter().zip(&sc.destinations) {
        let seen = flows.get(&(spec.ip, spec.port, spec.protocol)).map_or(0, HashSet::len);
        assert_eq!(seen as u64, d.attempts, "{}", d.label);
    }
}

fn check_builtin(name: &str) -> Simulation {
    let sim = run(&Scenario::builtin(name).expect("built-in"));
    check_port_accounting(&sim);
    check_truth(&sim);
    check_nat_logs(&sim);
    check_client_logs(&sim);
    sim
}

fn failing(sim: &Simulation) -> Vec<&str> {
    sim.truth().destinations.iter().filter(|d| d.failures > 0).map(|d| d.label.as_str()).collect()
}

#[test]
fn healthy_stays_healthy() {
    let sim = check_builtin("healthy");
    let t = sim.truth();
    assert_eq!(t.verdict, Verdict::Healthy);
    assert!(failing(&sim).is_empty());
    let top = t.destinations.iter().map(|d| d.peak).max().unwrap_or(0);
    assert!((1000..10_000).contains(&top), "top peak {top}");
    for d in t.destinations.iter().filter(|d| d.protocol == TCP) {
        assert!(d.abandoned_share_truth.unwrap_or(1.0) <= 0.05);
    }
}

#[test]
fn hot_s3_exhausts_one_s3_address() {
    let sim = check_builtin("hot-s3");
    let t = sim.truth();
    assert_eq!(t.verdict, Verdict::Exhaustion);
    assert_eq!(failing(&sim), ["s3"]);
    let s3 = &t.destinations[0];
    assert_eq!((s3.peak, s3.limit), (55_000, 55_000));
    assert!(s3.ip.octets()[..2] == [52, 216]);
    // The misreading trap: ActiveConnectionCount passes 55,000 only because it sums destinations.
    assert!(sim.metrics().max("ActiveConnectionCount") > 55_000);
    assert!(sim.metrics().total("ErrorPortAllocation") > 0);
}

#[test]
fn idle_leak_exhausts_through_the_idle_hold() {
    let sim = check_builtin("idle-leak");
    let t = sim.truth();
    assert_eq!(t.verdict, Verdict::Exhaustion);
    assert_eq!(failing(&sim), ["api"]);
    let api = &t.destinations[0];
    assert!(api.abandoned_share_truth.unwrap_or(0.0) > 0.9);
    assert!(sim.metrics().total("IdleTimeoutCount") > 50_000);
}

#[test]
fn two_addresses_spread_without_failures() {
    let sim = check_builtin("two-addresses");
    let t = sim.truth();
    assert!(failing(&sim).is_empty());
    assert_eq!(t.verdict, Verdict::AtRisk);
    let hot = &t.destinations[0];
    assert_eq!(hot.limit, 110_000);
    assert!((88_000..110_000).contains(&hot.peak), "peak {}", hot.peak);
    assert_eq!(hot.per_address_peak.len(), 2);
    assert!(hot.per_address_peak.values().all(|&p| p > 0 && p < 55_000));
}

#[test]
fn udp_dns_exhausts_through_udp_mappings() {
    let sim = check_builtin("udp-dns");
    let t = sim.truth();
    assert_eq!(t.verdict, Verdict::Exhaustion);
    assert_eq!(failing(&sim), ["dns"]);
    let dns = &t.destinations[0];
    assert_eq!((dns.protocol, dns.port, dns.peak), (UDP, 53, 55_000));
    assert_eq!(dns.abandoned_share_truth, None);
}

#[test]
fn write_to_writes_every_file_consistently() {
    let sc = shortened("two-addresses", 360);
    let sim = run(&sc);
    let dir = std::env::temp_dir().join(format!("natgw-sim-test-{}", std::process::id()));
    let written = sim.write_to(&dir).expect("writable temp dir");
    assert_eq!(written.len(), 8);
    let gunzip = |name: &str| {
        let file = std::fs::File::open(dir.join(name)).expect("written");
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(file).read_to_end(&mut out).expect("valid gzip");
        out
    };
    assert_eq!(gunzip(files::NAT_V2), sim.nat_v2());
    assert_eq!(gunzip(files::NAT_CUSTOM), sim.nat_custom());
    assert_eq!(gunzip(files::CLIENTS_V2), sim.clients_v2());
    let read = |name: &str| std::fs::read(dir.join(name)).expect("written");
    assert_eq!(read(files::NAT_CUSTOM_FORMAT), format!("{NAT_CUSTOM_FORMAT}\n").into_bytes());
    let truth: Truth = serde_json::from_slice(&read(files::TRUTH)).expect("truth.json");
    assert_eq!(&truth, sim.truth());
    let metrics: serde_json::Value = serde_json::from_slice(&read(files::METRICS)).expect("metrics.json");
    assert_eq!(metrics["nat_gateway_id"], sc.nat.nat_gateway_id.as_str());
    assert_eq!(metrics["period"], 60);
    let point = &metrics["series"]["ErrorPortAllocation"][0];
    assert!(point[0].is_u64() && point[1].is_u64());
    let back: Metrics = serde_json::from_value(metrics).expect("metrics shape");
    assert_eq!(&back, sim.metrics());
    let scenario: Scenario = serde_json::from_slice(&read(files::SCENARIO)).expect("scenario.json");
    assert_eq!(scenario, sc);
    assert_eq!(run(&scenario).truth(), sim.truth());
    let ranges: serde_json::Value = serde_json::from_slice(&read(files::IP_RANGES)).expect("ip-ranges.json");
    assert!(ranges["syncToken"].is_string() && ranges["createDate"].is_string());
    assert_eq!(ranges["ipv6_prefixes"], serde_json::json!([]));
    let services: BTreeSet<(&str, &str)> = ranges["prefixes"]
        .as_array()
        .expect("prefixes")
        .iter()
        .map(|p| {
            assert_eq!(p["region"], "us-east-1");
            assert_eq!(p["network_border_group"], "us-east-1");
            (p["ip_prefix"].as_str().unwrap_or(""), p["service"].as_str().unwrap_or(""))
        })
        .collect();
    assert!(services.contains(&("52.216.0.0/15", "S3")));
    assert!(services.contains(&("52.216.0.0/15", "AMAZON")));
    assert!(services.contains(&("3.218.180.0/22", "DYNAMODB")));
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
fn windows_follow_the_interface_offset_not_the_epoch_minute() {
    let sim = run(&shortened("healthy", 600));
    let sc = sim.scenario();
    let offsets: BTreeSet<u32> = sim.client_offsets.iter().copied().collect();
    assert!(offsets.len() > 5, "interfaces have their own windows");
    assert!(offsets.iter().all(|&o| o < sc.interval_secs));
    // Every record of the NAT interface lies within one window of the NAT interface's offset, and some
    // records cross an epoch minute boundary window-wise (start and end in different epoch minutes).
    let bytes = sim.nat_custom();
    let crossing = lines(&bytes)[1..]
        .iter()
        .map(|l| Custom::parse(l))
        .filter(|r| r.status() == "OK" && r.start() / 60 != r.end() / 60)
        .count();
    assert_eq!(crossing > 0, sim.nat_offset != 0);
}
