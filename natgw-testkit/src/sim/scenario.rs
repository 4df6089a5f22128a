//! The scenario model: one NAT gateway, the clients behind it and the destinations they call.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::{SimError, builtin};

/// IANA protocol number of TCP.
pub const TCP: u8 = 6;
/// IANA protocol number of UDP.
pub const UDP: u8 = 17;

/// Start time used by the built-in scenarios unless [`Scenario::with_start`] moves it
/// (2026-05-28T20:26:40Z, deliberately not on a minute boundary).
pub const DEFAULT_START: u64 = 1_780_000_000;

/// A complete, serializable description of what to simulate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// Short name (`hot-s3`, …).
    pub name: String,
    /// One sentence saying what happens.
    pub description: String,
    /// Seed of every random draw of the simulation (arrivals, lifetimes, ports, window offsets).
    pub seed: u64,
    /// Account that owns the interfaces (`123456789012`).
    pub account_id: String,
    /// Region (`us-east-1`).
    pub region: String,
    /// First simulated second, unix seconds.
    pub start: u64,
    /// Simulated seconds; nothing is attempted and no packet is logged at or after `start + duration`.
    pub duration_secs: u32,
    /// Flow-log aggregation interval in seconds (60 or 600).
    pub interval_secs: u32,
    /// The NAT gateway.
    pub nat: NatGateway,
    /// CIDR blocks of the VPC (the primary first).
    pub vpc_cidrs: Vec<String>,
    /// Instances (or pods with their own interface) behind the NAT gateway.
    pub clients: Vec<Client>,
    /// Unique destinations the clients call.
    pub destinations: Vec<DestSpec>,
}

/// The NAT gateway and its network interface.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatGateway {
    /// `nat-…`.
    pub nat_gateway_id: String,
    /// `eni-…` of the NAT gateway's interface.
    pub interface_id: String,
    /// Public subnet of the NAT gateway.
    pub subnet_id: String,
    /// VPC.
    pub vpc_id: String,
    /// Availability zone name (`us-east-1a`).
    pub az: String,
    /// Availability zone id (`use1-az1`), written in the custom format's `az-id`.
    pub az_id: String,
    /// Private IPv4 addresses of the NAT gateway, the primary first (1–8).
    pub addresses: Vec<Ipv4Addr>,
}

/// A client interface behind the NAT gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Client {
    /// Private IPv4 address.
    pub ip: Ipv4Addr,
    /// `eni-…`.
    pub interface_id: String,
    /// `subnet-…`.
    pub subnet_id: String,
    /// Availability zone name.
    pub az: String,
    /// `i-…`.
    pub instance_id: String,
}

/// An inclusive range of integers, drawn uniformly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// Smallest value.
    pub min: u32,
    /// Largest value.
    pub max: u32,
}

impl Range {
    /// The range `min..=max`.
    pub const fn new(min: u32, max: u32) -> Self {
        Self { min, max }
    }
}

/// A time span with a constant Poisson arrival rate; overlapping phases add up.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    /// First second (relative to the scenario start), inclusive.
    pub from_sec: u32,
    /// Last second, exclusive.
    pub to_sec: u32,
    /// Mean new connections per second.
    pub rate_per_sec: f64,
}

/// Distribution of a connection's active duration (first to last packet), rounded to whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Lifetime {
    /// Always the same.
    Fixed {
        /// Seconds.
        secs: u32,
    },
    /// Uniform over `min_secs..=max_secs`.
    Uniform {
        /// Shortest.
        min_secs: u32,
        /// Longest.
        max_secs: u32,
    },
    /// Exponential with the given mean.
    Exponential {
        /// Mean seconds.
        mean_secs: f64,
    },
    /// Log-normal with the given mean and shape.
    LogNormal {
        /// Mean seconds.
        mean_secs: f64,
        /// Standard deviation of the underlying normal.
        sigma: f64,
    },
}

/// Which clients call a destination: `clients[k]` gets weight `1 / (k + 1)^zipf_exponent`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientSelection {
    /// Indices into [`Scenario::clients`], the heaviest first.
    pub clients: Vec<usize>,
    /// Zipf exponent (0 = uniform).
    pub zipf_exponent: f64,
}

/// What a client does when the NAT gateway could not allocate a port for its attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Retries after the first attempt (each with a new client port).
    pub max_retries: u32,
    /// Delay after the failed attempt's last packet, drawn uniformly from this range.
    pub delay_secs: Range,
}

/// One unique destination (ip, port, protocol) and the traffic sent to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DestSpec {
    /// Role of the destination (`s3`, `dynamodb`, `api`, `dns`, …); `s3` and `dynamodb` mark AWS services.
    pub label: String,
    /// Public IPv4 address.
    pub ip: Ipv4Addr,
    /// Destination port.
    pub port: u16,
    /// 6 (TCP) or 17 (UDP).
    pub protocol: u8,
    /// Arrival rates over time.
    pub phases: Vec<Phase>,
    /// Active duration of a connection.
    pub lifetime: Lifetime,
    /// TCP: share of established connections never closed (no FIN: the NAT holds the port 350 s after the
    /// last packet). Ignored for UDP, whose mappings always wait for the idle timeout.
    pub abandon_share: f64,
    /// Seconds between packet times while a connection is active (packets at `o, o+pi, …` and at the last
    /// packet time).
    pub packet_interval_secs: u32,
    /// Packets per direction at each packet time.
    pub packets_per_time: Range,
    /// Bytes of each client → destination packet.
    pub bytes_out: Range,
    /// Bytes of each destination → client packet.
    pub bytes_in: Range,
    /// Who calls.
    pub clients: ClientSelection,
    /// Share of connections whose host never answers (TCP: SYN retransmits, port held 4 s; UDP: one query,
    /// mapping held for the idle timeout).
    pub unanswered_share: f64,
    /// Retries of attempts that hit a port allocation error.
    pub retry: RetryPolicy,
}

impl DestSpec {
    /// Arrival rate at second `t` (sum of the phases covering it).
    pub fn rate_at(&self, t: u32) -> f64 {
        self.phases.iter().filter(|p| p.from_sec <= t && t < p.to_sec).map(|p| p.rate_per_sec).sum()
    }

    /// The `pkt-dst-aws-service` value of packets sent to this destination.
    pub fn aws_service(&self) -> Option<&'static str> {
        match self.label.as_str() {
            "s3" => Some("S3"),
            "dynamodb" => Some("DYNAMODB"),
            _ => None,
        }
    }
}

impl Scenario {
    /// Names of the built-in scenarios.
    pub fn builtin_names() -> &'static [&'static str] {
        builtin::NAMES
    }

    /// A built-in scenario by name, starting at [`DEFAULT_START`].
    pub fn builtin(name: &str) -> Option<Scenario> {
        builtin::build(name)
    }

    /// The same scenario starting at `start` (unix seconds), e.g. "now minus the duration".
    #[must_use]
    pub fn with_start(mut self, start: u64) -> Self {
        self.start = start;
        self
    }

    /// The same scenario with another seed (same topology, other random draws).
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The same scenario cut (or extended) to `secs` seconds, phases clipped to it: a quick slice of a
    /// built-in scenario for tests.
    #[must_use]
    pub fn with_duration(mut self, secs: u32) -> Self {
        self.duration_secs = secs;
        for d in &mut self.destinations {
            d.phases.retain(|p| p.from_sec < secs);
            for p in &mut d.phases {
                p.to_sec = p.to_sec.min(secs);
            }
        }
        self
    }

    /// First second after the simulated span, unix seconds.
    pub fn end(&self) -> u64 {
        self.start + u64::from(self.duration_secs)
    }

    /// Checks everything the simulator relies on.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |msg: String| Err(SimError::InvalidScenario(msg));
        if self.duration_secs == 0 {
            return bad("duration_secs must be positive".into());
        }
        if self.interval_secs == 0 {
            return bad("interval_secs must be positive".into());
        }
        let n = self.nat.addresses.len();
        if !(1..=8).contains(&n) {
            return bad(format!("a NAT gateway has 1 to 8 IPv4 addresses, not {n}"));
        }
        if self.nat.addresses.iter().collect::<BTreeSet<_>>().len() != n {
            return bad("NAT addresses must be distinct".into());
        }
        if self.clients.is_empty() || self.clients.len() > usize::from(u16::MAX) {
            return bad(format!("1 to 65535 clients, not {}", self.clients.len()));
        }
        if self.destinations.is_empty() || self.destinations.len() > 4096 {
            return bad(format!("1 to 4096 destinations, not {}", self.destinations.len()));
        }
        let mut seen = BTreeSet::new();
        for d in &self.destinations {
            let name = format!("destination {} {}:{}", d.label, d.ip, d.port);
            if !seen.insert((d.ip, d.port, d.protocol)) {
                return bad(format!("{name} is listed twice"));
            }
            if d.protocol != TCP && d.protocol != UDP {
                return bad(format!("{name}: protocol must be 6 or 17"));
            }
            for p in &d.phases {
                if p.from_sec >= p.to_sec || !p.rate_per_sec.is_finite() || p.rate_per_sec < 0.0 {
                    return bad(format!("{name}: bad phase {p:?}"));
                }
            }
            let share_ok = |s: f64| (0.0..=1.0).contains(&s);
            if !share_ok(d.abandon_share) || !share_ok(d.unanswered_share) {
                return bad(format!("{name}: shares must be within 0..=1"));
            }
            if d.packet_interval_secs == 0 {
                return bad(format!("{name}: packet_interval_secs must be positive"));
            }
            for (what, r) in
                [("packets_per_time", d.packets_per_time), ("bytes_out", d.bytes_out), ("bytes_in", d.bytes_in)]
            {
                if r.min == 0 || r.min > r.max {
                    return bad(format!("{name}: {what} must be 1 <= min <= max"));
                }
            }
            if d.retry.delay_secs.min > d.retry.delay_secs.max {
                return bad(format!("{name}: retry delay min > max"));
            }
            let lifetime_ok = match d.lifetime {
                Lifetime::Fixed { .. } => true,
                Lifetime::Uniform { min_secs, max_secs } => min_secs <= max_secs,
                Lifetime::Exponential { mean_secs } => mean_secs.is_finite() && mean_secs > 0.0,
                Lifetime::LogNormal { mean_secs, sigma } => {
                    mean_secs.is_finite() && mean_secs > 0.0 && sigma.is_finite() && sigma >= 0.0
                }
            };
            if !lifetime_ok {
                return bad(format!("{name}: bad lifetime {:?}", d.lifetime));
            }
            let sel = &d.clients;
            if sel.clients.is_empty()
                || sel.clients.iter().any(|&c| c >= self.clients.len())
                || !sel.zipf_exponent.is_finite()
                || sel.zipf_exponent < 0.0
            {
                return bad(format!("{name}: bad client selection"));
            }
        }
        Ok(())
    }
}
