//! Seeded, connection-level NAT gateway simulator: flow logs, CloudWatch-like metrics and ground truth.
//!
//! A [`Scenario`] describes one NAT gateway (1–8 IPv4 addresses), the clients behind it and the
//! destinations they call. [`Simulation::run`] replays it second by second with exact port accounting
//! (55,000 ports per NAT address per unique destination, a random free port per connection, the 350 s
//! idle hold for abandoned TCP connections and UDP mappings) and keeps every connection. From them it
//! renders what AWS would deliver: VPC flow logs of the NAT interface (default v2 and a custom v5
//! format with `pkt-srcaddr`/`pkt-dstaddr`/`tcp-flags`/`flow-direction`), flow logs of the clients'
//! interfaces, per-minute `AWS/NATGateway` metrics, a minimal `ip-ranges.json`, and the [`Truth`] the
//! analyzer is checked against.
//!
//! Everything is deterministic for a given seed: the same scenario gives byte-identical outputs.

mod builtin;
mod engine;
mod flowlog;
mod output;
mod scenario;
mod truth;

#[cfg(test)]
mod tests;

pub use engine::Simulation;
pub use flowlog::{CLIENTS_V2_HEADER, NAT_CUSTOM_FORMAT, NAT_CUSTOM_HEADER, V2_HEADER};
pub use output::{IpPrefix, IpRanges, files};
pub use scenario::{
    Client, ClientSelection, DEFAULT_START, DestSpec, Lifetime, NatGateway, Phase, Range, RetryPolicy, Scenario, TCP,
    UDP,
};
pub use truth::{ClientTruth, DestTruth, Metrics, Truth, Verdict};

/// Simultaneous connections one NAT address supports to one unique destination (ip, port, protocol).
pub const PORTS_PER_ADDRESS: u32 = 55_000;
/// Idle timeout of a NAT gateway mapping, in seconds: an abandoned TCP connection or a UDP mapping keeps
/// its port this long after its last packet.
pub const IDLE_TIMEOUT_SECS: u32 = 350;
/// Lowest NAT source port.
pub const NAT_PORT_MIN: u16 = 1024;
/// Highest NAT source port.
pub const NAT_PORT_MAX: u16 = 65535;
/// Lowest client ephemeral port (Linux default range).
pub const CLIENT_PORT_MIN: u16 = 32768;
/// Highest client ephemeral port (Linux default range).
pub const CLIENT_PORT_MAX: u16 = 60999;

/// What can go wrong when building or writing a simulation.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The scenario is inconsistent; the message says which field to fix.
    #[error("invalid scenario: {0}")]
    InvalidScenario(String),
    /// Writing an output file failed.
    #[error("cannot write {path}")]
    Io {
        /// The file being written.
        path: std::path::PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Serializing a JSON output failed.
    #[error("cannot serialize {what} as JSON")]
    Json {
        /// Which output.
        what: &'static str,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
}
