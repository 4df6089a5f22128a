//! [`SdkAws`]: [`AwsApi`] over aws-sdk-ec2, aws-sdk-cloudwatch and aws-sdk-cloudwatchlogs, configured
//! by aws-config's standard chain. Pagination is followed here; retries, backoff and timeouts are the
//! SDK's (standard retry mode, [`MAX_ATTEMPTS`] attempts).

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy, StatusCode};
use aws_sdk_ec2::types::Filter;
use ipnet::IpNet;
use natgw_core::insights::InsightsQuery;
use natgw_core::topology::{
    FlowLogInfo, LogEvents, LogGroupInfo, MetricQuery, MetricSeries, NatGatewayInfo, QueryResults, RouteTableInfo,
    SubnetInfo, VpcEndpointInfo, VpcInfo,
};

use crate::error::{Error, REGION_HINT, Result, from_code, from_sdk};
use crate::{AwsApi, MAX_QUERY_LOG_GROUPS, METRIC_QUERIES_PER_CALL, NatSelector, StreamSelector, actions, convert};

/// Attempts per call, first one included (SDK standard retry mode: exponential backoff with jitter,
/// retrying throttling, transient and 5xx errors; the SDK's default is 3).
pub const MAX_ATTEMPTS: u32 = 5;

/// The CloudWatch namespace and dimension of NAT gateway metrics.
const NAMESPACE: &str = "AWS/NATGateway";
const DIMENSION: &str = "NatGatewayId";

/// Stream names per `FilterLogEvents` request (API limit).
const STREAM_NAMES_PER_CALL: usize = 100;
/// Events per `FilterLogEvents` page (API limit).
const EVENTS_PER_PAGE: usize = 10_000;

/// Every page of a paginated call: `$request` is the operation's fluent builder (cloned per page),
/// `$what` names the resource in errors.
macro_rules! paged {
    ($op:expr, $what:expr, $request:expr) => {
        all_pages($op, |token| {
            let req = $request;
            let what: String = $what;
            async move {
                let page = req.set_next_token(token).send().await.map_err(|e| from_sdk($op, || what, e))?;
                let next = page.next_token().map(str::to_owned);
                Ok((page, next))
            }
        })
    };
}

/// Where and as whom to call AWS. `None` leaves the choice to the standard chain (`AWS_REGION`,
/// `AWS_PROFILE`, `AWS_ENDPOINT_URL`, the shared config files, SSO, IMDS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsOptions {
    pub region: Option<String>,
    pub profile: Option<String>,
    /// Send every call there (moto, LocalStack, a VPC interface endpoint).
    pub endpoint_url: Option<String>,
}

/// The real adapter.
#[derive(Debug, Clone)]
pub struct SdkAws {
    ec2: aws_sdk_ec2::Client,
    cloudwatch: aws_sdk_cloudwatch::Client,
    logs: aws_sdk_cloudwatchlogs::Client,
    /// The loaded configuration, to derive clients for other regions; `None` for test clients.
    config: Option<SdkConfig>,
    region: Option<String>,
}

pub(crate) fn retry_config() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS)
}

impl SdkAws {
    /// Load configuration and credentials providers through aws-config's standard chain with
    /// `options` on top. Credentials are resolved lazily: a missing one shows as
    /// [`Error::NoCredentials`] on the first call. Fails with [`Error::NoRegion`] when no region is set.
    pub async fn new(options: &AwsOptions) -> Result<Self> {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            // One attempt; a FilterLogEvents page over a large group can take a while.
            .operation_attempt_timeout(Duration::from_secs(60))
            .build();
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).retry_config(retry_config()).timeout_config(timeouts);
        if let Some(region) = &options.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(profile) = &options.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(url) = &options.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let config = loader.load().await;
        if config.region().is_none() {
            return Err(Error::NoRegion { hint: REGION_HINT.to_owned() });
        }
        Ok(Self::from_config(config))
    }

    fn from_config(config: SdkConfig) -> Self {
        SdkAws {
            ec2: aws_sdk_ec2::Client::new(&config),
            cloudwatch: aws_sdk_cloudwatch::Client::new(&config),
            logs: aws_sdk_cloudwatchlogs::Client::new(&config),
            region: config.region().map(|r| r.as_ref().to_owned()),
            config: Some(config),
        }
    }

    /// The same credentials and settings, calling `region` (for `scan --all-regions`).
    pub fn with_region(&self, region: &str) -> Self {
        match &self.config {
            Some(c) => Self::from_config(c.to_builder().region(Region::new(region.to_owned())).build()),
            None => SdkAws { region: Some(region.to_owned()), ..self.clone() },
        }
    }

    /// An adapter over prepared clients (tests: aws-smithy-mocks clients).
    #[cfg(test)]
    pub(crate) fn from_clients(
        ec2: aws_sdk_ec2::Client,
        cloudwatch: aws_sdk_cloudwatch::Client,
        logs: aws_sdk_cloudwatchlogs::Client,
    ) -> Self {
        SdkAws { ec2, cloudwatch, logs, config: None, region: Some("us-east-1".to_owned()) }
    }

    async fn nat_gateways(&self, filters: Vec<Filter>, what: String) -> Result<Vec<NatGatewayInfo>> {
        const OP: &str = actions::DESCRIBE_NAT_GATEWAYS;
        let pages = paged!(
            OP,
            what.clone(),
            self.ec2.describe_nat_gateways().set_filter(Some(filters.clone())).max_results(1000)
        )
        .await?;
        pages.iter().flat_map(|p| p.nat_gateways()).map(convert::nat_gateway).collect()
    }
}

fn filter(name: &str, values: impl IntoIterator<Item = impl Into<String>>) -> Filter {
    Filter::builder().name(name).set_values(Some(values.into_iter().map(Into::into).collect())).build()
}

fn secs_to_i64(operation: &'static str, what: &str, secs: u64) -> Result<i64> {
    i64::try_from(secs).map_err(|_| Error::InvalidRequest { operation, message: format!("{what} {secs} out of range") })
}

/// Follow `NextToken` to the end. `fetch(token)` sends one request and returns the page and its token.
async fn all_pages<P, F, Fut>(operation: &'static str, mut fetch: F) -> Result<Vec<P>>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: Future<Output = Result<(P, Option<String>)>>,
{
    let mut pages = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let (page, next) = fetch(token.clone()).await?;
        pages.push(page);
        match next.filter(|t| !t.is_empty()) {
            None => return Ok(pages),
            Some(t) if token.as_ref() == Some(&t) => {
                return Err(Error::InvalidResponse { operation, message: "the same NextToken came back twice".into() });
            }
            Some(t) => token = Some(t),
        }
    }
}

#[async_trait]
impl AwsApi for SdkAws {
    fn region(&self) -> Option<String> {
        self.region.clone()
    }

    async fn describe_nat_gateways(&self, selector: &NatSelector) -> Result<Vec<NatGatewayInfo>> {
        // Filters rather than `NatGatewayIds`: an unknown ID then means an empty answer, like an unknown name.
        match selector {
            // An empty filter would list every gateway of the region.
            NatSelector::Ids(ids) if ids.is_empty() => Ok(Vec::new()),
            NatSelector::Ids(ids) => {
                self.nat_gateways(
                    vec![filter("nat-gateway-id", ids.iter().cloned())],
                    format!("NAT gateway {}", ids.join(", ")),
                )
                .await
            }
            NatSelector::Name(name) => {
                self.nat_gateways(vec![filter("tag:Name", [name.clone()])], format!("NAT gateway named {name:?}")).await
            }
        }
    }

    async fn list_nat_gateways(&self) -> Result<Vec<NatGatewayInfo>> {
        self.nat_gateways(Vec::new(), "NAT gateways".to_owned()).await
    }

    async fn describe_vpc(&self, vpc_id: &str) -> Result<VpcInfo> {
        const OP: &str = actions::DESCRIBE_VPCS;
        let what = || format!("VPC {vpc_id}");
        let out = self.ec2.describe_vpcs().vpc_ids(vpc_id).send().await.map_err(|e| from_sdk(OP, what, e))?;
        match out.vpcs().first() {
            Some(v) => convert::vpc(v),
            None => Err(Error::NotFound { what: what(), message: String::new() }),
        }
    }

    async fn describe_subnets(&self, vpc_id: &str) -> Result<Vec<SubnetInfo>> {
        const OP: &str = actions::DESCRIBE_SUBNETS;
        let pages = paged!(
            OP,
            format!("subnets of VPC {vpc_id}"),
            self.ec2.describe_subnets().filters(filter("vpc-id", [vpc_id])).max_results(1000)
        )
        .await?;
        pages.iter().flat_map(|p| p.subnets()).map(convert::subnet).collect()
    }

    async fn describe_route_tables(&self, vpc_id: &str) -> Result<Vec<RouteTableInfo>> {
        const OP: &str = actions::DESCRIBE_ROUTE_TABLES;
        let pages = paged!(
            OP,
            format!("route tables of VPC {vpc_id}"),
            self.ec2.describe_route_tables().filters(filter("vpc-id", [vpc_id])).max_results(100)
        )
        .await?;
        pages.iter().flat_map(|p| p.route_tables()).map(convert::route_table).collect()
    }

    async fn describe_vpc_endpoints(&self, vpc_id: &str) -> Result<Vec<VpcEndpointInfo>> {
        const OP: &str = actions::DESCRIBE_VPC_ENDPOINTS;
        let pages = paged!(
            OP,
            format!("VPC endpoints of {vpc_id}"),
            self.ec2.describe_vpc_endpoints().filters(filter("vpc-id", [vpc_id])).max_results(1000)
        )
        .await?;
        pages.iter().flat_map(|p| p.vpc_endpoints()).map(convert::vpc_endpoint).collect()
    }

    async fn prefix_list_cidrs(&self, service_name: &str) -> Result<Vec<IpNet>> {
        const LISTS: &str = actions::DESCRIBE_MANAGED_PREFIX_LISTS;
        const ENTRIES: &str = actions::GET_MANAGED_PREFIX_LIST_ENTRIES;
        let pages = paged!(
            LISTS,
            format!("prefix list {service_name}"),
            self.ec2.describe_managed_prefix_lists().filters(filter("prefix-list-name", [service_name]))
        )
        .await?;
        let ids: Vec<String> =
            pages.iter().flat_map(|p| p.prefix_lists()).filter_map(|l| l.prefix_list_id()).map(str::to_owned).collect();
        let mut out: Vec<IpNet> = Vec::new();
        for id in ids {
            let pages = paged!(
                ENTRIES,
                format!("prefix list {id}"),
                self.ec2.get_managed_prefix_list_entries().prefix_list_id(&id)
            )
            .await?;
            for cidr in pages.iter().flat_map(|p| p.entries()).filter_map(|e| e.cidr()) {
                let net: IpNet = cidr.parse().map_err(|_| Error::InvalidResponse {
                    operation: ENTRIES,
                    message: format!("prefix list entry {cidr:?} is not a CIDR"),
                })?;
                if !out.contains(&net) {
                    out.push(net);
                }
            }
        }
        Ok(out)
    }

    async fn describe_flow_logs(&self, resource_ids: &[String]) -> Result<Vec<FlowLogInfo>> {
        const OP: &str = actions::DESCRIBE_FLOW_LOGS;
        if resource_ids.is_empty() {
            // An empty filter would list every flow log of the region.
            return Ok(Vec::new());
        }
        let pages = paged!(
            OP,
            "flow logs".to_owned(),
            self.ec2.describe_flow_logs().filter(filter("resource-id", resource_ids.iter().cloned())).max_results(1000)
        )
        .await?;
        pages.iter().flat_map(|p| p.flow_logs()).map(convert::flow_log).collect()
    }

    async fn get_metric_data(
        &self,
        nat_gateway_id: &str,
        queries: &[MetricQuery],
        start: u64,
        end: u64,
        period: u32,
    ) -> Result<Vec<MetricSeries>> {
        const OP: &str = actions::GET_METRIC_DATA;
        let bad = |message: String| Error::InvalidRequest { operation: OP, message };
        if period == 0 || !period.is_multiple_of(60) {
            return Err(bad(format!("period {period} s is not a positive multiple of 60")));
        }
        if end <= start {
            return Err(bad(format!("the time range ends ({end}) before it starts ({start})")));
        }
        let period = i32::try_from(period).map_err(|_| bad(format!("period {period} s out of range")))?;
        let (start, end) = (secs_to_i64(OP, "start", start)?, secs_to_i64(OP, "end", end)?);
        let mut series: Vec<MetricSeries> = queries
            .iter()
            .map(|q| MetricSeries { metric: q.metric.clone(), statistic: q.statistic.clone(), points: Vec::new() })
            .collect();
        for (batch_no, batch) in queries.chunks(METRIC_QUERIES_PER_CALL).enumerate() {
            let offset = batch_no * METRIC_QUERIES_PER_CALL;
            let data_queries: Vec<MetricDataQuery> = batch
                .iter()
                .enumerate()
                .map(|(i, q)| {
                    let metric = Metric::builder()
                        .namespace(NAMESPACE)
                        .metric_name(&q.metric)
                        .dimensions(Dimension::builder().name(DIMENSION).value(nat_gateway_id).build())
                        .build();
                    MetricDataQuery::builder()
                        // Query IDs must start with a lower-case letter.
                        .id(format!("m{i}"))
                        .metric_stat(MetricStat::builder().metric(metric).period(period).stat(&q.statistic).build())
                        .return_data(true)
                        .build()
                })
                .collect();
            let pages = paged!(
                OP,
                format!("metrics of {nat_gateway_id}"),
                self.cloudwatch
                    .get_metric_data()
                    .set_metric_data_queries(Some(data_queries.clone()))
                    .start_time(DateTime::from_secs(start))
                    .end_time(DateTime::from_secs(end))
                    .scan_by(ScanBy::TimestampAscending)
            )
            .await?;
            for result in pages.iter().flat_map(|p| p.metric_data_results()) {
                let id = result.id().unwrap_or_default();
                let index = id
                    .strip_prefix('m')
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|i| *i < batch.len())
                    .ok_or_else(|| Error::InvalidResponse {
                        operation: OP,
                        message: format!("unknown query id {id:?}"),
                    })?;
                let messages = || result.messages().iter().filter_map(|m| m.value()).collect::<Vec<_>>().join("; ");
                match result.status_code() {
                    Some(StatusCode::Forbidden) => {
                        return Err(Error::AccessDenied { action: OP, message: messages() });
                    }
                    Some(StatusCode::InternalError) => {
                        return Err(from_code(OP, String::new, "InternalError".to_owned(), messages()));
                    }
                    _ => {}
                }
                if result.timestamps().len() != result.values().len() {
                    return Err(Error::InvalidResponse {
                        operation: OP,
                        message: format!(
                            "{id}: {} timestamps for {} values",
                            result.timestamps().len(),
                            result.values().len()
                        ),
                    });
                }
                let points = &mut series[offset + index].points;
                for (t, v) in result.timestamps().iter().zip(result.values()) {
                    let secs = u64::try_from(t.secs()).map_err(|_| Error::InvalidResponse {
                        operation: OP,
                        message: format!("timestamp {} before 1970", t.secs()),
                    })?;
                    points.push((secs, *v));
                }
            }
        }
        for s in &mut series {
            s.points.sort_by_key(|(t, _)| *t);
        }
        Ok(series)
    }

    async fn describe_log_group(&self, name: &str) -> Result<Option<LogGroupInfo>> {
        const OP: &str = actions::DESCRIBE_LOG_GROUPS;
        // A prefix search: follow pages until the exact name shows up (names sort lexically, so it is early).
        let mut token: Option<String> = None;
        loop {
            let page = self
                .logs
                .describe_log_groups()
                .log_group_name_prefix(name)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| from_sdk(OP, || format!("log group {name}"), e))?;
            if let Some(g) = page.log_groups().iter().find(|g| g.log_group_name() == Some(name)) {
                return Ok(Some(convert::log_group(g)));
            }
            match page.next_token().filter(|t| !t.is_empty()) {
                Some(t) if token.as_deref() != Some(t) => token = Some(t.to_owned()),
                _ => return Ok(None),
            }
        }
    }

    async fn start_query(&self, query: &InsightsQuery, limit: u32) -> Result<String> {
        const OP: &str = actions::START_QUERY;
        let n = query.log_groups.len();
        if n == 0 || n > MAX_QUERY_LOG_GROUPS {
            return Err(Error::InvalidRequest {
                operation: OP,
                message: format!("{n} log groups; a query takes 1 to {MAX_QUERY_LOG_GROUPS}"),
            });
        }
        let limit = i32::try_from(limit)
            .map_err(|_| Error::InvalidRequest { operation: OP, message: format!("limit {limit} out of range") })?;
        let out = self
            .logs
            .start_query()
            .set_log_group_names(Some(query.log_groups.clone()))
            .query_string(&query.text)
            .start_time(secs_to_i64(OP, "start", query.start)?)
            .end_time(secs_to_i64(OP, "end", query.end)?)
            .limit(limit)
            .send()
            .await
            .map_err(|e| from_sdk(OP, || format!("log group {}", query.log_groups.join(", ")), e))?;
        out.query_id()
            .map(str::to_owned)
            .ok_or_else(|| Error::InvalidResponse { operation: OP, message: "no query ID".to_owned() })
    }

    async fn get_query_results(&self, query_id: &str) -> Result<QueryResults> {
        const OP: &str = actions::GET_QUERY_RESULTS;
        let pages = paged!(OP, format!("query {query_id}"), self.logs.get_query_results().query_id(query_id)).await?;
        let last = pages.last().ok_or_else(|| Error::InvalidResponse { operation: OP, message: "no page".into() })?;
        let stats = last.statistics();
        Ok(QueryResults {
            status: convert::query_status(last.status()),
            rows: pages.iter().flat_map(|p| p.results()).map(|r| convert::result_row(r)).collect(),
            records_matched: stats.map_or(0.0, |s| s.records_matched()),
            records_scanned: stats.map_or(0.0, |s| s.records_scanned()),
            bytes_scanned: stats.map_or(0.0, |s| s.bytes_scanned()),
        })
    }

    async fn stop_query(&self, query_id: &str) -> Result<bool> {
        const OP: &str = actions::STOP_QUERY;
        let out = self
            .logs
            .stop_query()
            .query_id(query_id)
            .send()
            .await
            .map_err(|e| from_sdk(OP, || format!("query {query_id}"), e))?;
        Ok(out.success())
    }

    async fn filter_log_events(
        &self,
        log_group: &str,
        streams: &StreamSelector,
        start: u64,
        end: u64,
        max_events: usize,
    ) -> Result<LogEvents> {
        const OP: &str = actions::FILTER_LOG_EVENTS;
        let start_ms = secs_to_i64(OP, "start", start)?.saturating_mul(1000);
        // `end` is inclusive to the second; FilterLogEvents' endTime is inclusive to the millisecond.
        let end_ms = secs_to_i64(OP, "end", end)?.saturating_mul(1000).saturating_add(999);
        // One request chain per batch of streams.
        let batches: Vec<(Option<String>, Option<Vec<String>>)> = match streams {
            StreamSelector::All => vec![(None, None)],
            StreamSelector::Prefix(p) => vec![(Some(p.clone()), None)],
            StreamSelector::Names(names) => {
                names.chunks(STREAM_NAMES_PER_CALL).map(|c| (None, Some(c.to_vec()))).collect()
            }
        };
        let mut out = LogEvents::default();
        for (i, (prefix, names)) in batches.iter().enumerate() {
            let mut token: Option<String> = None;
            loop {
                if out.events.len() >= max_events {
                    out.truncated = true;
                    return Ok(out);
                }
                let want = (max_events - out.events.len()).min(EVENTS_PER_PAGE);
                let page = self
                    .logs
                    .filter_log_events()
                    .log_group_name(log_group)
                    .set_log_stream_name_prefix(prefix.clone())
                    .set_log_stream_names(names.clone())
                    .start_time(start_ms)
                    .end_time(end_ms)
                    .limit(i32::try_from(want).unwrap_or(i32::MAX))
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| from_sdk(OP, || format!("log group {log_group}"), e))?;
                let events = page.events();
                for e in events.iter().take(max_events - out.events.len()) {
                    out.events.push(convert::log_event(e)?);
                }
                let next = page.next_token().filter(|t| !t.is_empty()).map(str::to_owned);
                let more_here = events.len() > want || next.is_some();
                if out.events.len() >= max_events {
                    out.truncated = more_here || i + 1 < batches.len();
                    return Ok(out);
                }
                match next {
                    Some(t) if token.as_ref() != Some(&t) => token = Some(t),
                    Some(_) => {
                        return Err(Error::InvalidResponse {
                            operation: OP,
                            message: "the same nextToken twice".into(),
                        });
                    }
                    None => break,
                }
            }
        }
        Ok(out)
    }

    async fn describe_regions(&self) -> Result<Vec<String>> {
        const OP: &str = actions::DESCRIBE_REGIONS;
        let out = self.ec2.describe_regions().send().await.map_err(|e| from_sdk(OP, || "regions".to_owned(), e))?;
        let mut regions: Vec<String> =
            out.regions().iter().filter_map(|r| r.region_name()).map(str::to_owned).collect();
        regions.sort();
        Ok(regions)
    }
}

#[cfg(test)]
mod tests;
