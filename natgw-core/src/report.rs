//! The report model: one serde structure for the local analyzer and the live AWS path, rendered by
//! the CLI as a table, JSON, Markdown or HTML. Field names and order are part of the stable JSON
//! interface (`schema_version` changes when they do); `docs/report.schema.json` is generated from it.

use std::net::IpAddr;

use serde::Serialize;

use crate::estimate::HoldModel;
use crate::insights::QueryKind;
use crate::limits::Level;
use crate::metrics::{ErrorWindow, MetricSummary};
use crate::net::Protocol;
use crate::prefixes::GatewayService;
use crate::time::Timestamp;
use crate::topology::QueryStatus;

/// The version of this JSON shape.
pub const SCHEMA_VERSION: u32 = 1;

/// The whole diagnosis.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Report {
    pub schema_version: u32,
    pub verdict: Verdict,
    /// What was analysed.
    pub input: InputSummary,
    /// Unique destinations, by `peak_connections` descending (the top N).
    pub destinations: Vec<DestinationReport>,
    /// Findings, most severe first.
    pub findings: Vec<Finding>,
    /// Whether connections could be attributed to source clients, and how.
    pub attribution: Attribution,
    /// Flow-log lines skipped as unreadable, over all inputs.
    pub skipped_lines: u64,
    /// The first skipped lines, with the reason.
    pub bad_lines: Vec<BadLineReport>,
    /// Notes on assumptions the analysis made (an inferred NAT address, assumed VPC ranges).
    pub notes: Vec<String>,
    /// What the AWS APIs showed, on the live path (`diagnose`); absent for local files.
    pub live: Option<LiveReport>,
}

/// The live path's evidence and costs.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LiveReport {
    pub region: Option<String>,
    /// `insights` (Logs Insights scans the logs in AWS) or `local` (records pulled and analysed here).
    pub engine: String,
    /// The metrics' range `[start, end)` and period.
    pub metrics_start: Timestamp,
    pub metrics_end: Timestamp,
    pub period_secs: u32,
    pub metrics: Vec<MetricSummary>,
    /// Minutes with port allocation errors, grouped.
    pub error_windows: Vec<ErrorWindow>,
    /// The flow-log ranges read, `[start, end]`.
    pub analysed_ranges: Vec<[Timestamp; 2]>,
    /// The log group read, if any.
    pub log_group: Option<String>,
    /// Logs Insights queries run (empty for the local engine).
    pub queries: Vec<QueryRun>,
    /// Logs Insights bytes scanned, over all queries.
    pub bytes_scanned: u64,
    /// What those bytes cost at the list price of [`INSIGHTS_USD_PER_GB`] per GB scanned.
    pub estimated_cost_usd: f64,
    /// Log events pulled to this machine (local engine).
    pub events_pulled: u64,
}

/// Logs Insights' list price per GB scanned (US East; other regions differ slightly).
pub const INSIGHTS_USD_PER_GB: f64 = 0.005;

/// One Logs Insights query as it ran.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct QueryRun {
    pub kind: QueryKind,
    pub start: Timestamp,
    pub end: Timestamp,
    /// `complete`, `failed`, `cancelled`, `timeout`.
    pub status: QueryStatus,
    pub rows: u64,
    pub records_scanned: u64,
    pub bytes_scanned: u64,
}

/// The overall answer.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Verdict {
    pub status: Status,
    /// One line for a person.
    pub summary: String,
}

/// Healthy, at risk of exhaustion, or exhausted (port allocation errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Healthy,
    AtRisk,
    Exhausted,
}

/// What the report was computed from.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct InputSummary {
    /// `local` (flow-log files) or `live` (AWS APIs).
    pub engine: String,
    /// Inputs (file names) or the NAT gateway ID.
    pub sources: Vec<String>,
    pub nat_gateway_id: Option<String>,
    /// The NAT gateway's network interface.
    pub nat_interface: Option<String>,
    /// NAT private IPv4 addresses (primary first when known).
    pub nat_addresses: Vec<IpAddr>,
    /// The limit per unique destination: 55,000 × NAT addresses.
    pub limit_per_destination: u64,
    /// VPC CIDR blocks used to tell clients from destinations.
    pub vpc_cidrs: Vec<String>,
    /// Log formats seen (`${field} …`).
    pub log_formats: Vec<String>,
    /// Records read (NODATA/SKIPDATA included).
    pub records: u64,
    /// First and last second the records cover.
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    /// Inputs found under a directory given that were left out: not flow-log files (empty, a
    /// README) or not readable (a broken link).
    pub left_out: Vec<LeftOut>,
}

/// An input left out of the analysis, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct LeftOut {
    /// The input's name, as in `sources`.
    pub source: String,
    /// Why, as the warning said it.
    pub reason: String,
}

/// One unique destination (IP, port, protocol).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DestinationReport {
    pub address: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
    /// `S3` or `DynamoDB` when the address is in that service's prefixes.
    pub service: Option<GatewayService>,
    /// Best estimate of the peak simultaneous connections (NAT ports held), all NAT addresses.
    pub peak_connections: u64,
    /// [low, high]: no uncertain idle hold vs every uncertain end held for 350 s.
    pub peak_connections_range: [u64; 2],
    pub peak_at: Option<Timestamp>,
    /// 55,000 × NAT addresses.
    pub limit: u64,
    /// peak_connections / limit.
    pub utilization: f64,
    pub level: Level,
    /// Port allocation errors seen or pinned on this destination, or the estimate reached the limit.
    pub saturated: bool,
    /// NAT → destination flow-log records.
    pub records: u64,
    /// Bytes both ways through the NAT gateway.
    pub bytes: u64,
    /// Connections (NAT port uses) seen.
    pub connections: u64,
    /// Top source clients (empty when attribution is unavailable).
    pub sources: Vec<SourceReport>,
    /// Best-estimate peak per NAT address.
    pub per_address: Vec<AddressPeak>,
    pub evidence: Evidence,
}

/// A source client of one destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct SourceReport {
    pub address: IpAddr,
    /// Distinct client flows (client address and port) to the destination, attempts included.
    pub connections: u64,
    /// Bytes both ways.
    pub bytes: u64,
}

/// Peak per NAT address.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct AddressPeak {
    pub address: IpAddr,
    pub peak_connections: u64,
}

/// What the estimate stands on.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Evidence {
    pub hold_model: HoldModel,
    /// Share of connections judged abandoned (held 350 s after their last packet).
    pub abandoned_share: Option<f64>,
    /// Connection attempts the NAT gateway dropped (client legs with no NAT leg), pinned here.
    pub dropped_attempts: u64,
    /// When the first dropped attempt was seen.
    pub first_drop_at: Option<Timestamp>,
    /// Port allocation errors reported by CloudWatch in the window (live path only).
    pub error_port_allocation: Option<u64>,
    /// Peak distinct NAT ports in one 60-second bin (the rough proxy the manual procedure implies).
    pub max_ports_per_minute: u64,
}

/// Whether clients could be named, and how.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Attribution {
    pub method: AttributionMethod,
    /// Why it is unavailable and how to fix that, when it is.
    pub note: Option<String>,
}

/// How sources were attributed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AttributionMethod {
    /// `pkt-dstaddr` on the NAT interface's client legs.
    PktDstaddr,
    /// The clients' own interface records.
    ClientInterfaces,
    /// Not possible with these logs.
    Unavailable,
}

/// A finding: something true about the gateway, how bad it is, and what to do.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Finding {
    /// Stable identifier (`port-exhaustion`, `idle-connections`, …).
    pub id: String,
    pub severity: Severity,
    pub summary: String,
    /// The destination it concerns, as `ip:port/proto`.
    pub destination: Option<String>,
    pub remedies: Vec<Remedy>,
}

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// One step of the remedy plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Remedy {
    pub summary: String,
    /// The exact command, where one exists.
    pub command: Option<String>,
}

/// A skipped line.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct BadLineReport {
    pub input: String,
    pub line: u64,
    pub reason: String,
}

impl Report {
    /// The most severe finding's severity, if any.
    pub fn worst_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}
