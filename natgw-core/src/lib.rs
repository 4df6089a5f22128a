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
