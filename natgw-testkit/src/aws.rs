//! A simulated account for orchestration tests: [`scenario_mock`] returns a mockall [`MockAwsApi`]
//! whose every read answers from a [`Simulation`] — the NAT gateway, VPC, subnets, routes, a flow log
//! to CloudWatch Logs, the per-minute metrics, FilterLogEvents over the NAT interface's records, and
//! the four Logs Insights questions natgw asks, evaluated here over the same records.
//!
//! The Insights evaluation mirrors what each query's text asks (the texts themselves are
//! snapshot-tested in natgw-core); it is no Logs Insights engine, and says so by answering only
//! natgw's own query kinds. Queries report `Running` on their first poll, to exercise polling.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use natgw_aws::{Error, MockAwsApi, NatSelector, StreamSelector};
use natgw_core::flowlog::{Action, LogFormat, parse_all};
use natgw_core::insights::{InsightsQuery, QueryKind};
use natgw_core::net::{CidrSet, Destination, InterfaceId, Protocol};
use natgw_core::topology::{
    AvailabilityMode, Connectivity, FlowLogDestinationType, FlowLogInfo, LogEvent, LogEvents, LogGroupInfo,
    MetricSeries, NatAddress, NatGatewayInfo, NatRoute, QueryResults, QueryStatus, RouteDestination, RouteTableInfo,
    SubnetInfo, TrafficType, VpcInfo,
};

use crate::sim::Simulation;

/// The log group the simulated flow log delivers to.
pub const LOG_GROUP: &str = "/natgw/flow-logs";

/// Which flow log the simulated account has on the NAT interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logging {
    /// The simulator's custom format (tcp-flags, pkt-dstaddr), 60-s windows.
    Custom,
    /// The default format.
    Default,
    /// No flow log at all.
    None,
}

/// One NAT-interface record, as the fake's queries see it.
#[derive(Debug, Clone)]
struct Rec {
    line: String,
    iface: String,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    proto: u8,
    start: u64,
    end: u64,
    accept: bool,
    pkt_dst: Option<IpAddr>,
    packets: Option<u64>,
    bytes: Option<u64>,
    tcp_flags: Option<u16>,
}

/// The simulated account behind the mock.
#[derive(Debug)]
pub struct Account {
    pub nat: NatGatewayInfo,
    pub vpc: VpcInfo,
    pub subnets: Vec<SubnetInfo>,
    pub route_tables: Vec<RouteTableInfo>,
    pub flow_logs: Vec<FlowLogInfo>,
    pub metrics: Vec<MetricSeries>,
    records: Vec<Rec>,
    vpc_cidrs: CidrSet,
    queries: Mutex<HashMap<String, (QueryResults, u32)>>,
}

impl Account {
    /// The account a simulation describes, with `logging` on the NAT interface.
    pub fn of(sim: &Simulation, logging: Logging) -> Account {
        let sc = sim.scenario();
        let n = &sc.nat;
        let eni: InterfaceId = n.interface_id.parse().unwrap_or_else(|_| panic!("bad ENI {}", n.interface_id));
        let nat = NatGatewayInfo {
            id: n.nat_gateway_id.clone(),
            name: Some(format!("{}-nat", sc.name)),
            state: "available".into(),
            connectivity: Connectivity::Public,
            availability_mode: AvailabilityMode::Zonal,
            auto_scaling_ips: None,
            vpc_id: n.vpc_id.clone(),
            subnet_id: Some(n.subnet_id.clone()),
            addresses: n
                .addresses
                .iter()
                .enumerate()
                .map(|(i, ip)| NatAddress {
                    allocation_id: Some(format!("eipalloc-{i:017x}")),
                    public_ip: Some(std::net::Ipv4Addr::new(198, 51, 100, 10 + i as u8)),
                    private_ip: Some(*ip),
                    interface_id: Some(eni.clone()),
                    is_primary: Some(i == 0),
                    status: Some("succeeded".into()),
                    availability_zone: Some(n.az.clone()),
                })
                .collect(),
        };
        let cidrs: Vec<ipnet::Ipv4Net> = sc.vpc_cidrs.iter().filter_map(|c| c.parse().ok()).collect();
        let vpc = VpcInfo { id: n.vpc_id.clone(), cidrs_v4: cidrs.clone(), cidrs_v6: Vec::new() };
        let mut client_subnets: Vec<String> = sc.clients.iter().map(|c| c.subnet_id.clone()).collect();
        client_subnets.sort();
        client_subnets.dedup();
        let mut subnets: Vec<SubnetInfo> = client_subnets
            .iter()
            .map(|s| SubnetInfo { id: s.clone(), cidr: None, availability_zone: n.az.clone(), az_id: None })
            .collect();
        subnets.push(SubnetInfo { id: n.subnet_id.clone(), cidr: None, availability_zone: n.az.clone(), az_id: None });
        let route_tables = vec![RouteTableInfo {
            id: "rtb-0private0000000".into(),
            main: false,
            subnet_ids: client_subnets,
            nat_routes: vec![NatRoute {
                destination: RouteDestination::Cidr("0.0.0.0/0".parse().unwrap_or_else(|_| unreachable!())),
                nat_gateway_id: n.nat_gateway_id.clone(),
            }],
        }];
        let (format, text) = match logging {
            Logging::Custom | Logging::None => (sim.custom_format().to_owned(), sim.nat_custom()),
            Logging::Default => (natgw_core::flowlog::DEFAULT_FORMAT.to_owned(), sim.nat_v2()),
        };
        let flow_logs = match logging {
            Logging::None => Vec::new(),
            _ => vec![FlowLogInfo {
                id: "fl-0sim000000000000".into(),
                resource_id: n.interface_id.clone(),
                traffic_type: TrafficType::All,
                destination_type: FlowLogDestinationType::CloudWatchLogs,
                log_group: Some(LOG_GROUP.into()),
                destination: None,
                log_format: format.clone(),
                max_aggregation_interval: sc.interval_secs,
                deliver_status: Some("SUCCESS".into()),
                deliver_error: None,
            }],
        };
        let metrics = sim
            .metrics()
            .series
            .iter()
            .map(|(name, points)| MetricSeries {
                metric: name.clone(),
                statistic: if name == "ActiveConnectionCount" { "Maximum" } else { "Sum" }.into(),
                points: points.iter().map(|&(t, v)| (t, v as f64)).collect(),
            })
            .collect();
        Account {
            nat,
            vpc,
            subnets,
            route_tables,
            flow_logs,
            metrics,
            records: records(&text),
            vpc_cidrs: CidrSet::new(cidrs.into_iter().map(Into::into)),
            queries: Mutex::default(),
        }
    }

    fn nat_ips(&self) -> Vec<IpAddr> {
        self.nat.private_ips().into_iter().map(IpAddr::V4).collect()
    }

    fn egress(&self, q: &InsightsQuery) -> impl Iterator<Item = &Rec> {
        let eni = self.nat.interface_ids().first().map(ToString::to_string).unwrap_or_default();
        let nat = self.nat_ips();
        self.records.iter().filter(move |r| {
            r.iface == eni
                && nat.contains(&r.src)
                && r.accept
                && !self.vpc_cidrs.contains(&r.dst)
                && (q.start..=q.end).contains(&r.start)
        })
    }

    /// Evaluates one of natgw's queries over the records, as its text asks.
    fn answer(&self, q: &InsightsQuery, limit: u32) -> QueryResults {
        let multi = self.nat.addresses.len() > 1;
        let row = |cols: Vec<(&str, String)>| cols.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<Vec<_>>();
        let mut scanned = 0u64;
        let rows: Vec<Vec<(String, String)>> = match q.kind {
            QueryKind::TopDestinations | QueryKind::PortsPerMinute => {
                // (destination, minute) → (NAT address:port pairs, records, bytes)
                type Group = (BTreeSet<(IpAddr, u16)>, u64, u64);
                let mut by: BTreeMap<(Destination, u64), Group> = BTreeMap::new();
                for r in self.egress(q) {
                    scanned += 1;
                    let d = Destination { address: r.dst, port: r.dport, protocol: Protocol(r.proto) };
                    let minute = if q.kind == QueryKind::PortsPerMinute { r.start / 60 * 60 } else { 0 };
                    let e = by.entry((d, minute)).or_default();
                    e.0.insert((if multi { r.src } else { IpAddr::from([0, 0, 0, 0]) }, r.sport));
                    e.1 += 1;
                    e.2 += r.bytes.unwrap_or(0);
                }
                let mut list: Vec<_> = by.into_iter().collect();
                list.sort_by(|a, b| (b.1.0.len(), b.1.1).cmp(&(a.1.0.len(), a.1.1)).then(a.0.cmp(&b.0)));
                list.into_iter()
                    .map(|((d, minute), (ports, records, bytes))| {
                        let mut cols = vec![
                            ("dstAddr", d.address.to_string()),
                            ("dstPort", d.port.to_string()),
                            ("protocol", d.protocol.0.to_string()),
                            ("natPorts", ports.len().to_string()),
                        ];
                        if q.kind == QueryKind::PortsPerMinute {
                            // As Insights writes bin(): `2026-05-28 20:26:00.000`.
                            let t = natgw_core::time::Timestamp(minute).rfc3339().replace('T', " ");
                            cols.push(("minute", t.replace('Z', ".000")));
                        } else {
                            cols.push(("records", records.to_string()));
                            cols.push(("bytes", bytes.to_string()));
                        }
                        row(cols)
                    })
                    .collect()
            }
            QueryKind::DestinationFlows => {
                let mut recs: Vec<&Rec> = self
                    .egress(q)
                    .inspect(|_| scanned += 1)
                    .filter(|r| {
                        q.destinations
                            .iter()
                            .any(|d| d.address == r.dst && d.port == r.dport && d.protocol == Protocol(r.proto))
                    })
                    .collect();
                recs.sort_by_key(|r| r.start);
                recs.into_iter()
                    .map(|r| {
                        let mut cols = vec![
                            ("srcAddr", r.src.to_string()),
                            ("srcPort", r.sport.to_string()),
                            ("dstAddr", r.dst.to_string()),
                            ("dstPort", r.dport.to_string()),
                            ("protocol", r.proto.to_string()),
                            ("start", r.start.to_string()),
                            ("end", r.end.to_string()),
                        ];
                        // Insights leaves a field out of a row when it has no value.
                        cols.extend(r.packets.map(|v| ("packets", v.to_string())));
                        cols.extend(r.bytes.map(|v| ("bytes", v.to_string())));
                        cols.extend(r.tcp_flags.map(|v| ("tcpFlags", v.to_string())));
                        row(cols)
                    })
                    .collect()
            }
            QueryKind::TopSources => {
                let eni = self.nat.interface_ids().first().map(ToString::to_string).unwrap_or_default();
                let primary = self.nat_ips().first().copied();
                let d = q.destinations.first().copied();
                let pkt = q.text.contains("pktDstAddr");
                let mut by: BTreeMap<IpAddr, (BTreeSet<u16>, u64)> = BTreeMap::new();
                for r in &self.records {
                    scanned += 1;
                    let Some(d) = d else { break };
                    let hit = if pkt {
                        r.iface == eni
                            && Some(r.dst) == primary
                            && r.pkt_dst == Some(d.address)
                            && r.dport == d.port
                            && Protocol(r.proto) == d.protocol
                    } else {
                        r.iface != eni && r.dst == d.address && r.dport == d.port && Protocol(r.proto) == d.protocol
                    };
                    if hit && self.vpc_cidrs.contains(&r.src) && (q.start..=q.end).contains(&r.start) {
                        let e = by.entry(r.src).or_default();
                        e.0.insert(r.sport);
                        e.1 += r.bytes.unwrap_or(0);
                    }
                }
                let mut list: Vec<_> = by.into_iter().collect();
                list.sort_by(|a, b| b.1.0.len().cmp(&a.1.0.len()).then(a.0.cmp(&b.0)));
                list.into_iter()
                    .map(|(ip, (ports, bytes))| {
                        row(vec![
                            ("srcAddr", ip.to_string()),
                            ("connections", ports.len().to_string()),
                            ("bytes", bytes.to_string()),
                        ])
                    })
                    .collect()
            }
        };
        let mut rows = rows;
        let matched = rows.len();
        rows.truncate(limit as usize);
        QueryResults {
            status: QueryStatus::Complete,
            rows,
            records_matched: matched as f64,
            records_scanned: scanned as f64,
            // As if every record were a 150-byte event.
            bytes_scanned: scanned as f64 * 150.0,
        }
    }

    fn start_query(&self, q: &InsightsQuery, limit: u32) -> Result<String, Error> {
        if q.log_groups.iter().any(|g| g != LOG_GROUP) {
            return Err(Error::NotFound {
                what: format!("log group {}", q.log_groups.join(", ")),
                message: String::new(),
            });
        }
        let results = self.answer(q, limit);
        let mut queries = self.queries.lock().unwrap_or_else(|e| e.into_inner());
        let id = format!("q-{:04}", queries.len() + 1);
        queries.insert(id.clone(), (results, 0));
        Ok(id)
    }

    fn get_query_results(&self, id: &str) -> Result<QueryResults, Error> {
        let mut queries = self.queries.lock().unwrap_or_else(|e| e.into_inner());
        let (results, polls) = queries
            .get_mut(id)
            .ok_or_else(|| Error::NotFound { what: format!("query {id}"), message: String::new() })?;
        *polls += 1;
        if *polls == 1 {
            return Ok(QueryResults { status: QueryStatus::Running, rows: Vec::new(), ..results.clone() });
        }
        Ok(results.clone())
    }

    /// Queries started so far.
    pub fn queries_started(&self) -> usize {
        self.queries.lock().map(|q| q.len()).unwrap_or(0)
    }

    fn filter_log_events(&self, group: &str, streams: &StreamSelector, start: u64, end: u64, max: usize) -> LogEvents {
        let eni = self.nat.interface_ids().first().map(ToString::to_string).unwrap_or_default();
        let stream = format!("{eni}-all");
        let wanted = match streams {
            StreamSelector::All => true,
            StreamSelector::Prefix(p) => stream.starts_with(p.as_str()),
            StreamSelector::Names(n) => n.contains(&stream),
        };
        if group != LOG_GROUP || !wanted || self.flow_logs.is_empty() {
            return LogEvents::default();
        }
        let mut out = LogEvents::default();
        for r in self.records.iter().filter(|r| (start..=end).contains(&r.start)) {
            if out.events.len() >= max {
                out.truncated = true;
                break;
            }
            out.events.push(LogEvent {
                timestamp_ms: r.start * 1000,
                message: r.line.clone(),
                stream: Some(stream.clone()),
            });
        }
        out
    }
}

/// Parses a flow-log text (header line included) into owned records.
fn records(text: &[u8]) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut lines = text.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    let header = lines.next().unwrap_or_default();
    let format = LogFormat::from_header(header).unwrap_or_default();
    for line in lines {
        parse_all(line, format.clone(), true, &mut |r| {
            let (Some(src), Some(dst), Some(sport), Some(dport), Some(proto), Some(start), Some(end)) =
                (r.srcaddr, r.dstaddr, r.srcport, r.dstport, r.protocol, r.start, r.end)
            else {
                return;
            };
            out.push(Rec {
                line: String::from_utf8_lossy(line).into_owned(),
                iface: r.interface_id.unwrap_or_default().to_owned(),
                src,
                dst,
                sport,
                dport,
                proto: proto.0,
                start,
                end,
                accept: r.action != Some(Action::Reject),
                pkt_dst: r.pkt_dstaddr,
                packets: r.packets,
                bytes: r.bytes,
                tcp_flags: r.tcp_flags.map(|f| f.0),
            });
        });
    }
    out
}

/// A mockall mock of the adapter whose every read answers from `account`.
pub fn scenario_mock(account: Arc<Account>) -> MockAwsApi {
    let mut m = MockAwsApi::new();
    let region = "us-east-1".to_owned();
    m.expect_region().returning(move || Some(region.clone()));
    let a = account.clone();
    m.expect_describe_nat_gateways().returning(move |sel| {
        let hit = match sel {
            NatSelector::Ids(ids) => ids.contains(&a.nat.id),
            NatSelector::Name(n) => a.nat.name.as_ref() == Some(n),
        };
        Ok(if hit { vec![a.nat.clone()] } else { Vec::new() })
    });
    let a = account.clone();
    m.expect_list_nat_gateways().returning(move || Ok(vec![a.nat.clone()]));
    let a = account.clone();
    m.expect_describe_vpc().returning(move |id| {
        if id == a.vpc.id {
            Ok(a.vpc.clone())
        } else {
            Err(Error::NotFound { what: format!("VPC {id}"), message: String::new() })
        }
    });
    let a = account.clone();
    m.expect_describe_subnets().returning(move |_| Ok(a.subnets.clone()));
    let a = account.clone();
    m.expect_describe_route_tables().returning(move |_| Ok(a.route_tables.clone()));
    m.expect_describe_vpc_endpoints().returning(|_| Ok(Vec::new()));
    m.expect_prefix_list_cidrs().returning(|service| {
        Ok(if service.ends_with(".s3") {
            vec!["52.216.0.0/15".parse().unwrap_or_else(|_| unreachable!())]
        } else {
            vec!["3.218.180.0/22".parse().unwrap_or_else(|_| unreachable!())]
        })
    });
    let a = account.clone();
    m.expect_describe_flow_logs()
        .returning(move |ids| Ok(a.flow_logs.iter().filter(|f| ids.contains(&f.resource_id)).cloned().collect()));
    let a = account.clone();
    m.expect_get_metric_data().returning(move |id, queries, start, end, _period| {
        Ok(queries
            .iter()
            .map(|q| {
                let points = a
                    .metrics
                    .iter()
                    .find(|s| s.metric == q.metric && id == a.nat.id)
                    .map(|s| s.points.iter().copied().filter(|p| (start..end).contains(&p.0)).collect())
                    .unwrap_or_default();
                MetricSeries { metric: q.metric.clone(), statistic: q.statistic.clone(), points }
            })
            .collect())
    });
    let a = account.clone();
    m.expect_describe_log_group().returning(move |name| {
        Ok((name == LOG_GROUP && !a.flow_logs.is_empty()).then(|| LogGroupInfo {
            name: name.to_owned(),
            arn: None,
            stored_bytes: Some(a.records.len() as u64 * 150),
            retention_days: Some(14),
            class: Some("STANDARD".into()),
            created_ms: None,
        }))
    });
    let a = account.clone();
    m.expect_start_query().returning(move |q, limit| a.start_query(q, limit));
    let a = account.clone();
    m.expect_get_query_results().returning(move |id| a.get_query_results(id));
    m.expect_stop_query().returning(|_| Ok(true));
    let a = account.clone();
    m.expect_filter_log_events().returning(move |g, s, start, end, max| Ok(a.filter_log_events(g, s, start, end, max)));
    m.expect_describe_regions().returning(|| Ok(vec!["us-east-1".into()]));
    m
}
