//! NAT gateway limits and the utilization thresholds that turn a count into a level.

use serde::{Deserialize, Serialize};

/// Simultaneous connections one NAT IPv4 address supports to one unique destination
/// (destination IP, destination port, protocol).
pub const CONNECTIONS_PER_ADDRESS: u64 = 55_000;

/// The most IPv4 addresses one NAT gateway can have (1 primary + 7 secondary).
pub const MAX_ADDRESSES: u32 = 8;

/// Seconds of silence after which the NAT gateway drops a connection (TCP: it sends RST) and frees
/// its port. Until then the port stays allocated.
pub const IDLE_TIMEOUT_SECS: u64 = 350;

/// The source ports a NAT gateway translates to.
pub const NAT_PORT_RANGE: std::ops::RangeInclusive<u16> = 1024..=65535;

/// The limit for one unique destination with `addresses` NAT addresses, clamped to 1..=8.
pub fn destination_limit(addresses: u32) -> u64 {
    CONNECTIONS_PER_ADDRESS * u64::from(addresses.clamp(1, MAX_ADDRESSES))
}

/// How close to the limit a destination is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Below the warning threshold.
    Ok,
    /// At or above the warning threshold.
    Warning,
    /// At or above the critical threshold, or port allocation errors seen.
    Critical,
}

/// Utilization thresholds (fractions of the limit).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Thresholds {
    /// Warn at or above this share of the limit (default 0.80).
    pub warning: f64,
    /// Critical at or above this share of the limit (default 0.95).
    pub critical: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds { warning: 0.80, critical: 0.95 }
    }
}

impl Thresholds {
    /// The level of a utilization; errors seen make it critical whatever the count.
    pub fn level(&self, utilization: f64, errors_seen: bool) -> Level {
        if errors_seen || utilization >= self.critical {
            Level::Critical
        } else if utilization >= self.warning {
            Level::Warning
        } else {
            Level::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_scales_with_addresses_and_clamps() {
        assert_eq!(destination_limit(1), 55_000);
        assert_eq!(destination_limit(2), 110_000);
        assert_eq!(destination_limit(8), 440_000);
        assert_eq!(destination_limit(0), 55_000);
        assert_eq!(destination_limit(9), 440_000);
    }

    #[test]
    fn levels() {
        let t = Thresholds::default();
        assert_eq!(t.level(0.5, false), Level::Ok);
        assert_eq!(t.level(0.8, false), Level::Warning);
        assert_eq!(t.level(0.95, false), Level::Critical);
        assert_eq!(t.level(0.1, true), Level::Critical);
    }
}
