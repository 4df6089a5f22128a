//! SDK shapes → natgw-core values. Pure functions; a required field missing or an address that does
//! not parse is an [`Error::InvalidResponse`] naming the call.

use std::str::FromStr;

use aws_sdk_cloudwatchlogs::types as logs;
use aws_sdk_ec2::types as ec2;
use ipnet::{IpNet, Ipv4Net};
use natgw_core::net::InterfaceId;
use natgw_core::topology::{
    AvailabilityMode, Connectivity, FlowLogDestinationType, FlowLogInfo, LogEvent, LogGroupInfo, NatAddress,
    NatGatewayInfo, NatRoute, QueryStatus, RouteDestination, RouteTableInfo, SubnetInfo, TrafficType, VpcEndpointInfo,
    VpcInfo,
};

use crate::actions;
use crate::error::{Error, Result};

/// The default aggregation interval of a flow log, when AWS leaves it out.
const DEFAULT_AGGREGATION_SECS: u32 = 600;

fn required<'a>(operation: &'static str, field: &str, v: Option<&'a str>) -> Result<&'a str> {
    v.ok_or_else(|| Error::InvalidResponse { operation, message: format!("{field} missing") })
}

fn parse<T: FromStr>(operation: &'static str, field: &str, v: Option<&str>) -> Result<Option<T>> {
    match v {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| Error::InvalidResponse { operation, message: format!("{field} {s:?} does not parse") }),
    }
}

fn name_tag(tags: &[ec2::Tag]) -> Option<String> {
    tags.iter().find(|t| t.key() == Some("Name")).and_then(|t| t.value()).map(str::to_owned)
}

pub(crate) fn nat_gateway(n: &ec2::NatGateway) -> Result<NatGatewayInfo> {
    const OP: &str = actions::DESCRIBE_NAT_GATEWAYS;
    let connectivity = match n.connectivity_type() {
        Some(ec2::ConnectivityType::Public) => Connectivity::Public,
        Some(ec2::ConnectivityType::Private) => Connectivity::Private,
        // The API's default when absent.
        None => Connectivity::Public,
        Some(_) => Connectivity::Unknown,
    };
    let availability_mode = match n.availability_mode() {
        Some(ec2::AvailabilityMode::Zonal) => AvailabilityMode::Zonal,
        Some(ec2::AvailabilityMode::Regional) => AvailabilityMode::Regional,
        _ => AvailabilityMode::Unknown,
    };
    let auto_scaling_ips = match n.auto_scaling_ips() {
        Some(ec2::AutoScalingIpsState::Enabled) => Some(true),
        Some(ec2::AutoScalingIpsState::Disabled) => Some(false),
        _ => None,
    };
    let addresses = n
        .nat_gateway_addresses()
        .iter()
        .map(|a| {
            Ok(NatAddress {
                allocation_id: a.allocation_id().map(str::to_owned),
                public_ip: parse(OP, "PublicIp", a.public_ip())?,
                private_ip: parse(OP, "PrivateIp", a.private_ip())?,
                interface_id: parse::<InterfaceId>(OP, "NetworkInterfaceId", a.network_interface_id())?,
                is_primary: a.is_primary(),
                status: a.status().map(|s| s.as_str().to_owned()),
                availability_zone: a.availability_zone().map(str::to_owned),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(NatGatewayInfo {
        id: required(OP, "NatGatewayId", n.nat_gateway_id())?.to_owned(),
        name: name_tag(n.tags()),
        state: n.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
        connectivity,
        availability_mode,
        auto_scaling_ips,
        vpc_id: required(OP, "VpcId", n.vpc_id())?.to_owned(),
        subnet_id: n.subnet_id().filter(|s| !s.is_empty()).map(str::to_owned),
        addresses,
    })
}

pub(crate) fn vpc(v: &ec2::Vpc) -> Result<VpcInfo> {
    const OP: &str = actions::DESCRIBE_VPCS;
    let associated = |s: Option<&ec2::VpcCidrBlockState>| {
        // Blocks being removed or that failed to attach do not hold addresses.
        !matches!(
            s.and_then(|s| s.state()),
            Some(
                ec2::VpcCidrBlockStateCode::Disassociated
                    | ec2::VpcCidrBlockStateCode::Disassociating
                    | ec2::VpcCidrBlockStateCode::Failed
                    | ec2::VpcCidrBlockStateCode::Failing
            )
        )
    };
    let mut cidrs_v4 = Vec::new();
    for a in v.cidr_block_association_set().iter().filter(|a| associated(a.cidr_block_state())) {
        if let Some(net) = parse(OP, "CidrBlock", a.cidr_block())? {
            cidrs_v4.push(net);
        }
    }
    // Emulators and old answers may only carry the primary block.
    if cidrs_v4.is_empty() {
        cidrs_v4.extend(parse::<Ipv4Net>(OP, "CidrBlock", v.cidr_block())?);
    }
    let mut cidrs_v6 = Vec::new();
    for a in v.ipv6_cidr_block_association_set().iter().filter(|a| associated(a.ipv6_cidr_block_state())) {
        if let Some(net) = parse(OP, "Ipv6CidrBlock", a.ipv6_cidr_block())? {
            cidrs_v6.push(net);
        }
    }
    Ok(VpcInfo { id: required(OP, "VpcId", v.vpc_id())?.to_owned(), cidrs_v4, cidrs_v6 })
}

pub(crate) fn subnet(s: &ec2::Subnet) -> Result<SubnetInfo> {
    const OP: &str = actions::DESCRIBE_SUBNETS;
    Ok(SubnetInfo {
        id: required(OP, "SubnetId", s.subnet_id())?.to_owned(),
        cidr: parse(OP, "CidrBlock", s.cidr_block())?,
        availability_zone: s.availability_zone().unwrap_or_default().to_owned(),
        az_id: s.availability_zone_id().map(str::to_owned),
    })
}

pub(crate) fn route_table(t: &ec2::RouteTable) -> Result<RouteTableInfo> {
    const OP: &str = actions::DESCRIBE_ROUTE_TABLES;
    let mut nat_routes = Vec::new();
    for r in t.routes() {
        let Some(nat) = r.nat_gateway_id().filter(|n| !n.is_empty()) else { continue };
        let destination = if let Some(net) = parse::<IpNet>(OP, "DestinationCidrBlock", r.destination_cidr_block())? {
            RouteDestination::Cidr(net)
        } else if let Some(net) = parse::<IpNet>(OP, "DestinationIpv6CidrBlock", r.destination_ipv6_cidr_block())? {
            RouteDestination::Cidr(net)
        } else if let Some(pl) = r.destination_prefix_list_id() {
            RouteDestination::PrefixList(pl.to_owned())
        } else {
            return Err(Error::InvalidResponse {
                operation: OP,
                message: format!("route to {nat} without destination"),
            });
        };
        nat_routes.push(NatRoute { destination, nat_gateway_id: nat.to_owned() });
    }
    Ok(RouteTableInfo {
        id: required(OP, "RouteTableId", t.route_table_id())?.to_owned(),
        main: t.associations().iter().any(|a| a.main() == Some(true)),
        subnet_ids: t.associations().iter().filter_map(|a| a.subnet_id()).map(str::to_owned).collect(),
        nat_routes,
    })
}

pub(crate) fn vpc_endpoint(e: &ec2::VpcEndpoint) -> Result<VpcEndpointInfo> {
    const OP: &str = actions::DESCRIBE_VPC_ENDPOINTS;
    Ok(VpcEndpointInfo {
        id: required(OP, "VpcEndpointId", e.vpc_endpoint_id())?.to_owned(),
        service_name: e.service_name().unwrap_or_default().to_owned(),
        endpoint_type: e.vpc_endpoint_type().map(|t| t.as_str().to_owned()).unwrap_or_default(),
        route_table_ids: e.route_table_ids().to_vec(),
        state: e.state().map(|s| s.as_str().to_owned()).unwrap_or_default(),
    })
}

pub(crate) fn flow_log(f: &ec2::FlowLog) -> Result<FlowLogInfo> {
    const OP: &str = actions::DESCRIBE_FLOW_LOGS;
    let traffic_type = match f.traffic_type() {
        Some(ec2::TrafficType::Accept) => TrafficType::Accept,
        Some(ec2::TrafficType::Reject) => TrafficType::Reject,
        Some(ec2::TrafficType::All) => TrafficType::All,
        _ => TrafficType::Unknown,
    };
    let destination_type = match f.log_destination_type() {
        Some(ec2::LogDestinationType::CloudWatchLogs) => FlowLogDestinationType::CloudWatchLogs,
        Some(ec2::LogDestinationType::S3) => FlowLogDestinationType::S3,
        Some(ec2::LogDestinationType::KinesisDataFirehose) => FlowLogDestinationType::KinesisDataFirehose,
        // Flow logs from before destination types existed all went to CloudWatch Logs.
        None if f.log_group_name().is_some() => FlowLogDestinationType::CloudWatchLogs,
        _ => FlowLogDestinationType::Unknown,
    };
    let interval = match f.max_aggregation_interval() {
        None => DEFAULT_AGGREGATION_SECS,
        Some(s) => u32::try_from(s).map_err(|_| Error::InvalidResponse {
            operation: OP,
            message: format!("MaxAggregationInterval {s} is negative"),
        })?,
    };
    Ok(FlowLogInfo {
        id: required(OP, "FlowLogId", f.flow_log_id())?.to_owned(),
        resource_id: required(OP, "ResourceId", f.resource_id())?.to_owned(),
        traffic_type,
        destination_type,
        log_group: f.log_group_name().filter(|g| !g.is_empty()).map(str::to_owned),
        destination: f.log_destination().filter(|d| !d.is_empty()).map(str::to_owned),
        log_format: f.log_format().unwrap_or_default().to_owned(),
        max_aggregation_interval: interval,
        deliver_status: f.deliver_logs_status().map(str::to_owned),
        deliver_error: f.deliver_logs_error_message().filter(|m| !m.is_empty()).map(str::to_owned),
    })
}

pub(crate) fn log_group(g: &logs::LogGroup) -> LogGroupInfo {
    LogGroupInfo {
        name: g.log_group_name().unwrap_or_default().to_owned(),
        arn: g.log_group_arn().or(g.arn()).map(str::to_owned),
        stored_bytes: g.stored_bytes().and_then(|b| u64::try_from(b).ok()),
        retention_days: g.retention_in_days().and_then(|d| u32::try_from(d).ok()),
        class: g.log_group_class().map(|c| c.as_str().to_owned()),
        created_ms: g.creation_time().and_then(|t| u64::try_from(t).ok()),
    }
}

pub(crate) fn query_status(s: Option<&logs::QueryStatus>) -> QueryStatus {
    match s {
        Some(logs::QueryStatus::Scheduled) => QueryStatus::Scheduled,
        Some(logs::QueryStatus::Running) => QueryStatus::Running,
        Some(logs::QueryStatus::Complete) => QueryStatus::Complete,
        Some(logs::QueryStatus::Failed) => QueryStatus::Failed,
        Some(logs::QueryStatus::Cancelled) => QueryStatus::Cancelled,
        Some(logs::QueryStatus::Timeout) => QueryStatus::Timeout,
        _ => QueryStatus::Unknown,
    }
}

/// A result row as `(field, value)` pairs, without Insights' internal `@ptr`.
pub(crate) fn result_row(fields: &[logs::ResultField]) -> Vec<(String, String)> {
    fields
        .iter()
        .filter(|f| f.field() != Some("@ptr"))
        .map(|f| (f.field().unwrap_or_default().to_owned(), f.value().unwrap_or_default().to_owned()))
        .collect()
}

pub(crate) fn log_event(e: &logs::FilteredLogEvent) -> Result<LogEvent> {
    const OP: &str = actions::FILTER_LOG_EVENTS;
    let ts = e.timestamp().unwrap_or_default();
    Ok(LogEvent {
        timestamp_ms: u64::try_from(ts)
            .map_err(|_| Error::InvalidResponse { operation: OP, message: format!("event timestamp {ts}") })?,
        message: e.message().unwrap_or_default().to_owned(),
        stream: e.log_stream_name().map(str::to_owned),
    })
}
