//! natgw-aws: the AWS adapter of natgw (EC2, CloudWatch, CloudWatch Logs).
//!
//! [`AwsApi`] is the contract: read operations only (Describe*, Get*, List*, StartQuery,
//! GetQueryResults, StopQuery, FilterLogEvents), natgw-core types in and out, errors a user can act
//! on ([`Error`]). [`SdkAws`] implements it over the AWS SDK for Rust; no SDK type leaves this crate.
//! The IAM actions called are [`ACTIONS`], granted by `docs/iam-policy.json`.
//!
//! Times are Unix seconds (`u64`), like natgw-core's; ranges are inclusive except `get_metric_data`'s end.

pub mod actions;
mod convert;
mod error;
pub mod live;
pub mod runner;
mod sdk;

use async_trait::async_trait;
use ipnet::IpNet;
use natgw_core::insights::InsightsQuery;
use natgw_core::topology::{
    FlowLogInfo, LogEvents, LogGroupInfo, MetricQuery, MetricSeries, NatGatewayInfo, QueryResults, RouteTableInfo,
    SubnetInfo, VpcEndpointInfo, VpcInfo,
};

pub use actions::ACTIONS;
pub use error::{CREDENTIALS_HINT, Error, REGION_HINT, Result};
pub use sdk::{AwsOptions, MAX_ATTEMPTS, SdkAws};

/// Which NAT gateways to describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NatSelector {
    /// By ID (`nat-…`). Unknown IDs are left out of the answer, not an error.
    Ids(Vec<String>),
    /// By the exact value of the `Name` tag (several gateways may share it).
    Name(String),
}

/// Which log streams of a group to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamSelector {
    /// Every stream of the group.
    All,
    /// Streams whose name starts with this (`eni-0abc` for one interface's flow-log stream).
    Prefix(String),
    /// These streams (any number; sent 100 at a time).
    Names(Vec<String>),
}

/// Metrics per `GetMetricData` call (the API's limit on queries per request).
pub const METRIC_QUERIES_PER_CALL: usize = 500;

/// Log groups one Logs Insights query may name.
pub const MAX_QUERY_LOG_GROUPS: usize = 50;

/// The AWS calls natgw makes. Every method is a read; none changes anything in the account.
/// Paginated APIs are followed to the end (or to the stated cap) inside each method.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait AwsApi: Send + Sync {
    /// The region the calls go to, if one is configured.
    fn region(&self) -> Option<String>;

    /// NAT gateways by ID or `Name` tag (`ec2:DescribeNatGateways`). Empty when none match.
    async fn describe_nat_gateways(&self, selector: &NatSelector) -> Result<Vec<NatGatewayInfo>>;

    /// Every NAT gateway in the region, whatever its state (`ec2:DescribeNatGateways`).
    async fn list_nat_gateways(&self) -> Result<Vec<NatGatewayInfo>>;

    /// A VPC and all its associated CIDR blocks (`ec2:DescribeVpcs`). [`Error::NotFound`] if absent.
    async fn describe_vpc(&self, vpc_id: &str) -> Result<VpcInfo>;

    /// The VPC's subnets with their zones (`ec2:DescribeSubnets`).
    async fn describe_subnets(&self, vpc_id: &str) -> Result<Vec<SubnetInfo>>;

    /// The VPC's route tables: associations and routes to NAT gateways (`ec2:DescribeRouteTables`).
    async fn describe_route_tables(&self, vpc_id: &str) -> Result<Vec<RouteTableInfo>>;

    /// The VPC's endpoints (`ec2:DescribeVpcEndpoints`).
    async fn describe_vpc_endpoints(&self, vpc_id: &str) -> Result<Vec<VpcEndpointInfo>>;

    /// The CIDRs of the AWS-managed prefix list named `service_name` (`com.amazonaws.REGION.s3`,
    /// `….dynamodb`) (`ec2:DescribeManagedPrefixLists`, `ec2:GetManagedPrefixListEntries`).
    /// Empty when the region has no such list.
    async fn prefix_list_cidrs(&self, service_name: &str) -> Result<Vec<IpNet>>;

    /// Flow logs attached to any of these resources: interfaces, subnets, VPCs (`ec2:DescribeFlowLogs`).
    async fn describe_flow_logs(&self, resource_ids: &[String]) -> Result<Vec<FlowLogInfo>>;

    /// `AWS/NATGateway` metrics of one gateway over `[start, end)` (end exclusive, as CloudWatch) at
    /// `period` seconds (a positive multiple of 60), one series per query in the order asked, points
    /// oldest first (`cloudwatch:GetMetricData`; batches of [`METRIC_QUERIES_PER_CALL`], every page).
    async fn get_metric_data(
        &self,
        nat_gateway_id: &str,
        queries: &[MetricQuery],
        start: u64,
        end: u64,
        period: u32,
    ) -> Result<Vec<MetricSeries>>;

    /// A log group by exact name, or `None` (`logs:DescribeLogGroups`).
    async fn describe_log_group(&self, name: &str) -> Result<Option<LogGroupInfo>>;

    /// Start a Logs Insights query returning at most `limit` rows; the query ID (`logs:StartQuery`).
    async fn start_query(&self, query: &InsightsQuery, limit: u32) -> Result<String>;

    /// A query's status and rows so far, every page joined (`logs:GetQueryResults`).
    async fn get_query_results(&self, query_id: &str) -> Result<QueryResults>;

    /// Cancel a running query; whether AWS stopped it (`logs:StopQuery`).
    async fn stop_query(&self, query_id: &str) -> Result<bool>;

    /// Events of `log_group` in `[start, end]`, at most `max_events` (`logs:FilterLogEvents`, every page).
    async fn filter_log_events(
        &self,
        log_group: &str,
        streams: &StreamSelector,
        start: u64,
        end: u64,
        max_events: usize,
    ) -> Result<LogEvents>;

    /// The regions enabled for the account (`ec2:DescribeRegions`).
    async fn describe_regions(&self) -> Result<Vec<String>>;
}

#[cfg(all(test, feature = "mock"))]
mod mock_tests {
    use super::*;

    #[tokio::test]
    async fn the_trait_can_be_mocked_for_orchestration_tests() {
        let mut m = MockAwsApi::new();
        m.expect_describe_regions().returning(|| Ok(vec!["eu-west-1".to_owned()]));
        m.expect_describe_vpc()
            .returning(|id| Err(Error::NotFound { what: format!("VPC {id}"), message: String::new() }));
        let api: &dyn AwsApi = &m;
        assert_eq!(api.describe_regions().await.unwrap(), ["eu-west-1"]);
        assert!(matches!(api.describe_vpc("vpc-9").await, Err(Error::NotFound { .. })));
    }
}
