//! The built-in scenarios: a healthy gateway and four ways to exhaust (or nearly exhaust) NAT ports.

use std::net::Ipv4Addr;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::scenario::{
    Client, ClientSelection, DEFAULT_START, DestSpec, Lifetime, NatGateway, Phase, Range, RetryPolicy, Scenario, TCP,
    UDP,
};

/// Names accepted by [`build`].
pub(super) const NAMES: &[&str] = &["healthy", "hot-s3", "idle-leak", "two-addresses", "udp-dns"];

/// Simulated span of every built-in scenario: 25 minutes.
const DURATION: u32 = 1500;

pub(super) fn build(name: &str) -> Option<Scenario> {
    match name {
        "healthy" => Some(healthy()),
        "hot-s3" => Some(hot_s3()),
        "idle-leak" => Some(idle_leak()),
        "two-addresses" => Some(two_addresses()),
        "udp-dns" => Some(udp_dns()),
        _ => None,
    }
}

/// Random identifiers and the client fleet of a scenario.
struct Topology {
    rng: SmallRng,
}

impl Topology {
    fn new(seed: u64) -> Self {
        Self { rng: SmallRng::seed_from_u64(seed ^ 0x7090_1091) }
    }

    /// An AWS-style id: `prefix-0` and 16 lowercase hex digits.
    fn id(&mut self, prefix: &str) -> String {
        format!("{prefix}-0{:016x}", self.rng.random::<u64>())
    }

    /// `count` distinct host numbers in 4..=250, sorted; `forced` ones included.
    fn hosts(&mut self, count: usize, forced: &[u8]) -> Vec<u8> {
        let mut all: Vec<u8> = (4..=250).filter(|h| !forced.contains(h)).collect();
        all.shuffle(&mut self.rng);
        let mut out: Vec<u8> = forced.to_vec();
        out.extend(all.into_iter().take(count.saturating_sub(forced.len())));
        out.sort_unstable();
        out
    }

    /// The common base: one VPC, a NAT gateway in a public subnet of us-east-1a, 12 clients in each of
    /// three private subnets (10.0.1.5 and 10.0.1.50 among them, to catch substring matching) and, with
    /// `pods`, that many more in the secondary CIDR 100.64.0.0/16.
    fn base(&mut self, name: &str, description: &str, seed: u64, n_addr: usize, pods: usize) -> Scenario {
        let vpc_id = self.id("vpc");
        let nat_hosts = self.hosts(n_addr, &[]);
        let mut addresses: Vec<Ipv4Addr> = nat_hosts.iter().map(|&h| Ipv4Addr::new(10, 0, 0, h)).collect();
        addresses.shuffle(&mut self.rng);
        let nat = NatGateway {
            nat_gateway_id: self.id("nat"),
            interface_id: self.id("eni"),
            subnet_id: self.id("subnet"),
            vpc_id: vpc_id.clone(),
            az: "us-east-1a".into(),
            az_id: "use1-az1".into(),
            addresses,
        };
        let zones = [("us-east-1a", 1u8), ("us-east-1b", 2), ("us-east-1c", 3)];
        let mut clients = Vec::new();
        for (az, third) in zones {
            let subnet_id = self.id("subnet");
            let forced: &[u8] = if third == 1 { &[5, 50] } else { &[] };
            for h in self.hosts(12, forced) {
                clients.push(Client {
                    ip: Ipv4Addr::new(10, 0, third, h),
                    interface_id: self.id("eni"),
                    subnet_id: subnet_id.clone(),
                    az: az.into(),
                    instance_id: self.id("i"),
                });
            }
        }
        let mut vpc_cidrs = vec!["10.0.0.0/16".to_string()];
        if pods > 0 {
            vpc_cidrs.push("100.64.0.0/16".into());
            let subnet_id = self.id("subnet");
            for h in self.hosts(pods, &[]) {
                clients.push(Client {
                    ip: Ipv4Addr::new(100, 64, 1, h),
                    interface_id: self.id("eni"),
                    subnet_id: subnet_id.clone(),
                    az: "us-east-1a".into(),
                    instance_id: self.id("i"),
                });
            }
        }
        Scenario {
            name: name.into(),
            description: description.into(),
            seed,
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            start: DEFAULT_START,
            duration_secs: DURATION,
            interval_secs: 60,
            nat,
            vpc_cidrs,
            clients,
            destinations: Vec::new(),
        }
    }

    /// `count` clients of `n` in random order, weighted Zipf(`zipf`) by rank.
    fn select(&mut self, n: usize, count: usize, zipf: f64) -> ClientSelection {
        let mut idx: Vec<usize> = (0..n).collect();
        idx.shuffle(&mut self.rng);
        idx.truncate(count);
        ClientSelection { clients: idx, zipf_exponent: zipf }
    }
}

fn phase(from_sec: u32, to_sec: u32, rate_per_sec: f64) -> Phase {
    Phase { from_sec, to_sec, rate_per_sec }
}

/// A TCP destination with everyday defaults: short, mostly closed HTTPS connections.
fn tcp(label: &str, ip: [u8; 4], sel: ClientSelection) -> DestSpec {
    DestSpec {
        label: label.into(),
        ip: Ipv4Addr::from(ip),
        port: 443,
        protocol: TCP,
        phases: Vec::new(),
        lifetime: Lifetime::Exponential { mean_secs: 20.0 },
        abandon_share: 0.02,
        packet_interval_secs: 5,
        packets_per_time: Range::new(1, 3),
        bytes_out: Range::new(80, 1400),
        bytes_in: Range::new(200, 1500),
        clients: sel,
        unanswered_share: 0.002,
        retry: RetryPolicy { max_retries: 2, delay_secs: Range::new(1, 5) },
    }
}

/// A DNS resolver reached over UDP 53: one query and one answer per flow, each from a new client port.
fn dns(ip: [u8; 4], sel: ClientSelection) -> DestSpec {
    DestSpec {
        label: "dns".into(),
        ip: Ipv4Addr::from(ip),
        port: 53,
        protocol: UDP,
        phases: Vec::new(),
        lifetime: Lifetime::Fixed { secs: 0 },
        abandon_share: 0.0,
        packet_interval_secs: 1,
        packets_per_time: Range::new(1, 1),
        bytes_out: Range::new(60, 110),
        bytes_in: Range::new(90, 480),
        clients: sel,
        unanswered_share: 0.001,
        retry: RetryPolicy { max_retries: 2, delay_secs: Range::new(1, 5) },
    }
}

const S3_HOT: [u8; 4] = [52, 216, 92, 41];
const S3_OTHER: [u8; 4] = [52, 217, 140, 9];
const DYNAMODB: [u8; 4] = [3, 218, 182, 77];
const API: [u8; 4] = [203, 0, 113, 10];
const RESOLVER: [u8; 4] = [198, 51, 100, 53];

fn healthy() -> Scenario {
    let seed = 0x4ea1_7111;
    let mut t = Topology::new(seed);
    let mut sc = t.base(
        "healthy",
        "Several destinations with short, closed connections; the busiest peaks at a few thousand ports.",
        seed,
        1,
        0,
    );
    let n = sc.clients.len();
    let mut api = tcp("api", API, t.select(n, 24, 1.0));
    api.phases = vec![phase(0, 1200, 30.0)];
    let mut s3 = tcp("s3", S3_OTHER, t.select(n, 20, 1.0));
    s3.phases = vec![phase(0, 1200, 20.0), phase(540, 840, 30.0)];
    s3.lifetime = Lifetime::LogNormal { mean_secs: 60.0, sigma: 0.8 };
    s3.abandon_share = 0.01;
    s3.packet_interval_secs = 10;
    s3.bytes_out = Range::new(80, 600);
    s3.bytes_in = Range::new(1000, 1500);
    let mut ddb = tcp("dynamodb", DYNAMODB, t.select(n, 12, 1.2));
    ddb.phases = vec![phase(0, 1200, 8.0)];
    ddb.lifetime = Lifetime::Exponential { mean_secs: 10.0 };
    ddb.abandon_share = 0.0;
    ddb.packet_interval_secs = 2;
    let mut resolver = dns(RESOLVER, t.select(n, 30, 1.2));
    resolver.phases = vec![phase(0, 1200, 5.0)];
    let mut payments = tcp("payments", [198, 51, 100, 20], t.select(n, 8, 1.2));
    payments.phases = vec![phase(0, 1200, 4.0)];
    payments.lifetime = Lifetime::Exponential { mean_secs: 90.0 };
    payments.abandon_share = 0.03;
    payments.packet_interval_secs = 15;
    sc.destinations = vec![api, s3, ddb, resolver, payments];
    sc
}

fn hot_s3() -> Scenario {
    let seed = 0x0053_3407;
    let mut t = Topology::new(seed);
    let mut sc = t.base(
        "hot-s3",
        "A batch job's S3 traffic through the NAT gateway surges past 55,000 simultaneous connections to one S3 address for almost two minutes.",
        seed,
        1,
        6,
    );
    let n = sc.clients.len();
    let mut s3 = tcp("s3", S3_HOT, t.select(n, 40, 0.6));
    // The job starts all its workers at once (a 30 s burst), then keeps ~70,000 connections wanted.
    s3.phases = vec![phase(0, 1200, 10.0), phase(420, 450, 2000.0), phase(450, 540, 560.0)];
    s3.lifetime = Lifetime::Exponential { mean_secs: 120.0 };
    s3.abandon_share = 0.01;
    s3.packet_interval_secs = 20;
    s3.bytes_out = Range::new(80, 600);
    s3.bytes_in = Range::new(1000, 1500);
    s3.unanswered_share = 0.001;
    let mut api = tcp("api", API, t.select(n, 20, 1.0));
    api.phases = vec![phase(0, 1200, 12.0)];
    let mut ddb = tcp("dynamodb", DYNAMODB, t.select(n, 10, 1.2));
    ddb.phases = vec![phase(0, 1200, 4.0)];
    ddb.lifetime = Lifetime::Exponential { mean_secs: 10.0 };
    let mut resolver = dns(RESOLVER, t.select(n, 24, 1.2));
    resolver.phases = vec![phase(0, 1200, 3.0)];
    sc.destinations = vec![s3, api, ddb, resolver];
    sc
}

fn idle_leak() -> Scenario {
    let seed = 0x1d1e_1eaf;
    let mut t = Topology::new(seed);
    let mut sc = t.base(
        "idle-leak",
        "Clients open HTTPS connections to an API, use them for 1-3 s and never close them: the 350 s idle hold exhausts the ports.",
        seed,
        1,
        0,
    );
    let n = sc.clients.len();
    let mut leak = tcp("api", [203, 0, 113, 45], t.select(n, 36, 0.6));
    leak.phases = vec![phase(0, 1200, 4.0), phase(120, 600, 190.0)];
    leak.lifetime = Lifetime::Uniform { min_secs: 1, max_secs: 3 };
    leak.abandon_share = 0.95;
    leak.packet_interval_secs = 1;
    let mut s3 = tcp("s3", S3_OTHER, t.select(n, 16, 1.2));
    s3.phases = vec![phase(0, 1200, 8.0)];
    s3.lifetime = Lifetime::Exponential { mean_secs: 30.0 };
    s3.packet_interval_secs = 10;
    let mut ddb = tcp("dynamodb", DYNAMODB, t.select(n, 10, 1.2));
    ddb.phases = vec![phase(0, 1200, 4.0)];
    ddb.lifetime = Lifetime::Exponential { mean_secs: 10.0 };
    let mut resolver = dns(RESOLVER, t.select(n, 24, 1.2));
    resolver.phases = vec![phase(0, 1200, 4.0)];
    sc.destinations = vec![leak, s3, ddb, resolver];
    sc
}

fn two_addresses() -> Scenario {
    let seed = 0x2add_4e55;
    let mut t = Topology::new(seed);
    let mut sc = t.base(
        "two-addresses",
        "A partner API needs about 90,000 ports (short calls, most connections left open): over one address' 55,000, within two addresses' 110,000.",
        seed,
        2,
        0,
    );
    let n = sc.clients.len();
    let mut hot = tcp("partner-api", [203, 0, 113, 80], t.select(n, 36, 0.6));
    hot.phases = vec![phase(0, 1200, 20.0), phase(300, 780, 330.0)];
    hot.lifetime = Lifetime::Exponential { mean_secs: 15.0 };
    hot.abandon_share = 0.7;
    let mut s3 = tcp("s3", S3_OTHER, t.select(n, 16, 1.2));
    s3.phases = vec![phase(0, 1200, 8.0)];
    s3.lifetime = Lifetime::Exponential { mean_secs: 30.0 };
    s3.packet_interval_secs = 10;
    let mut resolver = dns(RESOLVER, t.select(n, 24, 1.2));
    resolver.phases = vec![phase(0, 1200, 4.0)];
    sc.destinations = vec![hot, s3, resolver];
    sc
}

fn udp_dns() -> Scenario {
    let seed = 0x0d45_0053;
    let mut t = Topology::new(seed);
    let mut sc = t.base(
        "udp-dns",
        "A DNS query storm to one public resolver: every query holds a UDP mapping for 350 s and the ports run out.",
        seed,
        1,
        0,
    );
    let n = sc.clients.len();
    let mut resolver = dns(RESOLVER, t.select(n, 36, 0.6));
    resolver.phases = vec![phase(0, 1200, 10.0), phase(180, 660, 185.0)];
    let mut api = tcp("api", API, t.select(n, 20, 1.0));
    api.phases = vec![phase(0, 1200, 10.0)];
    let mut s3 = tcp("s3", S3_OTHER, t.select(n, 16, 1.2));
    s3.phases = vec![phase(0, 1200, 6.0)];
    s3.lifetime = Lifetime::Exponential { mean_secs: 30.0 };
    s3.packet_interval_secs = 10;
    sc.destinations = vec![resolver, api, s3];
    sc
}
