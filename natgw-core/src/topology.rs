//! What natgw learns about a NAT gateway's AWS surroundings, as plain values: the gateway and its
//! addresses, the VPC, subnets, route tables, VPC endpoints, flow logs, metric series, Logs Insights
//! results and log events. `natgw-aws` returns these; natgw-core's rules and the CLI consume them.
//! No IO here: the types only describe what the AWS APIs answered.

use std::net::Ipv4Addr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};

use crate::net::InterfaceId;

/// `ConnectivityType` of a NAT gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Connectivity {
    /// Elastic IPs, in a public subnet.
    Public,
    /// No Elastic IP; egress through a transit or virtual private gateway.
    Private,
    /// A value this version does not know.
    Unknown,
}

/// `AvailabilityMode` of a NAT gateway (regional NAT gateways, Nov 2025).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AvailabilityMode {
    /// One subnet, one Availability Zone.
    Zonal,
    /// Spans the region's zones; AWS may add addresses itself (`auto_scaling_ips`).
    Regional,
    /// Not reported (older API answers, emulators) or a value this version does not know.
    Unknown,
}

/// A NAT gateway as `DescribeNatGateways` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatGatewayInfo {
    /// `nat-…`.
    pub id: String,
    /// The `Name` tag.
    pub name: Option<String>,
    /// `pending` | `failed` | `available` | `deleting` | `deleted`.
    pub state: String,
    pub connectivity: Connectivity,
    pub availability_mode: AvailabilityMode,
    /// Whether AWS adds addresses by itself (regional gateways); `None` when not reported.
    pub auto_scaling_ips: Option<bool>,
    pub vpc_id: String,
    /// The subnet of a zonal gateway; regional gateways have none.
    pub subnet_id: Option<String>,
    /// Every address, primary and secondary, in the order AWS lists them.
    pub addresses: Vec<NatAddress>,
}

impl NatGatewayInfo {
    /// The primary address: the one flagged primary, else the first (emulators omit the flag).
    pub fn primary(&self) -> Option<&NatAddress> {
        self.addresses.iter().find(|a| a.is_primary == Some(true)).or_else(|| self.addresses.first())
    }

    /// Private IPv4 addresses, primary first, without duplicates.
    pub fn private_ips(&self) -> Vec<Ipv4Addr> {
        let mut out: Vec<Ipv4Addr> = Vec::new();
        let primary = self.primary().and_then(|a| a.private_ip);
        for ip in primary.into_iter().chain(self.addresses.iter().filter_map(|a| a.private_ip)) {
            if !out.contains(&ip) {
                out.push(ip);
            }
        }
        out
    }

    /// The network interfaces the gateway's addresses sit on (one for a zonal gateway), primary first.
    pub fn interface_ids(&self) -> Vec<InterfaceId> {
        let mut out: Vec<InterfaceId> = Vec::new();
        let primary = self.primary().and_then(|a| a.interface_id.clone());
        for eni in primary.into_iter().chain(self.addresses.iter().filter_map(|a| a.interface_id.clone())) {
            if !out.contains(&eni) {
                out.push(eni);
            }
        }
        out
    }
}

/// One address of a NAT gateway (`NatGatewayAddress`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatAddress {
    /// The Elastic IP allocation (`eipalloc-…`); none on private gateways.
    pub allocation_id: Option<String>,
    pub public_ip: Option<Ipv4Addr>,
    /// The address that appears as `srcaddr` of the NAT's egress flow-log records.
    pub private_ip: Option<Ipv4Addr>,
    pub interface_id: Option<InterfaceId>,
    /// `None` when not reported (emulators).
    pub is_primary: Option<bool>,
    /// `assigning` | `unassigning` | `associating` | `disassociating` | `succeeded` | `failed`.
    pub status: Option<String>,
    /// Set for regional gateways.
    pub availability_zone: Option<String>,
}

/// A VPC and all its CIDR blocks (associated ones only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcInfo {
    pub id: String,
    /// Primary block first, then secondary blocks.
    pub cidrs_v4: Vec<Ipv4Net>,
    pub cidrs_v6: Vec<Ipv6Net>,
}

/// A subnet and its zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetInfo {
    pub id: String,
    /// `None` for IPv6-only subnets.
    pub cidr: Option<Ipv4Net>,
    /// `us-east-1a`: names differ between accounts.
    pub availability_zone: String,
    /// `use1-az1`: the same physical zone in every account.
    pub az_id: Option<String>,
}

/// A route table, reduced to what matters here: which subnets use it and which routes go to a NAT gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteTableInfo {
    pub id: String,
    /// The VPC's main table: it applies to every subnet without an explicit association.
    pub main: bool,
    /// Subnets explicitly associated with this table.
    pub subnet_ids: Vec<String>,
    /// Routes whose target is a NAT gateway.
    pub nat_routes: Vec<NatRoute>,
}

/// A route whose target is a NAT gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatRoute {
    pub destination: RouteDestination,
    pub nat_gateway_id: String,
}

/// Where a route sends traffic to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteDestination {
    /// An IPv4 or IPv6 block (`0.0.0.0/0`, `64:ff9b::/96` for NAT64).
    Cidr(IpNet),
    /// A managed prefix list (`pl-…`).
    PrefixList(String),
}

/// A VPC endpoint already present in the VPC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcEndpointInfo {
    pub id: String,
    /// `com.amazonaws.us-east-1.s3`.
    pub service_name: String,
    /// `Gateway` | `Interface` | `GatewayLoadBalancer` | …
    pub endpoint_type: String,
    /// The route tables a gateway endpoint is attached to.
    pub route_table_ids: Vec<String>,
    /// `available`, `pending`, …
    pub state: String,
}

/// `TrafficType` of a flow log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TrafficType {
    Accept,
    Reject,
    All,
    Unknown,
}

/// `LogDestinationType` of a flow log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlowLogDestinationType {
    CloudWatchLogs,
    S3,
    KinesisDataFirehose,
    Unknown,
}

/// A flow log and where its records go (`DescribeFlowLogs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowLogInfo {
    /// `fl-…`.
    pub id: String,
    /// The interface, subnet or VPC it covers.
    pub resource_id: String,
    pub traffic_type: TrafficType,
    pub destination_type: FlowLogDestinationType,
    /// The log group, for CloudWatch Logs destinations.
    pub log_group: Option<String>,
    /// The destination ARN (S3 bucket, Firehose stream, or log group).
    pub destination: Option<String>,
    /// `${version} ${account-id} …` as AWS reports it (parse with [`crate::flowlog::LogFormat`]).
    pub log_format: String,
    /// Seconds: 60 or 600.
    pub max_aggregation_interval: u32,
    /// `SUCCESS` | `FAILED`.
    pub deliver_status: Option<String>,
    /// Why delivery fails (`Rate limited`, `Access error`, …).
    pub deliver_error: Option<String>,
}

/// One CloudWatch metric and statistic to fetch.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MetricQuery {
    /// `ErrorPortAllocation`.
    pub metric: String,
    /// `Sum`, `Maximum`, `Average`, `p99`, …
    pub statistic: String,
}

impl MetricQuery {
    pub fn new(metric: &str, statistic: &str) -> Self {
        MetricQuery { metric: metric.to_owned(), statistic: statistic.to_owned() }
    }

    /// The NAT gateway metrics a diagnosis reads, each with the statistic that means something.
    pub fn nat_defaults() -> Vec<MetricQuery> {
        [
            ("ErrorPortAllocation", "Sum"),
            ("ActiveConnectionCount", "Maximum"),
            ("IdleTimeoutCount", "Sum"),
            ("ConnectionAttemptCount", "Sum"),
            ("ConnectionEstablishedCount", "Sum"),
            ("PacketsDropCount", "Sum"),
        ]
        .into_iter()
        .map(|(m, s)| MetricQuery::new(m, s))
        .collect()
    }
}

/// A metric's data points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSeries {
    pub metric: String,
    pub statistic: String,
    /// `(unix seconds, value)`, oldest first. Periods without data have no point.
    pub points: Vec<(u64, f64)>,
}

/// State of a Logs Insights query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum QueryStatus {
    Scheduled,
    Running,
    Complete,
    Failed,
    Cancelled,
    Timeout,
    Unknown,
}

impl QueryStatus {
    /// The query will not change any more.
    pub fn is_finished(self) -> bool {
        !matches!(self, QueryStatus::Scheduled | QueryStatus::Running)
    }
}

/// What `GetQueryResults` answered (every page joined).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryResults {
    pub status: QueryStatus,
    /// Rows of `(field, value)` in the query's field order (`@ptr` left out). Partial unless `Complete`.
    pub rows: Vec<Vec<(String, String)>>,
    pub records_matched: f64,
    pub records_scanned: f64,
    /// What the query is billed on.
    pub bytes_scanned: f64,
}

impl QueryResults {
    /// The value of `field` in `row`.
    pub fn field<'a>(row: &'a [(String, String)], field: &str) -> Option<&'a str> {
        row.iter().find(|(f, _)| f == field).map(|(_, v)| v.as_str())
    }
}

/// A CloudWatch Logs log group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogGroupInfo {
    pub name: String,
    pub arn: Option<String>,
    pub stored_bytes: Option<u64>,
    pub retention_days: Option<u32>,
    /// `STANDARD` | `INFREQUENT_ACCESS` | … (Logs Insights needs STANDARD).
    pub class: Option<String>,
    /// Unix milliseconds.
    pub created_ms: Option<u64>,
}

/// One log event (`FilterLogEvents`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEvent {
    /// Unix milliseconds.
    pub timestamp_ms: u64,
    pub message: String,
    /// The log stream (`eni-…-all` for flow logs).
    pub stream: Option<String>,
}

/// Events fetched up to a cap.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LogEvents {
    pub events: Vec<LogEvent>,
    /// More events matched than the cap allowed.
    pub truncated: bool,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn addr(ip: [u8; 4], eni: &str, primary: Option<bool>) -> NatAddress {
        NatAddress {
            allocation_id: None,
            public_ip: None,
            private_ip: Some(Ipv4Addr::from(ip)),
            interface_id: Some(eni.parse().unwrap()),
            is_primary: primary,
            status: None,
            availability_zone: None,
        }
    }

    /// A zonal public gateway `nat-1` in `vpc-1`, subnet `subnet-1` (also for other modules' tests).
    pub(crate) fn nat(addresses: Vec<NatAddress>) -> NatGatewayInfo {
        NatGatewayInfo {
            id: "nat-1".into(),
            name: None,
            state: "available".into(),
            connectivity: Connectivity::Public,
            availability_mode: AvailabilityMode::Zonal,
            auto_scaling_ips: None,
            vpc_id: "vpc-1".into(),
            subnet_id: Some("subnet-1".into()),
            addresses,
        }
    }

    #[test]
    fn primary_address_comes_first_even_when_listed_later() {
        let n = nat(vec![addr([10, 0, 0, 9], "eni-0b", Some(false)), addr([10, 0, 0, 5], "eni-0a", Some(true))]);
        assert_eq!(n.private_ips(), vec![Ipv4Addr::new(10, 0, 0, 5), Ipv4Addr::new(10, 0, 0, 9)]);
        assert_eq!(n.interface_ids().iter().map(InterfaceId::as_str).collect::<Vec<_>>(), ["eni-0a", "eni-0b"]);
    }

    #[test]
    fn without_primary_flag_the_first_address_is_primary() {
        let n = nat(vec![addr([10, 0, 0, 7], "eni-0c", None), addr([10, 0, 0, 8], "eni-0c", None)]);
        assert_eq!(n.primary().and_then(|a| a.private_ip), Some(Ipv4Addr::new(10, 0, 0, 7)));
        assert_eq!(n.interface_ids().len(), 1);
    }

    #[test]
    fn enums_serialise_as_aws_spells_them() {
        let j = serde_json::to_string(&(
            FlowLogDestinationType::CloudWatchLogs,
            FlowLogDestinationType::KinesisDataFirehose,
            TrafficType::All,
            Connectivity::Private,
            AvailabilityMode::Regional,
        ))
        .unwrap();
        assert_eq!(j, r#"["cloud-watch-logs","kinesis-data-firehose","ALL","private","regional"]"#);
    }

    #[test]
    fn finished_statuses() {
        assert!(!QueryStatus::Running.is_finished());
        assert!(!QueryStatus::Scheduled.is_finished());
        assert!(QueryStatus::Complete.is_finished());
        assert!(QueryStatus::Timeout.is_finished());
    }
}
