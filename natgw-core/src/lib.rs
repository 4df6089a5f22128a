//! natgw-core: the pure domain of NAT gateway port exhaustion.
//!
//! Limits and thresholds, flow-log parsing, Logs Insights query builders, the simultaneous-connection
//! estimator, attribution, findings and the report model. No IO, no async runtime, no AWS SDK: the
//! local analyzer and the live AWS path both feed this crate and render its report.

pub mod analyze;
pub mod estimate;
pub mod findings;
pub mod flowlog;
pub mod insights;
pub mod limits;
pub mod metrics;
pub mod net;
pub mod prefixes;
pub mod prereq;
pub mod report;
pub mod time;
pub mod topology;

/// Helpers for the crate's tests (no `rand`: the domain crate keeps its dependencies few).
#[cfg(test)]
mod testing {
    /// Deterministic random numbers below their argument, from `seed` (a linear congruential step).
    pub(crate) fn rng(seed: u64) -> impl FnMut(u64) -> u64 {
        let mut s = seed;
        move |m: u64| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 33) % m
        }
    }
}
