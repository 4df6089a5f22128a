//! Prerequisites of a diagnosis: do the NAT gateway's flow logs exist, reach CloudWatch Logs, carry
//! accepted traffic at 60-second aggregation, and hold the fields attribution needs? Each gap is a
//! [`Finding`] with the exact command that closes it; the usable log sources come out for the queries.
//! Pure: the flow logs and log groups come from `natgw-aws`.

use crate::findings::{RECOMMENDED_LOG_FORMAT, create_flow_log_command};
use crate::flowlog::{Field, LogFormat};
use crate::report::{Finding, Remedy, Severity};
use crate::topology::{
    AvailabilityMode, FlowLogDestinationType, FlowLogInfo, LogGroupInfo, NatGatewayInfo, RouteTableInfo, SubnetInfo,
    TrafficType,
};

/// Where a NAT interface's (or the clients') flow-log records can be read in CloudWatch Logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSource {
    pub flow_log_id: String,
    /// What the flow log is attached to (interface, subnet or VPC).
    pub resource_id: String,
    pub log_group: String,
    pub format: LogFormat,
    /// Seconds: 60 or 600.
    pub aggregation_secs: u32,
}

/// What the checks found.
#[derive(Debug, Clone, Default)]
pub struct Prerequisites {
    /// Gaps, most severe first.
    pub findings: Vec<Finding>,
    /// The best CloudWatch Logs source of the NAT interface's records, if any.
    pub nat_source: Option<LogSource>,
    /// A CloudWatch Logs source of client-side records (VPC- or client-subnet flow logs), if any.
    pub client_source: Option<LogSource>,
}

impl Prerequisites {
    /// Whether a diagnosis from flow logs can run at all.
    pub fn can_query(&self) -> bool {
        self.nat_source.is_some()
    }
}

/// What the checks look at.
#[derive(Debug, Clone, Copy)]
pub struct PrereqInput<'a> {
    pub nat: &'a NatGatewayInfo,
    /// Flow logs attached to the NAT's interfaces, its subnet, the VPC or the client subnets.
    pub flow_logs: &'a [FlowLogInfo],
    /// The VPC's route tables (to find the client subnets routed through this gateway).
    pub route_tables: &'a [RouteTableInfo],
    /// The VPC's subnets (their zones: clients in other zones than a zonal gateway's).
    pub subnets: &'a [SubnetInfo],
    /// The log groups the CloudWatch Logs flow logs name, as `DescribeLogGroups` answered (None: absent).
    pub log_groups: &'a [(String, Option<LogGroupInfo>)],
}

/// Subnets whose route tables send traffic to `nat_id`: explicit associations, and, when the main
/// table routes to it, every subnet of `subnets` that no table is explicitly associated with.
pub fn client_subnets(route_tables: &[RouteTableInfo], subnets: &[SubnetInfo], nat_id: &str) -> Vec<String> {
    let routes_here = |t: &&RouteTableInfo| t.nat_routes.iter().any(|r| r.nat_gateway_id == nat_id);
    let mut out: Vec<String> =
        route_tables.iter().filter(routes_here).flat_map(|t| t.subnet_ids.iter().cloned()).collect();
    if route_tables.iter().filter(routes_here).any(|t| t.main) {
        let explicit: Vec<&String> = route_tables.iter().flat_map(|t| &t.subnet_ids).collect();
        out.extend(subnets.iter().filter(|s| !explicit.contains(&&s.id)).map(|s| s.id.clone()));
    }
    out.sort();
    out.dedup();
    out
}

/// Whether the queries can read a format: the analysis' fields and `interface-id`, which every query
/// filters on.
fn queryable(format: &LogFormat) -> bool {
    crate::analyze::check_format(format).is_ok() && format.has(&Field::InterfaceId)
}

/// Runs every check.
pub fn check(input: &PrereqInput<'_>) -> Prerequisites {
    let nat = input.nat;
    let ifaces: Vec<String> = nat.interface_ids().iter().map(ToString::to_string).collect();
    let eni = ifaces.first().map(String::as_str);
    let covers_nat = |f: &FlowLogInfo| {
        ifaces.contains(&f.resource_id) || Some(&f.resource_id) == nat.subnet_id.as_ref() || f.resource_id == nat.vpc_id
    };
    let clients: Vec<String> = client_subnets(input.route_tables, input.subnets, &nat.id)
        .into_iter()
        .filter(|c| Some(c) != nat.subnet_id.as_ref())
        .collect();
    let covers_clients = |f: &FlowLogInfo| f.resource_id == nat.vpc_id || clients.contains(&f.resource_id);
    let group_exists = |g: &str| input.log_groups.iter().any(|(n, info)| n == g && info.is_some());
    let usable = |f: &FlowLogInfo| {
        f.destination_type == FlowLogDestinationType::CloudWatchLogs
            && f.traffic_type != TrafficType::Reject
            && f.log_group.as_deref().is_some_and(group_exists)
            && LogFormat::parse(&f.log_format).is_ok_and(|fmt| queryable(&fmt))
    };
    let source = |f: &FlowLogInfo| -> Option<LogSource> {
        Some(LogSource {
            flow_log_id: f.id.clone(),
            resource_id: f.resource_id.clone(),
            log_group: f.log_group.clone()?,
            format: LogFormat::parse(&f.log_format).ok()?,
            aggregation_secs: f.max_aggregation_interval,
        })
    };
    // Best first: delivering, 60-s windows, pkt-dstaddr, tcp-flags, interface-level.
    let rank = |f: &FlowLogInfo| {
        let fmt = LogFormat::parse(&f.log_format).unwrap_or_default();
        (
            f.deliver_status.as_deref() != Some("FAILED"),
            f.max_aggregation_interval <= 60,
            fmt.has(&Field::PktDstAddr),
            fmt.has(&Field::TcpFlags),
            ifaces.contains(&f.resource_id),
        )
    };
    let nat_logs: Vec<&FlowLogInfo> = input.flow_logs.iter().filter(|f| covers_nat(f)).collect();
    let best_nat = nat_logs.iter().copied().filter(|f| usable(f)).max_by_key(|f| rank(f));
    let best_client = input
        .flow_logs
        .iter()
        .filter(|f| covers_clients(f) && usable(f))
        .max_by_key(|f| (f.resource_id == nat.vpc_id, rank(f)));

    let mut findings = Vec::new();
    let fix_nat = || Remedy {
        summary: "Create a flow log on the NAT interface: all traffic, 60-second windows, to CloudWatch Logs, with \
                  tcp-flags and pkt-dstaddr"
            .into(),
        command: Some(create_flow_log_command(eni)),
    };
    let mut push = |id: &str, severity: Severity, summary: String, remedies: Vec<Remedy>| {
        findings.push(Finding { id: id.into(), severity, summary, destination: None, remedies });
    };

    if nat_logs.is_empty() {
        push(
            "no-flow-logs",
            Severity::Critical,
            format!(
                "No flow log covers the NAT gateway's interface {} (nor its subnet or VPC {}): connections cannot be \
                 counted per destination",
                eni.unwrap_or("(unknown)"),
                nat.vpc_id
            ),
            vec![fix_nat()],
        );
    } else if !nat_logs.iter().any(|f| f.destination_type == FlowLogDestinationType::CloudWatchLogs) {
        let s3: Vec<&str> = nat_logs.iter().filter_map(|f| f.destination.as_deref()).collect();
        push(
            "flow-logs-s3-only",
            Severity::Warning,
            format!(
                "The NAT interface's flow logs go only to {} ({}): Logs Insights cannot query them",
                if nat_logs.iter().all(|f| f.destination_type == FlowLogDestinationType::S3) {
                    "S3"
                } else {
                    "S3 or Firehose"
                },
                s3.join(", ")
            ),
            vec![
                fix_nat(),
                Remedy {
                    summary: "Or download the window's files and analyse them on this machine".into(),
                    command: Some(format!(
                        "aws s3 sync {}/AWSLogs/ ./flow-logs/ --exclude '*' --include '*{}*' && aws-natgw analyze \
                         ./flow-logs/**/*.log.gz",
                        s3.first().map(|a| a.replace("arn:aws:s3:::", "s3://")).unwrap_or("s3://<bucket>".into()),
                        eni.unwrap_or("<nat-eni-id>")
                    )),
                },
            ],
        );
    }
    for f in nat_logs.iter().filter(|f| f.destination_type == FlowLogDestinationType::CloudWatchLogs) {
        if !LogFormat::parse(&f.log_format).is_ok_and(|fmt| queryable(&fmt)) {
            push(
                "flow-log-format-unusable",
                Severity::Critical,
                format!(
                    "Flow log {}'s format lacks fields natgw needs (srcaddr, dstaddr, srcport, dstport, protocol, \
                     start, end and interface-id): {}",
                    f.id, f.log_format
                ),
                vec![fix_nat()],
            );
        }
    }
    let mut missing_groups: Vec<&str> = Vec::new();
    for f in input.flow_logs.iter().filter(|f| covers_nat(f) || covers_clients(f)) {
        if f.destination_type == FlowLogDestinationType::CloudWatchLogs
            && let Some(g) = f.log_group.as_deref()
            && !group_exists(g)
            && !missing_groups.contains(&g)
        {
            missing_groups.push(g);
            push(
                "log-group-missing",
                Severity::Critical,
                format!("Flow log {} delivers to log group {g}, which does not exist", f.id),
                vec![Remedy {
                    summary: "Create the log group (the flow log's role must be allowed to write to it)".into(),
                    command: Some(format!("aws logs create-log-group --log-group-name {g}")),
                }],
            );
        }
        if f.deliver_status.as_deref() == Some("FAILED") && covers_nat(f) {
            push(
                "flow-log-delivery-failing",
                Severity::Critical,
                format!(
                    "Flow log {} fails to deliver{}",
                    f.id,
                    f.deliver_error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
                ),
                vec![Remedy {
                    summary: "Check the delivery role's trust policy and permissions (logs:CreateLogStream, \
                              logs:PutLogEvents, logs:DescribeLogStreams on the log group)"
                        .into(),
                    command: Some(format!("aws ec2 describe-flow-logs --flow-log-ids {}", f.id)),
                }],
            );
        }
    }
    if !nat_logs.is_empty() && nat_logs.iter().all(|f| f.traffic_type == TrafficType::Reject) {
        push(
            "flow-logs-reject-only",
            Severity::Critical,
            "The NAT interface's flow logs record only rejected traffic: the connections through the gateway are \
             accepted, so none is logged"
                .into(),
            vec![fix_nat()],
        );
    }
    if let Some(best) = best_nat {
        let fmt = LogFormat::parse(&best.log_format).unwrap_or_default();
        let replace = |why: &str| {
            let mut r = vec![Remedy {
                summary: format!("Create a flow log on the NAT interface {why} (a flow log cannot be changed)"),
                command: Some(create_flow_log_command(eni)),
            }];
            // Only the NAT interface's own log is ours to replace: a VPC or subnet log serves others too.
            if ifaces.contains(&best.resource_id) {
                r.push(Remedy {
                    summary: format!("Then delete the old one, {}", best.id),
                    command: Some(format!("aws ec2 delete-flow-logs --flow-log-ids {}", best.id)),
                });
            }
            r
        };
        if best.max_aggregation_interval > 60 {
            push(
                "flow-logs-600s",
                Severity::Warning,
                format!(
                    "Flow log {} aggregates over {} s: connection lives are blurred to 10-minute windows and ports \
                     reused inside a window merge, so estimates get wide",
                    best.id, best.max_aggregation_interval
                ),
                replace("with 60-second aggregation"),
            );
        }
        if !fmt.has(&Field::PktDstAddr) {
            let (severity, tail) = if best_client.is_some() {
                (Severity::Info, "; the clients' own flow logs are used instead")
            } else {
                (Severity::Warning, " and no flow log covers the clients' subnets, so connections cannot be attributed")
            };
            push(
                "no-pkt-dstaddr",
                severity,
                format!("The NAT interface's flow-log format has no pkt-dstaddr{tail}"),
                replace("in the recommended format"),
            );
        }
        if !fmt.has(&Field::TcpFlags) {
            push(
                "no-tcp-flags",
                Severity::Info,
                "The NAT interface's flow-log format has no tcp-flags: closed and abandoned connections are told \
                 apart from port reuse, which leaves a wider range"
                    .into(),
                replace("with tcp-flags"),
            );
        }
        if best_client.is_none() {
            push(
                "only-nat-interface-logged",
                Severity::Info,
                format!(
                    "Only the NAT gateway's side is logged: no flow log covers the VPC or the {} client subnet{} \
                     routed through it",
                    clients.len(),
                    if clients.len() == 1 { "" } else { "s" }
                ),
                vec![Remedy {
                    summary: "Log the whole VPC to see every client's own flows (attribution without pkt-dstaddr, \
                              cross-AZ clients)"
                        .into(),
                    command: Some(format!(
                        "aws ec2 create-flow-logs --resource-type VPC --resource-ids {} --traffic-type ALL \
                         --max-aggregation-interval 60 --log-destination-type cloud-watch-logs --log-group-name \
                         {} --deliver-logs-permission-arn arn:aws:iam::<account-id>:role/<flow-logs-role> \
                         --log-format '{RECOMMENDED_LOG_FORMAT}'",
                        nat.vpc_id,
                        best.log_group.as_deref().unwrap_or("/natgw/flow-logs")
                    )),
                }],
            );
        }
    }
    let zone_of = |id: &str| input.subnets.iter().find(|s| s.id == id).map(|s| s.availability_zone.as_str());
    if nat.availability_mode != AvailabilityMode::Regional
        && let Some(home) = nat.subnet_id.as_deref().and_then(zone_of)
    {
        let mut away: Vec<&str> = clients.iter().filter_map(|c| zone_of(c)).filter(|z| *z != home).collect();
        let n = away.len();
        away.sort_unstable();
        away.dedup();
        if n > 0 {
            push(
                "cross-az-clients",
                Severity::Info,
                format!(
                    "{n} client subnet{} in {} route through this gateway in {home}: they share its ports, pay \
                     cross-AZ data charges, and lose egress if {home} fails",
                    if n == 1 { "" } else { "s" },
                    away.join(", ")
                ),
                vec![Remedy {
                    summary: "Give each Availability Zone its own NAT gateway and route its subnets to it".into(),
                    command: Some(format!(
                        "aws ec2 create-nat-gateway --subnet-id <public-subnet-in-{}> --allocation-id <eipalloc-id> && \
                         aws ec2 replace-route --route-table-id <route-table-of-that-az> --destination-cidr-block \
                         0.0.0.0/0 --nat-gateway-id <new-nat-gateway-id>",
                        away[0]
                    )),
                }],
            );
        }
    }
    if nat.state != "available" {
        push(
            "nat-gateway-not-available",
            Severity::Info,
            format!("NAT gateway {} is {}", nat.id, nat.state),
            Vec::new(),
        );
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    Prerequisites { findings, nat_source: best_nat.and_then(&source), client_source: best_client.and_then(source) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{NatAddress, NatRoute, RouteDestination};

    const ENI: &str = "eni-0a1b2c3d4e5f60718";

    fn nat() -> NatGatewayInfo {
        crate::topology::tests::nat(vec![NatAddress {
            allocation_id: None,
            public_ip: None,
            private_ip: Some("10.0.0.7".parse().unwrap()),
            interface_id: Some(ENI.parse().unwrap()),
            is_primary: Some(true),
            status: None,
            availability_zone: None,
        }])
    }

    fn flow_log(id: &str, resource: &str, format: &str) -> FlowLogInfo {
        FlowLogInfo {
            id: id.into(),
            resource_id: resource.into(),
            traffic_type: TrafficType::All,
            destination_type: FlowLogDestinationType::CloudWatchLogs,
            log_group: Some("/vpc/flow".into()),
            destination: None,
            log_format: format.into(),
            max_aggregation_interval: 60,
            deliver_status: Some("SUCCESS".into()),
            deliver_error: None,
        }
    }

    fn tables() -> Vec<RouteTableInfo> {
        vec![RouteTableInfo {
            id: "rtb-private".into(),
            main: false,
            subnet_ids: vec!["subnet-a".into(), "subnet-b".into()],
            nat_routes: vec![NatRoute {
                destination: RouteDestination::Cidr("0.0.0.0/0".parse().unwrap()),
                nat_gateway_id: "nat-1".into(),
            }],
        }]
    }

    fn run(logs: &[FlowLogInfo], group_exists: bool) -> Prerequisites {
        let n = nat();
        let groups = vec![(
            "/vpc/flow".to_owned(),
            group_exists.then(|| LogGroupInfo {
                name: "/vpc/flow".into(),
                arn: None,
                stored_bytes: None,
                retention_days: None,
                class: None,
                created_ms: None,
            }),
        )];
        let zone =
            |id: &str, az: &str| SubnetInfo { id: id.into(), cidr: None, availability_zone: az.into(), az_id: None };
        let subnets = [zone("subnet-1", "eu-west-1a"), zone("subnet-a", "eu-west-1a"), zone("subnet-b", "eu-west-1b")];
        check(&PrereqInput {
            nat: &n,
            flow_logs: logs,
            route_tables: &tables(),
            subnets: &subnets,
            log_groups: &groups,
        })
    }

    fn ids(p: &Prerequisites) -> Vec<&str> {
        p.findings.iter().map(|f| f.id.as_str()).collect()
    }

    #[test]
    fn nothing_to_say_about_a_well_logged_gateway() {
        let p = run(
            &[flow_log("fl-nat", ENI, RECOMMENDED_LOG_FORMAT), flow_log("fl-vpc", "vpc-1", RECOMMENDED_LOG_FORMAT)],
            true,
        );
        assert_eq!(ids(&p), ["cross-az-clients"]);
        assert_eq!(
            p.findings[0].summary,
            "1 client subnet in eu-west-1b route through this gateway in eu-west-1a: they share its ports, pay \
             cross-AZ data charges, and lose egress if eu-west-1a fails"
        );
        let src = p.nat_source.unwrap();
        assert_eq!(
            (src.flow_log_id.as_str(), src.log_group.as_str(), src.aggregation_secs),
            ("fl-nat", "/vpc/flow", 60)
        );
        assert_eq!(p.client_source.unwrap().flow_log_id, "fl-vpc");
    }

    #[test]
    fn missing_flow_logs_are_critical_with_the_command_that_creates_one() {
        let p = run(&[], true);
        assert_eq!(ids(&p), ["no-flow-logs", "cross-az-clients"]);
        assert!(!p.can_query());
        let cmd = p.findings[0].remedies[0].command.as_deref().unwrap();
        assert!(cmd.starts_with(
            "aws ec2 create-flow-logs --resource-type NetworkInterface --resource-ids eni-0a1b2c3d4e5f60718"
        ));
        assert!(cmd.contains("--max-aggregation-interval 60") && cmd.contains("${pkt-dstaddr}"));
    }

    #[test]
    fn s3_only_and_reject_only_logs_cannot_be_queried() {
        let mut s3 = flow_log("fl-s3", ENI, RECOMMENDED_LOG_FORMAT);
        s3.destination_type = FlowLogDestinationType::S3;
        s3.log_group = None;
        s3.destination = Some("arn:aws:s3:::flow-bucket".into());
        let p = run(&[s3], true);
        assert_eq!(ids(&p), ["flow-logs-s3-only", "cross-az-clients"]);
        assert!(p.findings[0].remedies[1].command.as_deref().unwrap().contains("s3://flow-bucket/AWSLogs/"));
        assert!(!p.can_query());

        let mut reject = flow_log("fl-r", ENI, RECOMMENDED_LOG_FORMAT);
        reject.traffic_type = TrafficType::Reject;
        let p = run(&[reject], true);
        assert_eq!(ids(&p), ["flow-logs-reject-only", "cross-az-clients"]);
        assert!(!p.can_query());
    }

    #[test]
    fn weak_logs_are_usable_but_each_gap_is_named() {
        let mut old = flow_log("fl-old", ENI, crate::flowlog::DEFAULT_FORMAT);
        old.max_aggregation_interval = 600;
        let p = run(&[old], true);
        assert_eq!(
            ids(&p),
            ["flow-logs-600s", "no-pkt-dstaddr", "no-tcp-flags", "only-nat-interface-logged", "cross-az-clients"]
        );
        assert_eq!(p.findings[1].severity, Severity::Warning);
        assert!(p.findings[0].remedies[1].command.as_deref() == Some("aws ec2 delete-flow-logs --flow-log-ids fl-old"));
        assert!(p.findings[3].summary.contains("2 client subnets"));
        assert!(p.can_query());
    }

    #[test]
    fn delivery_failures_and_missing_groups_are_critical() {
        let mut failing = flow_log("fl-f", ENI, RECOMMENDED_LOG_FORMAT);
        failing.deliver_status = Some("FAILED".into());
        failing.deliver_error = Some("Access error".into());
        let p = run(&[failing, flow_log("fl-vpc", "vpc-1", RECOMMENDED_LOG_FORMAT)], false);
        assert_eq!(ids(&p), ["log-group-missing", "flow-log-delivery-failing", "cross-az-clients"]);
        assert!(p.findings[1].summary.ends_with("fails to deliver: Access error"));
        assert!(!p.can_query());
    }

    #[test]
    fn client_subnets_come_from_routes_to_this_gateway() {
        assert_eq!(client_subnets(&tables(), &[], "nat-1"), ["subnet-a", "subnet-b"]);
        assert!(client_subnets(&tables(), &[], "nat-other").is_empty());
        // The main table's implicit subnets, when the main table routes here.
        let mut main = tables();
        main[0].main = true;
        main[0].subnet_ids.clear();
        let zone = |id: &str| SubnetInfo { id: id.into(), cidr: None, availability_zone: "a".into(), az_id: None };
        main.push(RouteTableInfo {
            id: "rtb-2".into(),
            main: false,
            subnet_ids: vec!["subnet-x".into()],
            nat_routes: vec![],
        });
        assert_eq!(client_subnets(&main, &[zone("subnet-x"), zone("subnet-y")], "nat-1"), ["subnet-y"]);
    }
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn queries_need_the_interface_id_too() {
        assert!(queryable(&LogFormat::default()));
        assert!(!queryable(
            &LogFormat::parse("${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${start} ${end}").unwrap()
        ));
    }
}
