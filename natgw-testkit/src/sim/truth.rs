//! Ground truth and CloudWatch-like metrics of a simulation, as written to `truth.json` and `metrics.json`.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// Overall state of the NAT gateway over the simulated span.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// No destination got near its limit.
    Healthy,
    /// Some destination's peak reached 80 % of its limit, without failures.
    AtRisk,
    /// Some attempt failed with a port allocation error.
    Exhaustion,
}

/// What really happened, for the analyzer's tests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Truth {
    /// Scenario name.
    pub scenario: String,
    /// Seed used.
    pub seed: u64,
    /// First simulated second (unix).
    pub start: u64,
    /// First second after the simulated span (unix).
    pub end: u64,
    /// `nat-…`.
    pub nat_gateway_id: String,
    /// NAT private addresses, the primary first.
    pub nat_addresses: Vec<Ipv4Addr>,
    /// `exhaustion` if any failure, `at-risk` if any peak ≥ 80 % of its limit, else `healthy`.
    pub verdict: Verdict,
    /// Per destination, in scenario order.
    pub destinations: Vec<DestTruth>,
}

/// Truth about one unique destination.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DestTruth {
    /// Label of the destination.
    pub label: String,
    /// Destination address.
    pub ip: Ipv4Addr,
    /// Destination port.
    pub port: u16,
    /// 6 or 17.
    pub protocol: u8,
    /// 55,000 × number of NAT addresses.
    pub limit: u32,
    /// Most NAT ports held at once for this destination (all addresses).
    pub peak: u32,
    /// First second (unix) at which `peak` was held.
    pub peak_at: u64,
    /// Most ports held at once per NAT address (each address' own maximum).
    pub per_address_peak: BTreeMap<Ipv4Addr, u32>,
    /// Client attempts, failed ones and retries included.
    pub attempts: u64,
    /// Attempts refused with a port allocation error.
    pub failures: u64,
    /// Of `attempts`, the retries of failed attempts.
    pub retries: u64,
    /// Connections that got an answer.
    pub established: u64,
    /// Connections whose host never answered.
    pub unanswered: u64,
    /// Whether any attempt failed.
    pub saturated: bool,
    /// First and last second (unix) with a failure.
    pub failures_between: Option<(u64, u64)>,
    /// TCP only: share of established connections that were abandoned (never closed).
    pub abandoned_share_truth: Option<f64>,
    /// Per epoch-aligned minute inside the simulated span: `[minute, most ports held in it]`.
    pub held_max_per_minute: Vec<(u64, u32)>,
    /// Top 10 clients by attempts (distinct client ip and port flows), then by ip.
    pub top_clients: Vec<ClientTruth>,
}

/// One client's traffic to one destination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientTruth {
    /// Client address.
    pub ip: Ipv4Addr,
    /// Attempts (each with its own client port).
    pub attempts: u64,
    /// Bytes both ways (as logged, i.e. packets inside the simulated span).
    pub bytes: u64,
}

/// Per-minute `AWS/NATGateway` series: `series[metric] = [[minute unix seconds, value], …]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    /// `nat-…`.
    pub nat_gateway_id: String,
    /// Seconds per data point (60).
    pub period: u32,
    /// Metric name to points, epoch-aligned minutes covering the simulated span.
    pub series: BTreeMap<String, Vec<(u64, u64)>>,
}

impl Metrics {
    /// The points of one metric, if present.
    pub fn get(&self, name: &str) -> Option<&[(u64, u64)]> {
        self.series.get(name).map(Vec::as_slice)
    }

    /// Sum of a metric over all points (0 when absent).
    pub fn total(&self, name: &str) -> u64 {
        self.get(name).map_or(0, |s| s.iter().map(|p| p.1).sum())
    }

    /// Maximum of a metric over all points (0 when absent).
    pub fn max(&self, name: &str) -> u64 {
        self.get(name).and_then(|s| s.iter().map(|p| p.1).max()).unwrap_or(0)
    }
}
