//! CloudWatch Logs Insights query builders. Each returns a value (query text, log groups, time range)
//! that `natgw-aws` runs and the CLI prints for copy-paste. Inputs are typed (`Ipv4Addr`, `Ipv4Net`,
//! [`InterfaceId`], [`Destination`]) and rendered by their `Display`, so no user text is spliced in.
//!
//! Versus the knowledge-center procedure: addresses are compared exactly (`=`, `in`) and VPC ranges
//! with `isIpv4InSubnet` for every VPC block, never with substring `like`; only the NAT interface's
//! egress legs are ranked (`interfaceId` and the NAT's own addresses as `srcAddr`); destinations are
//! ranked by distinct NAT ports (connections), not by record counts; and sources are found through
//! `pkt-dstaddr` or the clients' own interfaces, because a NAT interface's client legs never carry
//! the real destination in `dstAddr`.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Serialize;

use crate::flowlog::{Field, LogFormat};
use crate::net::{Destination, InterfaceId};

/// Rows one `GetQueryResults` call can return, and the most `limit` takes.
pub const MAX_ROWS: u32 = 10_000;

/// A query ready to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InsightsQuery {
    /// Which question it answers.
    pub kind: QueryKind,
    pub text: String,
    pub log_groups: Vec<String>,
    /// Unix seconds, inclusive.
    pub start: u64,
    /// Unix seconds, inclusive.
    pub end: u64,
    /// The destinations it is restricted to (destination-flows, top-sources), for reports and errors.
    pub destinations: Vec<Destination>,
}

/// The questions natgw asks Logs Insights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum QueryKind {
    TopDestinations,
    PortsPerMinute,
    DestinationFlows,
    TopSources,
}

impl QueryKind {
    /// The kebab-case name (`top-destinations`), as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            QueryKind::TopDestinations => "top-destinations",
            QueryKind::PortsPerMinute => "ports-per-minute",
            QueryKind::DestinationFlows => "destination-flows",
            QueryKind::TopSources => "top-sources",
        }
    }
}

/// The NAT gateway as the queries see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatTarget {
    pub interface: InterfaceId,
    /// Private IPv4 addresses, primary first.
    pub addresses: Vec<Ipv4Addr>,
    /// Every VPC CIDR block (secondary blocks too).
    pub vpc_cidrs: Vec<Ipv4Net>,
}

/// What every query needs besides its own inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryScope {
    pub log_groups: Vec<String>,
    pub start: u64,
    pub end: u64,
    /// The flow log's format: the default one is discovered by Insights, any other is parsed.
    pub format: LogFormat,
}

/// Why a query cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("the NAT gateway has no IPv4 address to filter on")]
    NoNatAddress,
    #[error("the log format lacks {0}, which this query needs")]
    MissingField(&'static str),
    #[error("no destination given")]
    NoDestination,
    #[error("the time range ends ({end}) before it starts ({start})")]
    BadRange { start: u64, end: u64 },
}

/// The `parse @message "* * …" as …` clause for a custom format, or nothing for the default format
/// (whose fields Insights discovers by itself).
pub fn parse_clause(format: &LogFormat) -> Option<String> {
    if format.is_default() {
        return None;
    }
    let globs = vec!["*"; format.fields().len()].join(" ");
    let names: Vec<String> = format.fields().iter().map(Field::insights_name).collect();
    Some(format!("parse @message \"{globs}\" as {}", names.join(", ")))
}

fn name(f: &Field) -> String {
    f.insights_name()
}

fn require(format: &LogFormat, fields: &[Field]) -> Result<(), QueryError> {
    for f in fields {
        if !format.has(f) {
            return Err(QueryError::MissingField(match f {
                Field::InterfaceId => "interface-id",
                Field::SrcAddr => "srcaddr",
                Field::DstAddr => "dstaddr",
                Field::SrcPort => "srcport",
                Field::DstPort => "dstport",
                Field::Protocol => "protocol",
                Field::Start => "start",
                Field::End => "end",
                Field::PktDstAddr => "pkt-dstaddr",
                _ => "a required field",
            }));
        }
    }
    Ok(())
}

/// ` and action = 'ACCEPT'` when the format has the action: the analysis counts accepted records only
/// (a rejected packet never reached the NAT gateway, or never left it).
fn accepted(format: &LogFormat) -> String {
    if format.has(&Field::Action) { format!(" and {} = 'ACCEPT'", name(&Field::Action)) } else { String::new() }
}

fn ip_list(addrs: &[Ipv4Addr]) -> String {
    addrs.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(", ")
}

/// `interfaceId = 'eni-…' and srcAddr in [NAT] and action = 'ACCEPT' and dstAddr outside every VPC block`.
fn nat_egress_filter(nat: &NatTarget, format: &LogFormat) -> String {
    let mut f = format!(
        "{} = '{}' and {} in [{}]",
        name(&Field::InterfaceId),
        nat.interface,
        name(&Field::SrcAddr),
        ip_list(&nat.addresses)
    );
    f.push_str(&accepted(format));
    for cidr in &nat.vpc_cidrs {
        let _ = write!(f, " and not isIpv4InSubnet({}, '{}')", name(&Field::DstAddr), cidr.trunc());
    }
    f
}

fn nat_port_key(nat: &NatTarget) -> String {
    // With several NAT addresses, one port number can be in use on each: count address:port.
    if nat.addresses.len() > 1 {
        format!("concat({}, ':', {})", name(&Field::SrcAddr), name(&Field::SrcPort))
    } else {
        name(&Field::SrcPort)
    }
}

fn assemble(kind: QueryKind, scope: &QueryScope, body: &[String]) -> Result<InsightsQuery, QueryError> {
    if scope.end < scope.start {
        return Err(QueryError::BadRange { start: scope.start, end: scope.end });
    }
    let mut lines: Vec<String> = parse_clause(&scope.format).into_iter().collect();
    lines.extend(body.iter().cloned());
    Ok(InsightsQuery {
        kind,
        text: lines.join("\n| "),
        log_groups: scope.log_groups.clone(),
        start: scope.start,
        end: scope.end,
        destinations: Vec::new(),
    })
}

const NAT_FIELDS: &[Field] =
    &[Field::InterfaceId, Field::SrcAddr, Field::DstAddr, Field::SrcPort, Field::DstPort, Field::Protocol];

/// A `stats` query over the NAT interface's egress legs, grouped by unique destination (and `extra_group`).
fn nat_egress_stats(
    kind: QueryKind,
    nat: &NatTarget,
    scope: &QueryScope,
    aggregates: &str,
    extra_group: &str,
    sort: &str,
    limit: u32,
) -> Result<InsightsQuery, QueryError> {
    if nat.addresses.is_empty() {
        return Err(QueryError::NoNatAddress);
    }
    require(&scope.format, NAT_FIELDS)?;
    let by = format!("{}, {}, {}{extra_group}", name(&Field::DstAddr), name(&Field::DstPort), name(&Field::Protocol));
    assemble(
        kind,
        scope,
        &[
            format!("filter {}", nat_egress_filter(nat, &scope.format)),
            format!("stats count_distinct({}) as natPorts{aggregates} by {by}", nat_port_key(nat)),
            format!("sort {sort}"),
            format!("limit {}", limit.clamp(1, MAX_ROWS)),
        ],
    )
}

/// Query 1: the NAT gateway's top unique destinations over the range, by distinct NAT ports, with
/// records and bytes.
pub fn top_destinations(nat: &NatTarget, scope: &QueryScope, limit: u32) -> Result<InsightsQuery, QueryError> {
    let mut aggregates = ", count(*) as records".to_owned();
    if scope.format.has(&Field::Bytes) {
        aggregates += &format!(", sum({}) as bytes", name(&Field::Bytes));
    }
    nat_egress_stats(QueryKind::TopDestinations, nat, scope, &aggregates, "", "natPorts desc, records desc", limit)
}

/// Query 2a: distinct NAT ports per destination and 1-minute bin: ranks destinations and finds the
/// minutes to look at closely.
pub fn ports_per_minute(nat: &NatTarget, scope: &QueryScope, limit: u32) -> Result<InsightsQuery, QueryError> {
    nat_egress_stats(QueryKind::PortsPerMinute, nat, scope, "", ", bin(1m) as minute", "natPorts desc", limit)
}

/// Query 2b: the NAT → destination records of chosen destinations, each with its NAT address and
/// port, first/last packet times, bytes and (when the format has them) TCP flags: the estimator's
/// input, exactly as the local analyzer reads it. Records, not `stats … by` flow: TCP flags are OR-ed
/// per record and cannot be aggregated, and a NAT port reused within the range would merge.
pub fn destination_flows(
    nat: &NatTarget,
    destinations: &[Destination],
    scope: &QueryScope,
) -> Result<InsightsQuery, QueryError> {
    if nat.addresses.is_empty() {
        return Err(QueryError::NoNatAddress);
    }
    if destinations.is_empty() {
        return Err(QueryError::NoDestination);
    }
    require(&scope.format, &[NAT_FIELDS, &[Field::Start, Field::End]].concat())?;
    let one = |d: &Destination| {
        format!(
            "({} = '{}' and {} = {} and {} = {})",
            name(&Field::DstAddr),
            d.address,
            name(&Field::DstPort),
            d.port,
            name(&Field::Protocol),
            d.protocol.0
        )
    };
    let dests: Vec<String> = destinations.iter().map(one).collect();
    let mut fields =
        vec![Field::SrcAddr, Field::SrcPort, Field::DstAddr, Field::DstPort, Field::Protocol, Field::Start, Field::End];
    for f in [Field::Packets, Field::Bytes, Field::TcpFlags] {
        if scope.format.has(&f) {
            fields.push(f);
        }
    }
    let fields: Vec<String> = fields.iter().map(name).collect();
    let accept = accepted(&scope.format);
    let mut q = assemble(
        QueryKind::DestinationFlows,
        scope,
        &[
            format!(
                "filter {} = '{}' and {} in [{}]{accept} and ({})",
                name(&Field::InterfaceId),
                nat.interface,
                name(&Field::SrcAddr),
                ip_list(&nat.addresses),
                dests.join(" or ")
            ),
            format!("fields {}", fields.join(", ")),
            format!("sort {} asc", name(&Field::Start)),
            format!("limit {MAX_ROWS}"),
        ],
    )?;
    q.destinations = destinations.to_vec();
    Ok(q)
}

/// The rows of a `fields …` query ([`destination_flows`]) as flow-log lines, with the format that
/// reads them: one column per Insights field name seen (Insights leaves empty fields out of a row),
/// `-` where a row lacks it. The local analyzer's parser then reads them like lines of a file, so
/// records have one code path. `None` when there are no rows.
pub fn rows_as_lines(rows: &[Vec<(String, String)>]) -> Option<(LogFormat, Vec<String>)> {
    let mut names: Vec<&str> = Vec::new();
    for row in rows {
        for (n, _) in row {
            if !n.starts_with('@') && !names.contains(&n.as_str()) {
                names.push(n);
            }
        }
    }
    let format = LogFormat::from_fields(names.iter().map(|n| Field::from_insights_name(n))).ok()?;
    let lines = rows
        .iter()
        .map(|row| {
            let cols: Vec<&str> = names
                .iter()
                .map(|n| match row.iter().find(|(f, _)| f == n).map(|(_, v)| v.trim()) {
                    Some(v) if !v.is_empty() && !v.contains(char::is_whitespace) => v,
                    _ => "-",
                })
                .collect();
            cols.join(" ")
        })
        .collect();
    Some((format, lines))
}

/// Where the source clients of a destination can be seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceView {
    /// The NAT interface's client legs, whose `pkt-dstaddr` is the real destination.
    NatPktDstaddr,
    /// The clients' own interfaces (VPC- or subnet-level flow logs).
    ClientInterfaces,
}

/// Query 3: the top source clients of one destination, by distinct client flows (client ports),
/// with bytes.
pub fn top_sources(
    nat: &NatTarget,
    destination: &Destination,
    view: SourceView,
    scope: &QueryScope,
    limit: u32,
) -> Result<InsightsQuery, QueryError> {
    let in_vpc = |field: &Field| -> String {
        let parts: Vec<String> =
            nat.vpc_cidrs.iter().map(|c| format!("isIpv4InSubnet({}, '{}')", name(field), c.trunc())).collect();
        if parts.is_empty() { String::new() } else { format!(" and ({})", parts.join(" or ")) }
    };
    let filter = match view {
        SourceView::NatPktDstaddr => {
            require(
                &scope.format,
                &[
                    Field::InterfaceId,
                    Field::SrcAddr,
                    Field::DstAddr,
                    Field::PktDstAddr,
                    Field::SrcPort,
                    Field::DstPort,
                    Field::Protocol,
                ],
            )?;
            let primary = nat.addresses.first().ok_or(QueryError::NoNatAddress)?;
            format!(
                "filter {} = '{}' and {} = '{primary}' and {} = '{}' and {} = {} and {} = {}{}{}",
                name(&Field::InterfaceId),
                nat.interface,
                name(&Field::DstAddr),
                name(&Field::PktDstAddr),
                destination.address,
                name(&Field::DstPort),
                destination.port,
                name(&Field::Protocol),
                destination.protocol.0,
                accepted(&scope.format),
                in_vpc(&Field::SrcAddr)
            )
        }
        SourceView::ClientInterfaces => {
            require(
                &scope.format,
                &[Field::InterfaceId, Field::SrcAddr, Field::DstAddr, Field::SrcPort, Field::DstPort, Field::Protocol],
            )?;
            format!(
                "filter {} != '{}' and {} = '{}' and {} = {} and {} = {}{}{}",
                name(&Field::InterfaceId),
                nat.interface,
                name(&Field::DstAddr),
                destination.address,
                name(&Field::DstPort),
                destination.port,
                name(&Field::Protocol),
                destination.protocol.0,
                accepted(&scope.format),
                in_vpc(&Field::SrcAddr)
            )
        }
    };
    let bytes = if scope.format.has(&Field::Bytes) {
        format!(", sum({}) as bytes", name(&Field::Bytes))
    } else {
        String::new()
    };
    let mut q = assemble(
        QueryKind::TopSources,
        scope,
        &[
            filter,
            format!(
                "stats count_distinct({}) as connections{bytes} by {}",
                name(&Field::SrcPort),
                name(&Field::SrcAddr)
            ),
            "sort connections desc".into(),
            format!("limit {}", limit.clamp(1, MAX_ROWS)),
        ],
    )?;
    q.destinations = vec![*destination];
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Protocol;

    fn nat(addrs: &[&str]) -> NatTarget {
        NatTarget {
            interface: "eni-0a1b2c3d4e5f60718".parse().unwrap(),
            addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            vpc_cidrs: vec!["10.0.0.0/16".parse().unwrap(), "100.64.0.0/16".parse().unwrap()],
        }
    }

    fn scope(format: &str) -> QueryScope {
        QueryScope {
            log_groups: vec!["/vpc/flow-logs".into()],
            start: 1_795_690_000,
            end: 1_795_693_600,
            format: LogFormat::parse(format).unwrap(),
        }
    }

    const CUSTOM: &str = crate::findings::RECOMMENDED_LOG_FORMAT;

    fn dest() -> Destination {
        Destination { address: "52.216.8.10".parse().unwrap(), port: 443, protocol: Protocol::TCP }
    }

    #[test]
    fn top_destinations_default_format() {
        let q = top_destinations(&nat(&["10.0.0.7"]), &scope(crate::flowlog::DEFAULT_FORMAT), 50).unwrap();
        assert_eq!(q.log_groups, vec!["/vpc/flow-logs"]);
        insta::assert_snapshot!(q.text);
    }

    #[test]
    fn top_destinations_custom_format_two_addresses() {
        insta::assert_snapshot!(top_destinations(&nat(&["10.0.0.7", "10.0.0.8"]), &scope(CUSTOM), 50).unwrap().text);
    }

    #[test]
    fn ports_per_minute_default_format() {
        insta::assert_snapshot!(
            ports_per_minute(&nat(&["10.0.0.7"]), &scope(crate::flowlog::DEFAULT_FORMAT), 1000).unwrap().text
        );
    }

    #[test]
    fn destination_flows_custom_format() {
        let d2 = Destination { address: "198.51.100.53".parse().unwrap(), port: 53, protocol: Protocol::UDP };
        insta::assert_snapshot!(destination_flows(&nat(&["10.0.0.7"]), &[dest(), d2], &scope(CUSTOM)).unwrap().text);
    }

    #[test]
    fn top_sources_through_pkt_dstaddr() {
        insta::assert_snapshot!(
            top_sources(&nat(&["10.0.0.7"]), &dest(), SourceView::NatPktDstaddr, &scope(CUSTOM), 10).unwrap().text
        );
    }

    #[test]
    fn top_sources_from_client_interfaces() {
        let q = top_sources(
            &nat(&["10.0.0.7"]),
            &dest(),
            SourceView::ClientInterfaces,
            &scope(crate::flowlog::DEFAULT_FORMAT),
            10,
        )
        .unwrap();
        insta::assert_snapshot!(q.text);
    }

    #[test]
    fn refusals_name_the_problem() {
        let s = scope(crate::flowlog::DEFAULT_FORMAT);
        assert_eq!(
            top_sources(&nat(&["10.0.0.7"]), &dest(), SourceView::NatPktDstaddr, &s, 10),
            Err(QueryError::MissingField("pkt-dstaddr"))
        );
        assert_eq!(top_destinations(&nat(&[]), &s, 10), Err(QueryError::NoNatAddress));
        assert_eq!(destination_flows(&nat(&["10.0.0.7"]), &[], &s), Err(QueryError::NoDestination));
        let mut bad = s.clone();
        bad.end = 1;
        assert!(matches!(top_destinations(&nat(&["10.0.0.7"]), &bad, 10), Err(QueryError::BadRange { .. })));
        let no_iface = scope("${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol}");
        assert_eq!(top_destinations(&nat(&["10.0.0.7"]), &no_iface, 10), Err(QueryError::MissingField("interface-id")));
    }

    #[test]
    fn rows_become_lines_the_parser_reads() {
        let row = |cols: &[(&str, &str)]| cols.iter().map(|(f, v)| ((*f).to_owned(), (*v).to_owned())).collect();
        let rows: Vec<Vec<(String, String)>> = vec![
            row(&[("srcAddr", "10.0.0.7"), ("srcPort", "40001"), ("tcpFlags", "2"), ("@ptr", "x")]),
            row(&[("srcAddr", "10.0.0.7"), ("srcPort", "40002")]),
        ];
        let (format, lines) = rows_as_lines(&rows).unwrap();
        assert_eq!(format.to_string(), "${srcaddr} ${srcport} ${tcp-flags}");
        assert_eq!(lines, ["10.0.0.7 40001 2", "10.0.0.7 40002 -"]);
        assert_eq!(rows_as_lines(&[]), None);
    }

    #[test]
    fn parse_clause_for_custom_formats_only() {
        assert_eq!(parse_clause(&LogFormat::default()), None);
        let f = LogFormat::parse("${srcaddr} ${dstaddr} ${pkt-dstaddr} ${ecs-cluster-name}").unwrap();
        assert_eq!(
            parse_clause(&f).unwrap(),
            "parse @message \"* * * *\" as srcAddr, dstAddr, pktDstAddr, ecsClusterName"
        );
    }
}
