//! Finding rules: evidence in, findings out, each with a severity and a remedy plan with exact
//! commands where one exists. Shared by the local analyzer and the live path.

use std::net::IpAddr;

use crate::analyze::{OtherNat, thousands};
use crate::estimate::HoldModel;
use crate::limits::{CONNECTIONS_PER_ADDRESS, IDLE_TIMEOUT_SECS, Level, MAX_ADDRESSES, Thresholds, destination_limit};
use crate::prefixes::GatewayService;
use crate::report::{Attribution, AttributionMethod, BadLineReport, DestinationReport, Finding, Remedy, Severity};
use crate::topology::VpcEndpointInfo;

/// The flow-log format natgw recommends for a NAT gateway's interface: the default fields plus TCP
/// flags (closed vs abandoned connections), the packet addresses (the real destination of client legs,
/// for attribution) and the direction.
pub const RECOMMENDED_LOG_FORMAT: &str = "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status} ${tcp-flags} ${pkt-srcaddr} ${pkt-dstaddr} ${flow-direction}";

/// What the rules know beyond the destinations.
#[derive(Debug, Clone)]
pub struct FindingContext<'a> {
    pub nat_gateway_id: Option<&'a str>,
    pub nat_interface: Option<&'a str>,
    /// The NAT addresses analysed, the primary first.
    pub nat_addresses: &'a [IpAddr],
    /// How many of them the limit counts: those that carry connections (every one on the live path).
    pub counted_addresses: u32,
    pub vpc_id: Option<&'a str>,
    pub region: Option<&'a str>,
    pub thresholds: Thresholds,
    pub attribution: &'a Attribution,
    /// Dropped attempts that could not be pinned on a destination.
    pub unexplained_drops: u64,
    /// CloudWatch port allocation errors no destination in the logs explains (live path).
    pub unexplained_errors: u64,
    pub skipped_lines: u64,
    pub first_bad_line: Option<&'a BadLineReport>,
    /// The VPC's endpoints, when known (live path).
    pub endpoints: &'a [VpcEndpointInfo],
    /// Route tables of the subnets routed through the gateway, when known (live path).
    pub client_route_tables: &'a [String],
    /// Records read (lines skipped aside).
    pub records: u64,
    /// Other interfaces that look like a NAT gateway's, left out (when the gateway was inferred).
    pub other_nats: &'a [OtherNat],
    /// Other interfaces that send out of the VPC from NAT addresses in use here, busiest first.
    pub same_address_elsewhere: &'a [SameAddressElsewhere],
    /// NAT addresses given that carried no connection to any destination.
    pub unused_nat_addresses: &'a [UnusedAddress],
    /// Private addresses that send out of the VPC from the NAT gateway's interface but are not among
    /// its NAT addresses (an address of the gateway not given), with their records, busiest first.
    pub unlisted_nat_addresses: &'a [(IpAddr, u64)],
    /// Private addresses that send out of the VPC from a NAT port in records without an interface
    /// ID, are not among the NAT addresses analysed and are none of their clients: another address
    /// of the gateway, or an instance with its own way out. With their records.
    pub unlisted_without_interface: &'a [(IpAddr, u64)],
    /// NAT addresses were given, and no client inside the VPC sends to them on the interface
    /// analysed, as a NAT gateway's clients do (a client's address given as the gateway's, say).
    pub no_nat_clients: bool,
    /// Some record has pkt-dstaddr (client legs on the NAT interface can name their destination).
    pub pkt_dstaddr_logged: bool,
}

/// The remedy for an address that may be the gateway's but was not analysed: the command with it too.
fn analyse_too(ctx: &FindingContext<'_>, a: IpAddr) -> Remedy {
    Remedy {
        summary: format!("If {a} is the gateway's, analyse it too"),
        command: Some(format!(
            "aws-natgw analyze <files>{} --nat-ip {a}",
            ctx.nat_addresses.iter().map(|n| format!(" --nat-ip {n}")).collect::<String>()
        )),
    }
}

/// Another interface that sends out of the VPC from NAT addresses the interface analysed carries
/// connections from: the same private addresses on another gateway (another VPC's), or another
/// interface of a regional one. Its connections are not counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SameAddressElsewhere {
    pub interface: String,
    /// The addresses, in order.
    pub addresses: Vec<IpAddr>,
    /// Its records out of the VPC from them.
    pub records: u64,
}

/// A NAT address given that carries no connection on the interface analysed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusedAddress {
    pub address: IpAddr,
    /// Another interface it sends out of the VPC from, with those records (the most of them).
    pub elsewhere: Option<(String, u64)>,
}

impl FindingContext<'_> {
    /// How many NAT addresses the limit counts (at most 8).
    fn address_count(&self) -> u32 {
        self.counted_addresses
    }

    /// The NAT interface, as a sentence names it.
    fn interface_named(&self) -> String {
        self.nat_interface.map_or_else(|| "the NAT interface".to_owned(), |i| format!("interface {i}"))
    }

    /// "55,000 per destination", then "1 address": the limit the addresses analysed make.
    fn limit_and_addresses(&self) -> (String, String) {
        let n = self.address_count();
        (
            format!("{} per destination", thousands(destination_limit(n))),
            format!("{n} address{}", if n == 1 { "" } else { "es" }),
        )
    }
}

/// The command that creates a flow log on the NAT interface in the recommended format.
pub fn create_flow_log_command(interface: Option<&str>) -> String {
    format!(
        "aws ec2 create-flow-logs --resource-type NetworkInterface --resource-ids {} --traffic-type ALL \
         --max-aggregation-interval 60 --log-destination-type cloud-watch-logs --log-group-name /natgw/flow-logs \
         --deliver-logs-permission-arn arn:aws:iam::<account-id>:role/<flow-logs-role> --log-format '{}'",
        interface.unwrap_or("<nat-eni-id>"),
        RECOMMENDED_LOG_FORMAT
    )
}

/// Evaluates every rule; findings come out most severe first.
pub fn evaluate(rows: &[DestinationReport], ctx: &FindingContext<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for d in rows {
        if d.at_risk() {
            out.push(hot_destination(d, ctx));
        } else if idle_share(d) >= 0.3 && d.utilization >= 0.2 {
            out.push(Finding {
                id: "idle-connections".into(),
                severity: Severity::Info,
                summary: format!(
                    "{}: {:.0}% of connections go quiet without closing and hold their NAT port {IDLE_TIMEOUT_SECS} s",
                    d.display_destination(),
                    idle_share(d) * 100.0
                ),
                destination: Some(d.display_destination()),
                remedies: vec![close_idle_remedy()],
            });
        }
    }
    let hot = rows.iter().any(DestinationReport::at_risk);
    if ctx.attribution.method == AttributionMethod::Unavailable {
        let (summary, remedies) = if ctx.pkt_dstaddr_logged {
            // The format names destinations: the client legs go to other addresses than those analysed.
            (
                format!(
                    "Source clients cannot be named from these logs: no client leg on {} goes to the NAT addresses \
                     analysed ({}), though the records name their destinations (pkt-dstaddr); the attribution note \
                     says more",
                    ctx.interface_named(),
                    crate::analyze::addresses(ctx.nat_addresses),
                ),
                vec![Remedy {
                    summary: "Give every address of the gateway with --nat-ip, the primary among them (its clients \
                              send to it), or leave --nat-ip out to infer them"
                        .into(),
                    command: None,
                }],
            )
        } else {
            (
                "Source clients cannot be named from these logs: no client leg through the NAT gateway names its \
                 destination (the NAT interface's default-format records show the NAT's own address there; the \
                 attribution note says more)"
                    .into(),
                vec![
                    Remedy {
                        summary: "Log the NAT interface with pkt-dstaddr (and tcp-flags, 60-second aggregation)".into(),
                        command: Some(create_flow_log_command(ctx.nat_interface)),
                    },
                    Remedy {
                        summary:
                            "Or analyse the clients' own interface logs (subnet- or VPC-level flow logs) together \
                                  with the NAT's"
                                .into(),
                        command: None,
                    },
                ],
            )
        };
        out.push(Finding {
            id: "attribution-unavailable".into(),
            severity: if hot { Severity::Warning } else { Severity::Info },
            summary,
            destination: None,
            remedies,
        });
    }
    let uncertain = rows.iter().any(|d| {
        d.at_risk()
            && matches!(d.evidence.hold_model, HoldModel::PortReuse | HoldModel::Unknown)
            && d.peak_connections_range[1] > d.peak_connections_range[0] + d.peak_connections_range[0] / 5
    });
    if uncertain && ctx.attribution.method != AttributionMethod::Unavailable {
        out.push(Finding {
            id: "no-tcp-flags".into(),
            severity: Severity::Info,
            summary:
                "The log format has no tcp-flags: closed and abandoned connections were told apart from port reuse, \
                      which leaves a wide range"
                    .into(),
            destination: None,
            remedies: vec![Remedy {
                summary: "Add ${tcp-flags} to the NAT interface's flow-log format".into(),
                command: Some(create_flow_log_command(ctx.nat_interface)),
            }],
        });
    }
    if ctx.unexplained_drops > 0 {
        out.push(Finding {
            id: "unexplained-drops".into(),
            severity: Severity::Warning,
            summary: format!(
                "{} connection attempts through the NAT gateway got no NAT-side leg, but no destination near its limit \
                 explains them; check the ErrorPortAllocation and PacketsDropCount metrics",
                thousands(ctx.unexplained_drops)
            ),
            destination: None,
            remedies: vec![Remedy {
                summary: "Read the gateway's CloudWatch metrics for the same window".into(),
                command: Some(format!("aws-natgw metrics {}", ctx.nat_gateway_id.unwrap_or("<nat-gateway-id>"))),
            }],
        });
    }
    if ctx.unexplained_errors > 0 {
        out.push(Finding {
            id: "unexplained-errors".into(),
            severity: Severity::Critical,
            summary: format!(
                "CloudWatch counted {} port allocation errors, but no destination in the flow logs comes near its \
                 limit: the logs miss part of the traffic (another interface, a 600-s aggregation, delivery gaps)",
                thousands(ctx.unexplained_errors)
            ),
            destination: None,
            remedies: vec![Remedy {
                summary: "Check the flow-log prerequisites".into(),
                command: Some(format!("aws-natgw doctor {}", ctx.nat_gateway_id.unwrap_or("<nat-gateway-id>"))),
            }],
        });
    }
    let (limit, addresses) = ctx.limit_and_addresses();
    for UnusedAddress { address: a, elsewhere } in ctx.unused_nat_addresses {
        let (summary, remedy) = match elsewhere {
            None => (
                format!(
                    "NAT address {a} was given but carries no connection to any destination on {}, so it is not \
                     the gateway's or was not in use: the limit leaves it out, {limit} with {addresses}",
                    ctx.interface_named(),
                ),
                Remedy {
                    summary: format!("If {a} is not the gateway's (or not in use), leave it out of --nat-ip"),
                    command: None,
                },
            ),
            Some((iface, records)) => (
                format!(
                    "NAT address {a} was given but carries no connection on {}: it sends {} record{} out of the \
                     VPC from interface {iface}, another NAT gateway's (or another interface of a regional one), \
                     which this analysis leaves out; the limit here is {limit} with {addresses}",
                    ctx.interface_named(),
                    thousands(*records),
                    if *records == 1 { "" } else { "s" },
                ),
                Remedy {
                    summary: format!("Analyse interface {iface} on its own: its gateway has its own ports"),
                    command: Some(format!("aws-natgw analyze <files> --nat-interface {iface} --nat-ip {a}")),
                },
            ),
        };
        out.push(Finding {
            id: "nat-address-unused".into(),
            severity: Severity::Warning,
            summary,
            destination: None,
            remedies: vec![remedy],
        });
    }
    if ctx.no_nat_clients {
        out.push(Finding {
            id: "nat-without-clients".into(),
            severity: Severity::Warning,
            summary: format!(
                "No client inside the VPC sends through {} on {}, as a NAT gateway's clients do: either the \
                 clients' records are not in these logs (a filter, another interface), or {} a client's address, \
                 whose own interface logs its connections out of the VPC",
                crate::analyze::addresses(ctx.nat_addresses),
                ctx.interface_named(),
                if ctx.nat_addresses.len() == 1 { "it is" } else { "one is" },
            ),
            destination: None,
            remedies: vec![Remedy {
                summary: "Check --nat-ip, or leave it out: the gateway is then inferred from the records".into(),
                command: None,
            }],
        });
    }
    for &(a, records) in ctx.unlisted_nat_addresses {
        out.push(Finding {
            id: "nat-address-not-given".into(),
            severity: Severity::Warning,
            summary: format!(
                "Address {a} sends {} record{} from {} to outside the VPC, as only the gateway's own addresses \
                 do, but it is not among the NAT addresses analysed: its connections are not counted, and the \
                 limit is {limit} for {addresses}",
                thousands(records),
                if records == 1 { "" } else { "s" },
                ctx.interface_named(),
            ),
            destination: None,
            remedies: vec![analyse_too(ctx, a)],
        });
    }
    // One finding for them all (busiest first): in logs of many interfaces without their IDs, every
    // instance with its own way out shows here.
    if let Some(&(a, records)) = ctx.unlisted_without_interface.first() {
        const NAMED: usize = 5;
        let n = ctx.unlisted_without_interface.len();
        let named: Vec<String> = ctx
            .unlisted_without_interface
            .iter()
            .take(NAMED)
            .map(|&(a, r)| format!("{a} ({} record{})", thousands(r), if r == 1 { "" } else { "s" }))
            .collect();
        let who = match n {
            1 => format!("Address {a} sends {} record{}", thousands(records), if records == 1 { "" } else { "s" }),
            _ if n <= NAMED => format!("Addresses {} send records", named.join(", ")),
            _ => format!("Addresses {} and {} more send records", named.join(", "), thousands((n - NAMED) as u64)),
        };
        let (are, each) = if n == 1 { ("is", "it") } else { ("are", "each") };
        out.push(Finding {
            id: "nat-address-not-given".into(),
            severity: Severity::Warning,
            summary: format!(
                "{who} to outside the VPC from ports a NAT gateway translates to, and {are} neither among the NAT \
                 addresses analysed nor their clients. The records have no interface ID, so {each} is either an \
                 address of the gateway not given (its connections are then not counted, and the limit is {limit} \
                 for {addresses}) or the address of an instance with its own way out of the VPC (a public address)"
            ),
            destination: None,
            remedies: vec![analyse_too(ctx, a)],
        });
    }
    for o in ctx.same_address_elsewhere {
        let iface = &o.interface;
        let (addrs, records) = (crate::analyze::addresses(&o.addresses), thousands(o.records));
        let plural = o.addresses.len() > 1;
        out.push(Finding {
            id: "other-nat-gateway".into(),
            severity: Severity::Warning,
            summary: format!(
                "Interface {iface} also sends {records} record{} out of the VPC from {addrs}, the NAT address{} this \
                 report analyses on {}: another NAT gateway with the same private address{} (another VPC's), or \
                 another interface of a regional one. Its connections are not counted here",
                if o.records == 1 { "" } else { "s" },
                if plural { "es" } else { "" },
                ctx.interface_named(),
                if plural { "es" } else { "" },
            ),
            destination: None,
            remedies: vec![Remedy {
                summary: format!("Analyse interface {iface} on its own: its gateway has its own ports"),
                command: Some(format!(
                    "aws-natgw analyze <files> --nat-interface {iface}{}",
                    o.addresses.iter().map(|a| format!(" --nat-ip {a}")).collect::<String>()
                )),
            }],
        });
    }
    for o in ctx.other_nats {
        let name = o.interface.as_deref().unwrap_or("(no interface ID)");
        out.push(Finding {
            id: "other-nat-gateway".into(),
            severity: Severity::Warning,
            summary: format!(
                "Interface {name} (address {}) looks like another NAT gateway's, or another interface of a \
                 regional one: {} records in from private addresses, {} out to outside ones. This report takes \
                 {} as the NAT gateway and does not estimate {name}'s connections",
                o.address,
                thousands(o.inbound),
                thousands(o.outbound),
                ctx.nat_interface.unwrap_or("the interface inferred")
            ),
            destination: None,
            remedies: vec![Remedy {
                summary: format!("Analyse {name} as the NAT gateway (the same files)"),
                command: o.interface.as_deref().map(|i| format!("aws-natgw analyze <files> --nat-interface {i}")),
            }],
        });
    }
    if ctx.skipped_lines > 0 {
        let first = ctx
            .first_bad_line
            .map(|b| format!(" (first: {} line {}: {})", b.input, b.line, b.reason))
            .unwrap_or_default();
        // A share of the input left out changes the answer: one line in a hundred or more.
        let many = ctx.skipped_lines.saturating_mul(100) >= ctx.records.saturating_add(ctx.skipped_lines);
        out.push(Finding {
            id: "skipped-lines".into(),
            severity: if many { Severity::Warning } else { Severity::Info },
            summary: format!(
                "{} unreadable flow-log line{} skipped{}{first}",
                thousands(ctx.skipped_lines),
                if ctx.skipped_lines == 1 { " was" } else { "s were" },
                if many {
                    format!(
                        ", {:.0} % of the input: the answer leaves them out",
                        100.0 * ctx.skipped_lines as f64 / (ctx.records + ctx.skipped_lines) as f64
                    )
                } else {
                    String::new()
                }
            ),
            destination: None,
            remedies: vec![Remedy {
                summary:
                    "If the flow log uses a custom format and the files have no header line, pass it with --log-format"
                        .into(),
                command: None,
            }],
        });
    }
    if !hot && ctx.unexplained_errors == 0 {
        let summary = match rows.first() {
            Some(d) => format!(
                "No destination above {:.0}% of its limit; the busiest, {}, peaked at {}",
                ctx.thresholds.warning * 100.0,
                d.display_destination(),
                d.percent(0)
            ),
            None => "No traffic through the NAT gateway".into(),
        };
        out.push(Finding {
            id: "healthy".into(),
            severity: Severity::Info,
            summary,
            destination: None,
            remedies: Vec::new(),
        });
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

fn idle_share(d: &DestinationReport) -> f64 {
    if d.protocol == crate::net::Protocol::TCP { d.evidence.abandoned_share.unwrap_or(0.0) } else { 0.0 }
}

fn close_idle_remedy() -> Remedy {
    Remedy {
        summary: format!(
            "Close idle connections: set the clients' HTTP/connection-pool idle timeout below {IDLE_TIMEOUT_SECS} s \
             (e.g. 300 s), and enable TCP keepalive under {IDLE_TIMEOUT_SECS} s for long-lived sockets"
        ),
        command: Some("sudo sysctl -w net.ipv4.tcp_keepalive_time=300".into()),
    }
}

/// Route S3/DynamoDB through a gateway endpoint: add the client route tables to the endpoint the VPC
/// already has, or create one. Nothing when every client route table already uses one.
fn endpoint_remedy(service: GatewayService, ctx: &FindingContext<'_>) -> Option<Remedy> {
    let suffix = match service {
        GatewayService::S3 => ".s3",
        GatewayService::DynamoDB => ".dynamodb",
    };
    let existing = ctx.endpoints.iter().find(|e| {
        e.service_name.ends_with(suffix) && e.endpoint_type.eq_ignore_ascii_case("gateway") && e.state == "available"
    });
    let tables = |list: Vec<&str>| {
        if list.is_empty() { "<route-table-ids-of-client-subnets>".to_owned() } else { list.join(" ") }
    };
    let name = service.name();
    match existing {
        Some(e) => {
            let missing: Vec<&str> = ctx
                .client_route_tables
                .iter()
                .map(String::as_str)
                .filter(|t| !e.route_table_ids.iter().any(|r| r == t))
                .collect();
            if missing.is_empty() && !ctx.client_route_tables.is_empty() {
                return None;
            }
            Some(Remedy {
                summary: format!(
                    "The VPC's {name} gateway endpoint {} is not in the route tables of the clients' subnets: add them, \
                     and {name} traffic leaves the NAT gateway (no port limit, no NAT data processing charge)",
                    e.id
                ),
                command: Some(format!(
                    "aws ec2 modify-vpc-endpoint --vpc-endpoint-id {} --add-route-table-ids {}",
                    e.id,
                    tables(missing)
                )),
            })
        }
        None => Some(Remedy {
            summary: format!(
                "Send {name} traffic through a gateway VPC endpoint: no NAT port limit and no NAT data processing charge"
            ),
            command: Some(format!(
                "aws ec2 create-vpc-endpoint --vpc-endpoint-type Gateway --vpc-id {} --service-name {} --route-table-ids {}",
                ctx.vpc_id.unwrap_or("<vpc-id>"),
                service.endpoint_service(ctx.region.unwrap_or("<region>")),
                tables(ctx.client_route_tables.iter().map(String::as_str).collect())
            )),
        }),
    }
}

fn hot_destination(d: &DestinationReport, ctx: &FindingContext<'_>) -> Finding {
    let dest = d.display_destination();
    let nat = ctx.nat_gateway_id.unwrap_or("<nat-gateway-id>");
    let summary = if d.saturated {
        let drops = if d.evidence.dropped_attempts > 0 {
            format!(
                "; {} connection attempts dropped{}",
                thousands(d.evidence.dropped_attempts),
                d.evidence.first_drop_at.map(|t| format!(" from {t}")).unwrap_or_default()
            )
        } else {
            String::new()
        };
        format!(
            "{dest} exhausted its NAT ports: {} of {} simultaneous connections{drops}",
            thousands(d.peak_connections),
            thousands(d.limit)
        )
    } else {
        format!(
            "{dest} peaked at {} of {} simultaneous connections ({}, range {}–{})",
            thousands(d.peak_connections),
            thousands(d.limit),
            d.percent(0),
            thousands(d.peak_connections_range[0]),
            thousands(d.peak_connections_range[1])
        )
    };
    let mut remedies = Vec::new();
    if let Some(service) = d.service {
        remedies.extend(endpoint_remedy(service, ctx));
    }
    if idle_share(d) >= 0.2 {
        let mut r = close_idle_remedy();
        r.summary = format!(
            "{:.0}% of connections were abandoned and held their port for {IDLE_TIMEOUT_SECS} s. {}",
            idle_share(d) * 100.0,
            r.summary
        );
        remedies.push(r);
    }
    // The addresses the limit counted at its peak (one added later counts from its first connection).
    let have = (d.limit / CONNECTIONS_PER_ADDRESS) as u32;
    if have < MAX_ADDRESSES {
        let want = if d.saturated {
            have.max(1)
        } else {
            let needed = (d.peak_connections_range[1] as f64 * 1.25 / CONNECTIONS_PER_ADDRESS as f64).ceil() as u32;
            needed.saturating_sub(have).max(1)
        };
        let add = want.min(MAX_ADDRESSES - have);
        remedies.push(Remedy {
            summary: format!(
                "Add {add} address{} to the NAT gateway: each adds {} simultaneous connections to every destination \
                 ({} → {} here). Public NAT gateway: allocate Elastic IPs (aws ec2 allocate-address --domain vpc; \
                 2 per gateway by default, an adjustable quota) and associate them",
                if add > 1 { "es" } else { "" },
                thousands(CONNECTIONS_PER_ADDRESS),
                thousands(d.limit),
                thousands(d.limit + u64::from(add) * CONNECTIONS_PER_ADDRESS)
            ),
            command: Some(format!(
                "aws ec2 associate-nat-gateway-address --nat-gateway-id {nat} --allocation-ids <eipalloc-id> …"
            )),
        });
        remedies.push(Remedy {
            summary: "Private NAT gateway: assign secondary private addresses".into(),
            command: Some(format!(
                "aws ec2 assign-private-nat-gateway-address --nat-gateway-id {nat} --private-ip-address-count {add}"
            )),
        });
    }
    remedies.push(Remedy {
        summary: "Spread clients over one NAT gateway per Availability Zone (each gateway has its own ports), routing each \
                  AZ's private subnets to the gateway in the same AZ"
            .into(),
        command: Some(
            "aws ec2 create-nat-gateway --subnet-id <public-subnet-in-az> --allocation-id <eipalloc-id> && \
             aws ec2 replace-route --route-table-id <route-table-of-az> --destination-cidr-block 0.0.0.0/0 --nat-gateway-id <new-nat-gateway-id>"
                .into(),
        ),
    });
    if !d.sources.is_empty() {
        let named: Vec<String> = d
            .sources
            .iter()
            .take(3)
            .map(|s| format!("{} ({} connections)", s.address, thousands(s.connections)))
            .collect();
        remedies.push(Remedy {
            summary: format!(
                "Limit connections to {dest} from the top clients {}: cap the connection pool per host and reuse \
                 connections (keep-alive) instead of opening new ones",
                named.join(", ")
            ),
            command: None,
        });
    }
    let severity = if d.saturated || d.level == Level::Critical { Severity::Critical } else { Severity::Warning };
    Finding {
        id: if d.saturated { "port-exhaustion".into() } else { "near-limit".into() },
        severity,
        summary,
        destination: Some(dest),
        remedies,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::AttributionMethod;

    fn endpoint(tables: &[&str]) -> VpcEndpointInfo {
        VpcEndpointInfo {
            id: "vpce-1".into(),
            service_name: "com.amazonaws.eu-west-1.s3".into(),
            endpoint_type: "Gateway".into(),
            route_table_ids: tables.iter().map(|t| (*t).to_owned()).collect(),
            state: "available".into(),
        }
    }

    fn remedy(endpoints: &[VpcEndpointInfo], tables: &[String]) -> Option<Remedy> {
        let attribution = Attribution { method: AttributionMethod::PktDstaddr, note: None };
        let nat: [IpAddr; 1] = ["10.0.0.7".parse().unwrap()];
        let ctx = FindingContext {
            nat_gateway_id: Some("nat-1"),
            nat_interface: None,
            nat_addresses: &nat,
            counted_addresses: 1,
            vpc_id: Some("vpc-1"),
            region: Some("eu-west-1"),
            thresholds: Thresholds::default(),
            attribution: &attribution,
            unexplained_drops: 0,
            unexplained_errors: 0,
            skipped_lines: 0,
            first_bad_line: None,
            endpoints,
            client_route_tables: tables,
            records: 0,
            other_nats: &[],
            same_address_elsewhere: &[],
            unused_nat_addresses: &[],
            no_nat_clients: false,
            pkt_dstaddr_logged: false,
            unlisted_nat_addresses: &[],
            unlisted_without_interface: &[],
        };
        endpoint_remedy(GatewayService::S3, &ctx)
    }

    #[test]
    fn the_endpoint_remedy_names_real_route_tables_and_reuses_an_endpoint() {
        let tables = vec!["rtb-a".to_owned(), "rtb-b".to_owned()];
        let create = remedy(&[], &tables).unwrap().command.unwrap();
        assert_eq!(
            create,
            "aws ec2 create-vpc-endpoint --vpc-endpoint-type Gateway --vpc-id vpc-1 --service-name \
             com.amazonaws.eu-west-1.s3 --route-table-ids rtb-a rtb-b"
        );
        let add = remedy(&[endpoint(&["rtb-a"])], &tables).unwrap();
        assert_eq!(
            add.command.unwrap(),
            "aws ec2 modify-vpc-endpoint --vpc-endpoint-id vpce-1 --add-route-table-ids rtb-b"
        );
        assert!(add.summary.contains("vpce-1"));
        assert_eq!(remedy(&[endpoint(&["rtb-a", "rtb-b"])], &tables), None, "nothing left to add");
        // Unknown client tables (local files): a placeholder, never a guess.
        assert!(
            remedy(&[], &[])
                .unwrap()
                .command
                .unwrap()
                .ends_with("--route-table-ids <route-table-ids-of-client-subnets>")
        );
    }
}
