//! The live diagnosis, over any [`AwsApi`]: the seed's whole procedure in one call.
//!
//! metrics → error windows → discovery → prerequisites → flow-log records of the windows (ranked and
//! fetched by Logs Insights, or pulled with FilterLogEvents) → natgw-core's analyzer → the report.
//! Records from either engine go through the same parser and the same [`Analyzer`] as local files,
//! so the estimate, attribution and findings have one implementation.

use std::collections::BTreeMap;
use std::net::IpAddr;

use futures_util::future::{join, join_all, try_join4};
use natgw_core::analyze::{AnalyzeConfig, AnalyzeError, Analyzer, CountedSources, LiveEvidence};
use natgw_core::flowlog::{Field, LogFormat, parse_all};
use natgw_core::insights::{self, InsightsQuery, NatTarget, QueryScope, SourceView};
use natgw_core::metrics::{self, ErrorWindow, MetricSummary};
use natgw_core::net::{CidrSet, Destination, Protocol};
use natgw_core::prefixes::ServicePrefixes;
use natgw_core::prereq::{self, LogSource, PrereqInput, Prerequisites};
use natgw_core::report::{
    Attribution, AttributionMethod, INSIGHTS_USD_PER_GB, InputSummary, LiveReport, Report, SCHEMA_VERSION,
    SourceReport, Status, Verdict,
};
use natgw_core::time::Timestamp;
use natgw_core::topology::{
    FlowLogInfo, LogGroupInfo, MetricQuery, MetricSeries, NatGatewayInfo, QueryResults, RouteTableInfo, SubnetInfo,
    VpcEndpointInfo, VpcInfo,
};
use tokio::sync::Semaphore;

use crate::runner::QueryRunner;
use crate::{AwsApi, Error, NatSelector, StreamSelector};

/// Which engine reads the flow logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Logs Insights scans the logs in AWS; only the hot destinations' records come back.
    Insights,
    /// FilterLogEvents pulls the NAT interface's records of the windows; analysed here.
    Local,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Insights => "insights",
            Engine::Local => "local",
        }
    }
}

/// What to diagnose and how.
#[derive(Debug, Clone)]
pub struct DiagnoseOptions {
    /// `nat-…`, or the value of the gateway's `Name` tag.
    pub nat: String,
    /// The metrics range `[start, end)`, Unix seconds.
    pub start: u64,
    pub end: u64,
    pub engine: Engine,
    /// Destinations in the report.
    pub top: usize,
    /// Destinations whose every record is fetched for the estimator (Insights engine).
    pub hot: usize,
    /// At most this many log events pulled (local engine).
    pub max_events: usize,
    /// At most this many error windows analysed (the worst ones).
    pub max_windows: usize,
}

impl DiagnoseOptions {
    pub fn new(nat: impl Into<String>, start: u64, end: u64) -> Self {
        DiagnoseOptions {
            nat: nat.into(),
            start,
            end,
            engine: Engine::Insights,
            top: 10,
            hot: 5,
            max_events: 2_000_000,
            max_windows: 3,
        }
    }
}

/// Why a live command could not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    Aws(#[from] Error),
    #[error("NAT gateway {wanted} not found in {region}; {}", available_list(.available))]
    NatNotFound { wanted: String, region: String, available: Vec<String> },
    #[error("{count} NAT gateways are named {name} ({ids}); pass one ID")]
    AmbiguousName { name: String, count: usize, ids: String },
    #[error("the flow-log records of the window could not be analysed: {0}")]
    Analysis(#[from] AnalyzeError),
}

fn available_list(ids: &[String]) -> String {
    if ids.is_empty() { "the region has no NAT gateway".into() } else { format!("the region has: {}", ids.join(", ")) }
}

/// Everything discovery learnt about a gateway.
#[derive(Debug, Clone)]
pub struct Discovery {
    pub nat: NatGatewayInfo,
    pub vpc: VpcInfo,
    pub subnets: Vec<SubnetInfo>,
    pub route_tables: Vec<RouteTableInfo>,
    pub endpoints: Vec<VpcEndpointInfo>,
    /// Subnets routed through this gateway ([`prereq::client_subnets`]).
    pub client_subnets: Vec<String>,
    /// Flow logs on the NAT's interfaces, its subnet, the VPC and the client subnets.
    pub flow_logs: Vec<FlowLogInfo>,
    /// Each CloudWatch Logs group those flow logs name, and what `DescribeLogGroups` said.
    pub log_groups: Vec<(String, Option<LogGroupInfo>)>,
    pub prefixes: ServicePrefixes,
}

impl Discovery {
    /// The prerequisite checks on what was discovered.
    pub fn prerequisites(&self) -> Prerequisites {
        prereq::check(&PrereqInput {
            nat: &self.nat,
            flow_logs: &self.flow_logs,
            route_tables: &self.route_tables,
            subnets: &self.subnets,
            log_groups: &self.log_groups,
        })
    }
}

/// The NAT gateway `wanted` names (`nat-…` or a `Name` tag).
pub async fn find_nat(api: &dyn AwsApi, wanted: &str) -> Result<NatGatewayInfo, LiveError> {
    // Each answer is checked against what was asked: a filter an emulator or proxy ignores must not
    // turn into a diagnosis of some other gateway.
    let mut found = if is_nat_id(wanted) {
        api.describe_nat_gateways(&NatSelector::Ids(vec![wanted.to_owned()])).await?
    } else {
        Vec::new()
    };
    found.retain(|n| n.id == wanted);
    if found.is_empty() {
        found = api.describe_nat_gateways(&NatSelector::Name(wanted.to_owned())).await?;
        found.retain(|n| n.name.as_deref() == Some(wanted));
        // A gateway deleted and recreated under the same name stays visible for a while.
        if found.len() > 1 && found.iter().any(|n| n.state == "available") {
            found.retain(|n| n.state == "available");
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => {
            let available = api
                .list_nat_gateways()
                .await?
                .iter()
                .map(|n| match &n.name {
                    Some(name) => format!("{} ({name}, {})", n.id, n.state),
                    None => format!("{} ({})", n.id, n.state),
                })
                .collect();
            Err(LiveError::NatNotFound {
                wanted: wanted.to_owned(),
                region: api.region().unwrap_or_else(|| "the region".into()),
                available,
            })
        }
        count => Err(LiveError::AmbiguousName {
            name: wanted.to_owned(),
            count,
            ids: found.iter().map(|n| n.id.as_str()).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// `nat-` and 8 or 17 hex digits: an ID (anything else, `nat-prod-1a` included, is a Name tag).
fn is_nat_id(s: &str) -> bool {
    s.strip_prefix("nat-").is_some_and(|h| {
        matches!(h.len(), 8 | 17) && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Discovers the gateway's surroundings: VPC, subnets, routes, endpoints, S3/DynamoDB prefixes, the
/// flow logs that can see it or its clients, and their log groups.
pub async fn discover(api: &dyn AwsApi, nat: NatGatewayInfo) -> Result<Discovery, LiveError> {
    let vpc_id = nat.vpc_id.clone();
    let (vpc, subnets, route_tables, endpoints) = try_join4(
        api.describe_vpc(&vpc_id),
        api.describe_subnets(&vpc_id),
        api.describe_route_tables(&vpc_id),
        api.describe_vpc_endpoints(&vpc_id),
    )
    .await?;
    let region = api.region();
    let prefixes = match &region {
        Some(r) => {
            let (s3, ddb) = join(
                api.prefix_list_cidrs(&format!("com.amazonaws.{r}.s3")),
                api.prefix_list_cidrs(&format!("com.amazonaws.{r}.dynamodb")),
            )
            .await;
            ServicePrefixes { region: Some(r.clone()), s3: CidrSet::new(s3?), dynamodb: CidrSet::new(ddb?) }
        }
        None => ServicePrefixes::default(),
    };
    let mut resources: Vec<String> = nat.interface_ids().iter().map(ToString::to_string).collect();
    resources.extend(nat.subnet_id.iter().cloned());
    resources.push(vpc_id.clone());
    let client_subnets = prereq::client_subnets(&route_tables, &subnets, &nat.id);
    resources.extend(client_subnets.iter().cloned());
    resources.sort();
    resources.dedup();
    let flow_logs = api.describe_flow_logs(&resources).await?;
    let mut groups: Vec<String> = flow_logs.iter().filter_map(|f| f.log_group.clone()).collect();
    groups.sort();
    groups.dedup();
    let infos = join_all(groups.iter().map(|g| api.describe_log_group(g))).await;
    let log_groups = groups.into_iter().zip(infos).map(|(g, i)| Ok((g, i?))).collect::<Result<Vec<_>, Error>>()?;
    Ok(Discovery { nat, vpc, subnets, route_tables, endpoints, client_subnets, flow_logs, log_groups, prefixes })
}

/// The metric period for a range: what CloudWatch still keeps for its start (1-minute data for 15
/// days, 5-minute for 63, hourly after), and no finer than 5 minutes for ranges over a week.
pub fn period_for(start: u64, end: u64) -> u32 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(end, |d| d.as_secs());
    let age = now.saturating_sub(start);
    if age > 63 * 86_400 {
        3600
    } else if age > 15 * 86_400 || end.saturating_sub(start) > 7 * 86_400 {
        300
    } else {
        60
    }
}

/// The gateway's metrics over `[start, end)` ([`MetricQuery::nat_defaults`]).
pub async fn fetch_metrics(api: &dyn AwsApi, nat_id: &str, start: u64, end: u64) -> Result<Vec<MetricSeries>, Error> {
    api.get_metric_data(nat_id, &MetricQuery::nat_defaults(), start, end, period_for(start, end)).await
}

/// Seconds read on each side of the busiest minute when there was no error.
const BUSIEST_CONTEXT_SECS: u64 = 600;

/// The `max` error windows with the most errors, oldest first.
pub fn worst_windows(windows: &[ErrorWindow], max: usize) -> Vec<ErrorWindow> {
    let mut chosen: Vec<ErrorWindow> = windows.to_vec();
    chosen.sort_by_key(|w| std::cmp::Reverse(w.errors));
    chosen.truncate(max.max(1));
    chosen.sort_by_key(|w| w.start);
    chosen
}

/// The flow-log ranges to read for `windows`, each reaching back over the idle timeout (before the
/// metrics range if need be: that is what the estimate needs), merged, ending before `end`.
pub fn error_ranges(windows: &[ErrorWindow], end: u64, aggregation_secs: u64) -> Vec<(u64, u64)> {
    metrics::log_ranges(windows, aggregation_secs)
        .into_iter()
        .map(|(s, e)| (s, e.min(end.saturating_sub(1))))
        .filter(|(s, e)| s <= e)
        .collect()
}

/// The range to read around the busiest minute: ten minutes each side, reaching back over the idle
/// timeout, clipped to `[start, end)`.
pub fn busiest_range(minute: u64, start: u64, end: u64, aggregation_secs: u64) -> Vec<(u64, u64)> {
    let w = ErrorWindow {
        start: Timestamp(minute.saturating_sub(BUSIEST_CONTEXT_SECS)),
        end: Timestamp(minute + BUSIEST_CONTEXT_SECS),
        errors: 0,
    };
    error_ranges(&[w], end, aggregation_secs).into_iter().map(|(s, e)| (s.max(start), e)).collect()
}

/// Progress for a person (stderr), one line each.
pub type Progress<'a> = &'a (dyn Fn(&str) + Sync);

/// Runs the whole diagnosis. `runner` carries the Insights budget and can stop queries (Ctrl-C).
pub async fn diagnose(
    api: &dyn AwsApi,
    runner: &QueryRunner<'_>,
    opts: &DiagnoseOptions,
    progress: Progress<'_>,
) -> Result<Report, LiveError> {
    let nat = find_nat(api, &opts.nat).await?;
    progress(&format!("{}: {} in {}, {} address(es)", nat.id, nat.state, nat.vpc_id, nat.addresses.len()));
    let nat_id = nat.id.clone();
    let (series, discovery) = join(fetch_metrics(api, &nat_id, opts.start, opts.end), discover(api, nat)).await;
    let (series, discovery) = (series?, discovery?);
    let period = period_for(opts.start, opts.end);
    let windows = metrics::error_series(&series)
        .map(|s| metrics::error_windows(&s.points, u64::from(period)))
        .unwrap_or_default();
    let errors: u64 = windows.iter().map(|w| w.errors).sum();
    progress(&format!("ErrorPortAllocation: {errors} in {} window(s)", windows.len()));
    let prereqs = discovery.prerequisites();
    let mut live = LiveReport {
        region: api.region(),
        engine: opts.engine.name().into(),
        metrics_start: Timestamp(opts.start),
        metrics_end: Timestamp(opts.end),
        period_secs: period,
        metrics: series.iter().map(MetricSummary::of).collect(),
        error_windows: windows.clone(),
        analysed_ranges: Vec::new(),
        log_group: None,
        queries: Vec::new(),
        bytes_scanned: 0,
        estimated_cost_usd: 0.0,
        events_pulled: 0,
    };
    let Some(source) = prereqs.nat_source.clone() else {
        return Ok(metrics_only_report(&discovery, &prereqs, live, errors));
    };
    let nat = &discovery.nat;
    let target = NatTarget {
        interface: nat.interface_ids().first().cloned().ok_or_else(|| no_interface(nat))?,
        addresses: nat.private_ips(),
        vpc_cidrs: discovery.vpc.cidrs_v4.clone(),
    };
    let aggregation = u64::from(source.aggregation_secs);
    let analysed = worst_windows(&windows, opts.max_windows);
    let ranges = if !windows.is_empty() {
        error_ranges(&analysed, opts.end, aggregation)
    } else {
        match opts.engine {
            // No error to aim at: find the minute a destination used the most NAT ports.
            Engine::Insights => match busiest_minute(runner, &target, &source, opts).await? {
                Some(m) => busiest_range(m, opts.start, opts.end, aggregation),
                None => Vec::new(),
            },
            // Pulling is capped by --max-events; the whole range is the only honest choice.
            Engine::Local => vec![(opts.start, opts.end.saturating_sub(1))],
        }
    };
    live.analysed_ranges = ranges.iter().map(|&(s, e)| [Timestamp(s), Timestamp(e)]).collect();
    live.log_group = Some(source.log_group.clone());
    let config = AnalyzeConfig {
        nat_addresses: nat.private_ips().into_iter().map(IpAddr::V4).collect(),
        vpc_cidrs: CidrSet::new(
            discovery
                .vpc
                .cidrs_v4
                .iter()
                .map(|c| (*c).into())
                .chain(discovery.vpc.cidrs_v6.iter().map(|c| (*c).into())),
        ),
        top: opts.top,
        top_sources: 10,
        prefixes: discovery.prefixes.clone(),
        nat_gateway_id: Some(nat.id.clone()),
        vpc_id: Some(nat.vpc_id.clone()),
        live: Some(LiveEvidence { error_windows: analysed.clone(), sources: None }),
        endpoints: discovery.endpoints.clone(),
        client_route_tables: discovery
            .route_tables
            .iter()
            .filter(|t| t.nat_routes.iter().any(|r| r.nat_gateway_id == nat.id))
            .map(|t| t.id.clone())
            .collect(),
        ..AnalyzeConfig::default()
    };
    let mut notes = Vec::new();
    let interfaces = nat.interface_ids();
    if interfaces.len() > 1 {
        notes.push(format!(
            "{} has {} network interfaces (a regional gateway); only {}'s records were read",
            nat.id,
            interfaces.len(),
            target.interface
        ));
    }
    let analyzer = match opts.engine {
        Engine::Insights => {
            let client_cidrs: Vec<ipnet::Ipv4Net> = discovery
                .subnets
                .iter()
                .filter(|s| discovery.client_subnets.contains(&s.id))
                .filter_map(|s| s.cidr)
                .collect();
            let (analyzer, n) = via_insights(
                runner,
                &target,
                &source,
                prereqs.client_source.as_ref(),
                &client_cidrs,
                &ranges,
                config,
                opts,
                progress,
            )
            .await?;
            notes.extend(n);
            analyzer
        }
        Engine::Local => {
            let eni = nat.interface_ids().first().map(ToString::to_string).ok_or_else(|| no_interface(nat))?;
            let (analyzer, pulled, n) = via_filter(api, &source, &eni, &ranges, config, opts, progress).await?;
            live.events_pulled = pulled;
            notes.extend(n);
            analyzer
        }
    };
    let mut report = match analyzer.finish() {
        Ok(r) => r,
        // The logs of the window are empty: delivery lag (about 5 minutes), a flow log younger than
        // the incident, or past retention. The metrics still give the verdict.
        Err(
            AnalyzeError::NoRecords { .. }
            | AnalyzeError::NatNotSeen { .. }
            | AnalyzeError::NatNoEgress { .. }
            | AnalyzeError::NatInterfaceNotSeen(_),
        ) => {
            let mut r = metrics_only_report(&discovery, &prereqs, live, errors);
            r.notes.push(format!(
                "{} holds no NAT egress record for the window: flow logs arrive about 5 minutes late, and a \
                 flow log created after the incident or a shorter retention leaves nothing to read",
                source.log_group
            ));
            return Ok(r);
        }
        Err(e) => return Err(e.into()),
    };
    report.input.sources = vec![format!("{}:{}", source.log_group, nat.id)];
    report.notes.extend(notes);
    merge_findings(&mut report, &prereqs);
    live.queries = runner.runs();
    live.bytes_scanned = runner.bytes_scanned();
    live.estimated_cost_usd = cost(live.bytes_scanned);
    report.live = Some(live);
    Ok(report)
}

fn no_interface(nat: &NatGatewayInfo) -> LiveError {
    LiveError::Aws(Error::InvalidResponse {
        operation: crate::actions::DESCRIBE_NAT_GATEWAYS,
        message: format!("{} has no network interface", nat.id),
    })
}

/// Logs Insights' price for `bytes` scanned, in US dollars.
pub fn cost(bytes: u64) -> f64 {
    bytes as f64 / 1e9 * INSIGHTS_USD_PER_GB
}

/// Prerequisite findings join the analysis' own (one per id; the analysis' wins).
fn merge_findings(report: &mut Report, prereqs: &Prerequisites) {
    for f in &prereqs.findings {
        if !report.findings.iter().any(|g| g.id == f.id) {
            report.findings.push(f.clone());
        }
    }
    report.findings.retain(|f| !(f.id == "healthy" && report.verdict.status != Status::Healthy));
    report.findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
}

/// The report when no flow log can be read: the metrics' verdict and the prerequisite findings.
fn metrics_only_report(d: &Discovery, prereqs: &Prerequisites, live: LiveReport, errors: u64) -> Report {
    let nat = &d.nat;
    let verdict = if errors > 0 {
        Verdict {
            status: Status::Exhausted,
            summary: format!(
                "Port exhaustion: CloudWatch counted {} port allocation errors; the flow logs needed to name the \
                 destination cannot be read (see the findings)",
                natgw_core::analyze::thousands(errors)
            ),
        }
    } else {
        Verdict {
            status: Status::Healthy,
            summary: "No port allocation errors in the window; destinations cannot be checked against their limit \
                      without readable flow logs (see the findings)"
                .into(),
        }
    };
    let addresses: Vec<IpAddr> = nat.private_ips().into_iter().map(IpAddr::V4).collect();
    Report {
        schema_version: SCHEMA_VERSION,
        verdict,
        input: InputSummary {
            engine: "live".into(),
            sources: vec![nat.id.clone()],
            nat_gateway_id: Some(nat.id.clone()),
            nat_interface: nat.interface_ids().first().map(ToString::to_string),
            limit_per_destination: natgw_core::limits::destination_limit(addresses.len().max(1) as u32),
            nat_addresses: addresses,
            vpc_cidrs: d.vpc.cidrs_v4.iter().map(ToString::to_string).collect(),
            log_formats: Vec::new(),
            records: 0,
            start: None,
            end: None,
            left_out: Vec::new(),
        },
        destinations: Vec::new(),
        findings: prereqs.findings.clone(),
        attribution: Attribution {
            method: AttributionMethod::Unavailable,
            note: Some("No readable flow log covers the NAT gateway".into()),
        },
        skipped_lines: 0,
        bad_lines: Vec::new(),
        notes: Vec::new(),
        live: Some(live),
    }
}

/// The minute in which one destination used the most distinct NAT ports over the whole range.
async fn busiest_minute(
    runner: &QueryRunner<'_>,
    target: &NatTarget,
    source: &LogSource,
    opts: &DiagnoseOptions,
) -> Result<Option<u64>, LiveError> {
    let scope = QueryScope {
        log_groups: vec![source.log_group.clone()],
        start: opts.start,
        end: opts.end.saturating_sub(1),
        format: source.format.clone(),
    };
    let q = insights::ports_per_minute(target, &scope, 10)
        .map_err(|e| Error::InvalidRequest { operation: crate::actions::START_QUERY, message: e.to_string() })?;
    let r = runner.run(&q).await?;
    Ok(r.rows.first().and_then(|row| QueryResults::field(row, "minute")).and_then(Timestamp::parse).map(|t| t.0))
}

/// Feeds flow-log lines to the analyzer through natgw-core's parser.
fn push_lines(analyzer: &mut Analyzer, name: String, format: &LogFormat, text: &str) {
    let stats = parse_all(text.as_bytes(), format.clone(), true, &mut |r| analyzer.push(r));
    analyzer.add_input(name, format, stats);
}

#[allow(clippy::too_many_arguments)]
async fn via_insights(
    runner: &QueryRunner<'_>,
    target: &NatTarget,
    source: &LogSource,
    client_source: Option<&LogSource>,
    client_cidrs: &[ipnet::Ipv4Net],
    ranges: &[(u64, u64)],
    mut config: AnalyzeConfig,
    opts: &DiagnoseOptions,
    progress: Progress<'_>,
) -> Result<(Analyzer, Vec<String>), LiveError> {
    let scope = |s: u64, e: u64, src: &LogSource| QueryScope {
        log_groups: vec![src.log_group.clone()],
        start: s,
        end: e,
        format: src.format.clone(),
    };
    let build = |r: Result<InsightsQuery, insights::QueryError>| {
        r.map_err(|e| Error::InvalidRequest { operation: crate::actions::START_QUERY, message: e.to_string() })
    };
    // 1. Rank destinations by distinct NAT ports in each range.
    let ranking: Vec<InsightsQuery> = ranges
        .iter()
        .map(|&(s, e)| build(insights::top_destinations(target, &scope(s, e, source), 1000)))
        .collect::<Result<_, _>>()?;
    progress(&format!("Logs Insights: ranking destinations in {} range(s) of {}", ranges.len(), source.log_group));
    let ranked = join_all(ranking.iter().map(|q| runner.run(q))).await;
    let mut ports: BTreeMap<Destination, u64> = BTreeMap::new();
    for r in ranked {
        for row in &r?.rows {
            if let Some(d) = destination_of(row, "dstAddr", "dstPort", "protocol") {
                let n = field_u64(row, "natPorts");
                let e = ports.entry(d).or_default();
                *e = (*e).max(n);
            }
        }
    }
    let mut hot: Vec<(Destination, u64)> = ports.into_iter().collect();
    hot.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let others = hot.len().saturating_sub(opts.hot);
    hot.truncate(opts.hot.max(1));
    let hot: Vec<Destination> = hot.into_iter().map(|(d, _)| d).collect();
    let mut notes = Vec::new();
    if others > 0 {
        notes.push(format!(
            "{others} quieter destination(s) were ranked by Logs Insights but not estimated; the {} busiest were",
            hot.len()
        ));
    }
    if hot.is_empty() {
        // Nothing to fetch; the empty analyzer reports NoRecords and diagnose falls back to the metrics.
        return Ok((Analyzer::new(config), notes));
    }

    // 2. Every NAT → destination record of the hot destinations, and their sources, concurrently.
    let flows: Vec<InsightsQuery> = ranges
        .iter()
        .map(|&(s, e)| build(insights::destination_flows(target, &hot, &scope(s, e, source))))
        .collect::<Result<_, _>>()?;
    let view = if source.format.has(&Field::PktDstAddr) {
        Some((SourceView::NatPktDstaddr, source, AttributionMethod::PktDstaddr))
    } else {
        client_source.map(|c| (SourceView::ClientInterfaces, c, AttributionMethod::ClientInterfaces))
    };
    let mut source_queries: Vec<(Destination, InsightsQuery)> = Vec::new();
    if let Some((v, src, _)) = view {
        // Through the clients' own logs, only the subnets routed here count as clients: a VPC-level
        // log also holds other NAT gateways' egress and clients routed elsewhere.
        let mut clients = target.clone();
        if v == SourceView::ClientInterfaces && !client_cidrs.is_empty() {
            clients.vpc_cidrs = client_cidrs.to_vec();
        }
        for d in &hot {
            for &(s, e) in ranges {
                source_queries.push((*d, build(insights::top_sources(&clients, d, v, &scope(s, e, src), 50))?));
            }
        }
    }
    progress(&format!(
        "Logs Insights: fetching the records of {} destination(s) and their sources ({} queries)",
        hot.len(),
        flows.len() + source_queries.len()
    ));
    let (flow_rows, source_rows) = join(
        join_all(flows.iter().map(|q| runner.run_all_rows(q))),
        join_all(source_queries.iter().map(|(_, q)| runner.run(q))),
    )
    .await;
    let sources = match view {
        None => None,
        Some((_, _, method)) => {
            let mut by_dest: BTreeMap<Destination, BTreeMap<IpAddr, (u64, u64)>> = BTreeMap::new();
            for ((d, _), r) in source_queries.iter().zip(source_rows) {
                let m = by_dest.entry(*d).or_default();
                for row in &r?.rows {
                    if let Some(ip) = QueryResults::field(row, "srcAddr").and_then(|v| v.parse().ok()) {
                        let e = m.entry(ip).or_default();
                        e.0 += field_u64(row, "connections");
                        e.1 += field_u64(row, "bytes");
                    }
                }
            }
            let note = (method == AttributionMethod::ClientInterfaces).then(|| {
                "Attributed from the clients' own flow logs: clients without flow logs are not counted.".to_owned()
            });
            Some(CountedSources {
                attribution: Attribution { method, note },
                by_destination: by_dest
                    .into_iter()
                    .map(|(d, m)| {
                        let list = m
                            .into_iter()
                            .map(|(address, (connections, bytes))| SourceReport { address, connections, bytes })
                            .collect();
                        (d, list)
                    })
                    .collect(),
            })
        }
    };
    if let (Some(s), Some(live)) = (sources, config.live.as_mut()) {
        live.sources = Some(s);
    }
    let mut analyzer = Analyzer::new(config);
    for (q, rows) in flows.iter().zip(flow_rows) {
        let rows = rows?;
        if rows.partial {
            notes.push(format!(
                "Logs Insights returned its row limit for a single second at {}: some records of that second are missing",
                Timestamp(q.start)
            ));
        }
        if let Some((format, lines)) = insights::rows_as_lines(&rows.rows) {
            push_lines(&mut analyzer, format!("{} (Logs Insights)", source.log_group), &format, &lines.join("\n"));
        }
    }
    Ok((analyzer, notes))
}

async fn via_filter(
    api: &dyn AwsApi,
    source: &LogSource,
    eni: &str,
    ranges: &[(u64, u64)],
    config: AnalyzeConfig,
    opts: &DiagnoseOptions,
    progress: Progress<'_>,
) -> Result<(Analyzer, u64, Vec<String>), LiveError> {
    let span: u64 = ranges.iter().map(|(s, e)| e - s + 1).sum();
    progress(&format!(
        "FilterLogEvents: pulling up to {} events of {eni} from {} ({} min of logs)",
        natgw_core::analyze::thousands(opts.max_events as u64),
        source.log_group,
        span / 60
    ));
    let mut analyzer = Analyzer::new(config);
    let mut pulled = 0u64;
    let mut notes = Vec::new();
    let streams = StreamSelector::Prefix(format!("{eni}-"));
    for &(s, e) in ranges {
        let left = opts.max_events.saturating_sub(pulled as usize);
        if left == 0 {
            break;
        }
        let events = api.filter_log_events(&source.log_group, &streams, s, e, left).await?;
        pulled += events.events.len() as u64;
        if events.truncated {
            notes.push(format!(
                "Stopped after {} log events (--max-events): the window's estimate is a lower bound",
                natgw_core::analyze::thousands(pulled)
            ));
        }
        let text: Vec<&str> = events.events.iter().map(|ev| ev.message.as_str()).collect();
        push_lines(&mut analyzer, format!("{}:{eni}", source.log_group), &source.format, &text.join("\n"));
    }
    progress(&format!("FilterLogEvents: {} events", natgw_core::analyze::thousands(pulled)));
    Ok((analyzer, pulled, notes))
}

fn field_u64(row: &[(String, String)], name: &str) -> u64 {
    QueryResults::field(row, name).and_then(|v| v.parse::<f64>().ok()).map_or(0, |v| v.max(0.0) as u64)
}

fn destination_of(row: &[(String, String)], addr: &str, port: &str, proto: &str) -> Option<Destination> {
    Some(Destination {
        address: QueryResults::field(row, addr)?.parse().ok()?,
        port: QueryResults::field(row, port)?.parse().ok()?,
        protocol: Protocol(QueryResults::field(row, proto)?.parse().ok()?),
    })
}

/// One NAT gateway in a fleet scan.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GatewayHealth {
    pub region: Option<String>,
    pub id: String,
    pub name: Option<String>,
    pub state: String,
    pub vpc_id: String,
    pub addresses: usize,
    /// ErrorPortAllocation summed over the window.
    pub errors: u64,
    /// Minutes with errors.
    pub error_minutes: u64,
    pub first_error_at: Option<Timestamp>,
    /// Peak of ActiveConnectionCount (all destinations together).
    pub peak_active_connections: Option<u64>,
    /// The metric read failed (access denied, throttled): why.
    pub error: Option<String>,
}

/// Every NAT gateway of the adapter's region with its errors and peak connections over
/// `[start, end)`, worst first; at most `concurrency` metric reads at once.
pub async fn scan(api: &dyn AwsApi, start: u64, end: u64, concurrency: usize) -> Result<Vec<GatewayHealth>, Error> {
    let gateways = api.list_nat_gateways().await?;
    let slots = Semaphore::new(concurrency.max(1));
    let queries =
        [MetricQuery::new("ErrorPortAllocation", "Sum"), MetricQuery::new("ActiveConnectionCount", "Maximum")];
    let period = period_for(start, end);
    let reads = join_all(gateways.iter().map(|g| async {
        let _slot = slots.acquire().await;
        api.get_metric_data(&g.id, &queries, start, end, period).await
    }))
    .await;
    let region = api.region();
    let mut out: Vec<GatewayHealth> = gateways
        .into_iter()
        .zip(reads)
        .map(|(g, r)| {
            let mut h = GatewayHealth {
                region: region.clone(),
                addresses: g.addresses.len(),
                id: g.id,
                name: g.name,
                state: g.state,
                vpc_id: g.vpc_id,
                errors: 0,
                error_minutes: 0,
                first_error_at: None,
                peak_active_connections: None,
                error: None,
            };
            match r {
                Ok(series) => {
                    if let Some(s) = metrics::error_series(&series) {
                        let hot: Vec<&(u64, f64)> = s.points.iter().filter(|p| p.1 > 0.0).collect();
                        h.errors = hot.iter().map(|p| p.1.round() as u64).sum();
                        h.error_minutes = hot.len() as u64 * u64::from(period) / 60;
                        h.first_error_at = hot.iter().map(|p| Timestamp(p.0)).min();
                    }
                    h.peak_active_connections = series
                        .iter()
                        .find(|s| s.metric == "ActiveConnectionCount")
                        .filter(|s| !s.points.is_empty())
                        .map(|s| MetricSummary::of(s).max as u64);
                }
                Err(e) => h.error = Some(e.to_string()),
            }
            h
        })
        .collect();
    worst_first(&mut out);
    Ok(out)
}

/// Most errors first, then the highest peak of active connections, then unreadable metrics, then by ID.
pub fn worst_first(rows: &mut [GatewayHealth]) {
    rows.sort_by(|a, b| {
        (b.errors, b.peak_active_connections, b.error.is_some())
            .cmp(&(a.errors, a.peak_active_connections, a.error.is_some()))
            .then(a.id.cmp(&b.id))
    });
}

/// The verdict of a scan: exhausted when any gateway had errors.
pub fn scan_verdict(rows: &[GatewayHealth]) -> Verdict {
    let bad: Vec<&GatewayHealth> = rows.iter().filter(|r| r.errors > 0).collect();
    match bad.first() {
        Some(worst) => Verdict {
            status: Status::Exhausted,
            summary: format!(
                "{} of {} NAT gateways had port allocation errors; worst {} with {}",
                bad.len(),
                rows.len(),
                worst.id,
                natgw_core::analyze::thousands(worst.errors)
            ),
        },
        None => Verdict {
            status: Status::Healthy,
            summary: format!("No port allocation errors on {} NAT gateway(s)", rows.len()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nat_ids_are_told_from_name_tags() {
        assert!(is_nat_id("nat-0123456789abcdef0") && is_nat_id("nat-0123abcd"));
        for name in ["nat-prod-1a", "nat-0123456789ABCDEF0", "nat-", "prod", "nat-0123456789abcdef"] {
            assert!(!is_nat_id(name), "{name}");
        }
    }

    #[test]
    fn the_look_back_may_start_before_the_metrics_range() {
        let w = ErrorWindow { start: Timestamp(10_000), end: Timestamp(10_120), errors: 5 };
        // Metrics from 9_900: the range still reaches 350 s + 60 s before the window.
        assert_eq!(error_ranges(&[w], 20_000, 60), [(9_590, 10_180)]);
        let worst = worst_windows(&[w, ErrorWindow { start: Timestamp(1_000), end: Timestamp(1_060), errors: 50 }], 1);
        assert_eq!(worst[0].errors, 50);
    }
}
