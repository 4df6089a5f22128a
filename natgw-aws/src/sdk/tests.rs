//! Tests of [`SdkAws`] against aws-smithy-mocks clients (no network, no account): the requests sent,
//! pagination, SDK retries, error mapping and the SDK → natgw-core mapping.

use std::net::Ipv4Addr;
use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, future};
use aws_sdk_cloudwatch::operation::get_metric_data::{GetMetricDataError, GetMetricDataOutput};
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{MetricDataResult, ScanBy, StatusCode};
use aws_sdk_cloudwatchlogs::operation::describe_log_groups::DescribeLogGroupsOutput;
use aws_sdk_cloudwatchlogs::operation::filter_log_events::builders::FilterLogEventsOutputBuilder;
use aws_sdk_cloudwatchlogs::operation::get_query_results::GetQueryResultsOutput;
use aws_sdk_cloudwatchlogs::operation::start_query::{StartQueryError, StartQueryOutput};
use aws_sdk_cloudwatchlogs::operation::stop_query::StopQueryOutput;
use aws_sdk_cloudwatchlogs::types::{
    FilteredLogEvent, LogGroup, QueryStatistics, QueryStatus as SdkQueryStatus, ResultField,
};
use aws_sdk_ec2::error::ErrorMetadata;
use aws_sdk_ec2::operation::describe_flow_logs::DescribeFlowLogsOutput;
use aws_sdk_ec2::operation::describe_managed_prefix_lists::DescribeManagedPrefixListsOutput;
use aws_sdk_ec2::operation::describe_nat_gateways::{DescribeNatGatewaysError, DescribeNatGatewaysOutput};
use aws_sdk_ec2::operation::describe_regions::DescribeRegionsOutput;
use aws_sdk_ec2::operation::describe_route_tables::DescribeRouteTablesOutput;
use aws_sdk_ec2::operation::describe_vpcs::{DescribeVpcsError, DescribeVpcsOutput};
use aws_sdk_ec2::operation::get_managed_prefix_list_entries::GetManagedPrefixListEntriesOutput;
use aws_sdk_ec2::types as ec2;
use aws_smithy_mocks::{Rule, RuleMode, create_mock_http_client, mock, mock_client};
use natgw_core::insights::{InsightsQuery, QueryKind};
use natgw_core::topology::{
    AvailabilityMode, Connectivity, FlowLogDestinationType, MetricQuery, NatAddress, NatGatewayInfo, NatRoute,
    QueryStatus, RouteDestination, TrafficType,
};

use super::{SdkAws, retry_config};
use crate::{AwsApi, AwsOptions, Error, MAX_ATTEMPTS, NatSelector, StreamSelector};

/// The adapter's retry policy with millisecond backoff, so retry tests run fast.
fn fast_retries() -> aws_config::retry::RetryConfig {
    retry_config().with_initial_backoff(Duration::from_millis(1)).with_max_backoff(Duration::from_millis(2))
}

fn aws(ec2_rules: &[&Rule], cw_rules: &[&Rule], logs_rules: &[&Rule]) -> SdkAws {
    SdkAws::from_clients(
        mock_client!(aws_sdk_ec2, RuleMode::MatchAny, ec2_rules, |b| b.retry_config(fast_retries())),
        mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, cw_rules, |b| b.retry_config(fast_retries())),
        mock_client!(aws_sdk_cloudwatchlogs, RuleMode::MatchAny, logs_rules, |b| b.retry_config(fast_retries())),
    )
}

fn ec2_only(rules: &[&Rule]) -> SdkAws {
    aws(rules, &[], &[])
}

fn error(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

fn has_filter(filters: &[ec2::Filter], name: &str, values: &[&str]) -> bool {
    filters.iter().any(|f| f.name() == Some(name) && f.values() == values)
}

// ---------------------------------------------------------------------------------------------------
// NAT gateways

fn zonal_nat() -> ec2::NatGateway {
    ec2::NatGateway::builder()
        .nat_gateway_id("nat-0aaa")
        .vpc_id("vpc-1")
        .subnet_id("subnet-a")
        .state(ec2::NatGatewayState::Available)
        .connectivity_type(ec2::ConnectivityType::Public)
        .availability_mode(ec2::AvailabilityMode::Zonal)
        .tags(ec2::Tag::builder().key("team").value("payments").build())
        .tags(ec2::Tag::builder().key("Name").value("egress").build())
        // Secondary listed first: the mapping keeps AWS's order and flags.
        .nat_gateway_addresses(
            ec2::NatGatewayAddress::builder()
                .allocation_id("eipalloc-2")
                .public_ip("3.3.3.4")
                .private_ip("10.0.1.11")
                .network_interface_id("eni-0aa")
                .is_primary(false)
                .status(ec2::NatGatewayAddressStatus::Succeeded)
                .build(),
        )
        .nat_gateway_addresses(
            ec2::NatGatewayAddress::builder()
                .allocation_id("eipalloc-1")
                .public_ip("3.3.3.3")
                .private_ip("10.0.1.10")
                .network_interface_id("eni-0aa")
                .is_primary(true)
                .status(ec2::NatGatewayAddressStatus::Succeeded)
                .build(),
        )
        .build()
}

fn regional_private_nat() -> ec2::NatGateway {
    ec2::NatGateway::builder()
        .nat_gateway_id("nat-0bbb")
        .vpc_id("vpc-1")
        .state(ec2::NatGatewayState::Available)
        .connectivity_type(ec2::ConnectivityType::Private)
        .availability_mode(ec2::AvailabilityMode::Regional)
        .auto_scaling_ips(ec2::AutoScalingIpsState::Enabled)
        .tags(ec2::Tag::builder().key("Name").value("egress").build())
        .nat_gateway_addresses(
            ec2::NatGatewayAddress::builder()
                .private_ip("10.0.2.10")
                .network_interface_id("eni-0bb")
                .is_primary(true)
                .status(ec2::NatGatewayAddressStatus::Succeeded)
                .availability_zone("us-east-1b")
                .build(),
        )
        .build()
}

#[tokio::test]
async fn nat_gateways_by_name_join_pages_and_map_every_address() {
    let page1 = mock!(aws_sdk_ec2::Client::describe_nat_gateways)
        .match_requests(|r| r.next_token().is_none() && has_filter(r.filter(), "tag:Name", &["egress"]))
        .then_output(|| DescribeNatGatewaysOutput::builder().nat_gateways(zonal_nat()).next_token("t1").build());
    let page2 = mock!(aws_sdk_ec2::Client::describe_nat_gateways)
        .match_requests(|r| r.next_token() == Some("t1") && has_filter(r.filter(), "tag:Name", &["egress"]))
        .then_output(|| DescribeNatGatewaysOutput::builder().nat_gateways(regional_private_nat()).build());
    let aws = ec2_only(&[&page1, &page2]);

    let nats = aws.describe_nat_gateways(&NatSelector::Name("egress".into())).await.unwrap();

    assert_eq!((page1.num_calls(), page2.num_calls()), (1, 1));
    assert_eq!(nats.len(), 2);
    let address = |alloc: &str, public: [u8; 4], private: [u8; 4], primary: bool| NatAddress {
        allocation_id: Some(alloc.into()),
        public_ip: Some(Ipv4Addr::from(public)),
        private_ip: Some(Ipv4Addr::from(private)),
        interface_id: Some("eni-0aa".parse().unwrap()),
        is_primary: Some(primary),
        status: Some("succeeded".into()),
        availability_zone: None,
    };
    assert_eq!(
        nats[0],
        NatGatewayInfo {
            id: "nat-0aaa".into(),
            name: Some("egress".into()),
            state: "available".into(),
            connectivity: Connectivity::Public,
            availability_mode: AvailabilityMode::Zonal,
            auto_scaling_ips: None,
            vpc_id: "vpc-1".into(),
            subnet_id: Some("subnet-a".into()),
            addresses: vec![
                address("eipalloc-2", [3, 3, 3, 4], [10, 0, 1, 11], false),
                address("eipalloc-1", [3, 3, 3, 3], [10, 0, 1, 10], true),
            ],
        }
    );
    assert_eq!(nats[0].private_ips(), [Ipv4Addr::new(10, 0, 1, 10), Ipv4Addr::new(10, 0, 1, 11)]);

    let regional = &nats[1];
    assert_eq!(regional.connectivity, Connectivity::Private);
    assert_eq!(regional.availability_mode, AvailabilityMode::Regional);
    assert_eq!(regional.auto_scaling_ips, Some(true));
    assert_eq!(regional.subnet_id, None);
    assert_eq!(regional.addresses[0].public_ip, None);
    assert_eq!(regional.addresses[0].allocation_id, None);
    assert_eq!(regional.addresses[0].availability_zone.as_deref(), Some("us-east-1b"));
}

#[tokio::test]
async fn nat_gateways_by_id_filter_on_the_id_and_no_ids_asks_nothing() {
    let by_id = mock!(aws_sdk_ec2::Client::describe_nat_gateways)
        .match_requests(|r| has_filter(r.filter(), "nat-gateway-id", &["nat-0aaa"]) && r.nat_gateway_ids().is_empty())
        .then_output(|| DescribeNatGatewaysOutput::builder().nat_gateways(zonal_nat()).build());
    let aws = ec2_only(&[&by_id]);

    let nats = aws.describe_nat_gateways(&NatSelector::Ids(vec!["nat-0aaa".into()])).await.unwrap();
    assert_eq!(nats.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), ["nat-0aaa"]);

    // An empty filter would list the whole region: the adapter must not send it.
    assert!(aws.describe_nat_gateways(&NatSelector::Ids(Vec::new())).await.unwrap().is_empty());
    assert_eq!(by_id.num_calls(), 1);
}

#[tokio::test]
async fn list_nat_gateways_sends_no_filter() {
    let all =
        mock!(aws_sdk_ec2::Client::describe_nat_gateways).match_requests(|r| r.filter().is_empty()).then_output(|| {
            DescribeNatGatewaysOutput::builder().nat_gateways(zonal_nat()).nat_gateways(regional_private_nat()).build()
        });
    let nats = ec2_only(&[&all]).list_nat_gateways().await.unwrap();
    assert_eq!(nats.len(), 2);
}

// ---------------------------------------------------------------------------------------------------
// Errors and retries

#[tokio::test]
async fn access_denied_names_the_iam_action() {
    let denied = mock!(aws_sdk_ec2::Client::describe_nat_gateways).then_error(|| {
        DescribeNatGatewaysError::generic(error(
            "UnauthorizedOperation",
            "You are not authorized to perform this operation.",
        ))
    });
    let start = mock!(aws_sdk_cloudwatchlogs::Client::start_query)
        .then_error(|| StartQueryError::generic(error("AccessDeniedException", "User is not authorized")));
    let metrics = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .then_error(|| GetMetricDataError::generic(error("AccessDenied", "not authorized")));
    let aws = aws(&[&denied], &[&metrics], &[&start]);

    let e = aws.list_nat_gateways().await.unwrap_err();
    assert_eq!(
        e,
        Error::AccessDenied {
            action: "ec2:DescribeNatGateways",
            message: "You are not authorized to perform this operation.".into()
        }
    );
    assert!(e.to_string().contains("ec2:DescribeNatGateways"));
    // Not retried: AccessDenied is not transient.
    assert_eq!(denied.num_calls(), 1);

    let e = aws.start_query(&query(1), 100).await.unwrap_err();
    assert!(matches!(e, Error::AccessDenied { action: "logs:StartQuery", .. }), "{e:?}");
    let e = aws.get_metric_data("nat-1", &MetricQuery::nat_defaults(), 0, 600, 60).await.unwrap_err();
    assert!(matches!(e, Error::AccessDenied { action: "cloudwatch:GetMetricData", .. }), "{e:?}");
}

fn vpc_output() -> DescribeVpcsOutput {
    let block = |cidr: &str, state: ec2::VpcCidrBlockStateCode| {
        ec2::VpcCidrBlockAssociation::builder()
            .cidr_block(cidr)
            .cidr_block_state(ec2::VpcCidrBlockState::builder().state(state).build())
            .build()
    };
    DescribeVpcsOutput::builder()
        .vpcs(
            ec2::Vpc::builder()
                .vpc_id("vpc-1")
                .cidr_block("10.0.0.0/16")
                .cidr_block_association_set(block("10.0.0.0/16", ec2::VpcCidrBlockStateCode::Associated))
                .cidr_block_association_set(block("100.64.0.0/16", ec2::VpcCidrBlockStateCode::Associated))
                .cidr_block_association_set(block("172.31.0.0/16", ec2::VpcCidrBlockStateCode::Disassociated))
                .ipv6_cidr_block_association_set(
                    ec2::VpcIpv6CidrBlockAssociation::builder()
                        .ipv6_cidr_block("2600:1f18:1::/56")
                        .ipv6_cidr_block_state(
                            ec2::VpcCidrBlockState::builder().state(ec2::VpcCidrBlockStateCode::Associated).build(),
                        )
                        .build(),
                )
                .build(),
        )
        .build()
}

#[tokio::test]
async fn throttling_is_retried_by_the_sdk_then_succeeds() {
    let vpcs = mock!(aws_sdk_ec2::Client::describe_vpcs)
        .sequence()
        .error(|| DescribeVpcsError::generic(error("RequestLimitExceeded", "Request limit exceeded.")))
        .times(2)
        .output(vpc_output)
        .build();
    let vpc = ec2_only(&[&vpcs]).describe_vpc("vpc-1").await.unwrap();
    assert_eq!(vpcs.num_calls(), 3);
    assert_eq!(vpc.id, "vpc-1");
    // Associated blocks only, primary first; IPv6 kept apart.
    assert_eq!(vpc.cidrs_v4, ["10.0.0.0/16".parse().unwrap(), "100.64.0.0/16".parse().unwrap()]);
    assert_eq!(vpc.cidrs_v6, ["2600:1f18:1::/56".parse().unwrap()]);
}

#[tokio::test]
async fn throttling_past_the_retries_is_reported_as_throttled() {
    let vpcs = mock!(aws_sdk_ec2::Client::describe_vpcs)
        .sequence()
        .error(|| DescribeVpcsError::generic(error("RequestLimitExceeded", "Request limit exceeded.")))
        .repeatedly()
        .build();
    let e = ec2_only(&[&vpcs]).describe_vpc("vpc-1").await.unwrap_err();
    assert_eq!(e, Error::Throttled { operation: "ec2:DescribeVpcs", message: "Request limit exceeded.".into() });
    assert_eq!(vpcs.num_calls(), MAX_ATTEMPTS as usize);
}

#[tokio::test]
async fn missing_vpc_is_not_found() {
    let by_error =
        mock!(aws_sdk_ec2::Client::describe_vpcs).match_requests(|r| r.vpc_ids() == ["vpc-gone"]).then_error(|| {
            DescribeVpcsError::generic(error("InvalidVpcID.NotFound", "The vpc ID 'vpc-gone' does not exist"))
        });
    let empty = mock!(aws_sdk_ec2::Client::describe_vpcs)
        .match_requests(|r| r.vpc_ids() == ["vpc-empty"])
        .then_output(|| DescribeVpcsOutput::builder().build());
    let aws = ec2_only(&[&by_error, &empty]);
    let e = aws.describe_vpc("vpc-gone").await.unwrap_err();
    assert!(matches!(&e, Error::NotFound { what, .. } if what == "VPC vpc-gone"), "{e:?}");
    let e = aws.describe_vpc("vpc-empty").await.unwrap_err();
    assert!(matches!(&e, Error::NotFound { what, .. } if what == "VPC vpc-empty"), "{e:?}");
}

#[derive(Debug)]
struct NoCredentials;

impl ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(Err(CredentialsError::not_loaded(
            "no providers in chain provided credentials",
        )))
    }
}

#[tokio::test]
async fn missing_credentials_say_how_to_configure_them() {
    let conf = aws_sdk_ec2::Config::builder()
        .with_test_defaults_v2()
        .credentials_provider(NoCredentials)
        .http_client(create_mock_http_client())
        .retry_config(fast_retries())
        .build();
    let cw = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, &[]);
    let logs = mock_client!(aws_sdk_cloudwatchlogs, RuleMode::MatchAny, &[]);
    let aws = SdkAws::from_clients(aws_sdk_ec2::Client::from_conf(conf), cw, logs);

    let e = aws.describe_regions().await.unwrap_err();
    let Error::NoCredentials { detail, hint } = &e else { panic!("expected NoCredentials, got {e:?}") };
    assert!(detail.contains("no providers in chain"), "{detail}");
    assert!(hint.contains("aws configure") && hint.contains("AWS_PROFILE") && hint.contains("aws sso login"));
}

// ---------------------------------------------------------------------------------------------------
// Topology

#[tokio::test]
async fn route_tables_keep_associations_and_only_nat_routes() {
    let rts = mock!(aws_sdk_ec2::Client::describe_route_tables)
        .match_requests(|r| has_filter(r.filters(), "vpc-id", &["vpc-1"]))
        .then_output(|| {
            let route = |cidr: &str| ec2::Route::builder().destination_cidr_block(cidr);
            DescribeRouteTablesOutput::builder()
                .route_tables(
                    ec2::RouteTable::builder()
                        .route_table_id("rtb-main")
                        .associations(ec2::RouteTableAssociation::builder().main(true).build())
                        .routes(route("10.0.0.0/16").gateway_id("local").build())
                        .routes(route("0.0.0.0/0").nat_gateway_id("nat-0aaa").build())
                        .build(),
                )
                .route_tables(
                    ec2::RouteTable::builder()
                        .route_table_id("rtb-b")
                        .associations(ec2::RouteTableAssociation::builder().main(false).subnet_id("subnet-b1").build())
                        .associations(ec2::RouteTableAssociation::builder().main(false).subnet_id("subnet-b2").build())
                        .routes(route("0.0.0.0/0").gateway_id("igw-1").build())
                        .routes(
                            ec2::Route::builder()
                                .destination_prefix_list_id("pl-63a5400a")
                                .nat_gateway_id("nat-0bbb")
                                .build(),
                        )
                        .routes(
                            ec2::Route::builder()
                                .destination_ipv6_cidr_block("64:ff9b::/96")
                                .nat_gateway_id("nat-0bbb")
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
    let tables = ec2_only(&[&rts]).describe_route_tables("vpc-1").await.unwrap();
    assert_eq!(tables.len(), 2);
    assert!(tables[0].main && tables[0].subnet_ids.is_empty());
    assert_eq!(
        tables[0].nat_routes,
        [NatRoute {
            destination: RouteDestination::Cidr("0.0.0.0/0".parse().unwrap()),
            nat_gateway_id: "nat-0aaa".into()
        }]
    );
    assert!(!tables[1].main);
    assert_eq!(tables[1].subnet_ids, ["subnet-b1", "subnet-b2"]);
    assert_eq!(
        tables[1].nat_routes,
        [
            NatRoute {
                destination: RouteDestination::PrefixList("pl-63a5400a".into()),
                nat_gateway_id: "nat-0bbb".into()
            },
            NatRoute {
                destination: RouteDestination::Cidr("64:ff9b::/96".parse().unwrap()),
                nat_gateway_id: "nat-0bbb".into()
            },
        ]
    );
}

#[tokio::test]
async fn prefix_list_cidrs_follow_both_apis_pages() {
    let lists = mock!(aws_sdk_ec2::Client::describe_managed_prefix_lists)
        .match_requests(|r| has_filter(r.filters(), "prefix-list-name", &["com.amazonaws.us-east-1.s3"]))
        .then_output(|| {
            DescribeManagedPrefixListsOutput::builder()
                .prefix_lists(
                    ec2::ManagedPrefixList::builder()
                        .prefix_list_id("pl-63a5400a")
                        .prefix_list_name("com.amazonaws.us-east-1.s3")
                        .build(),
                )
                .build()
        });
    let entry = |cidr: &str| ec2::PrefixListEntry::builder().cidr(cidr).build();
    let entries1 = mock!(aws_sdk_ec2::Client::get_managed_prefix_list_entries)
        .match_requests(|r| r.prefix_list_id() == Some("pl-63a5400a") && r.next_token().is_none())
        .then_output(move || {
            GetManagedPrefixListEntriesOutput::builder()
                .entries(entry("52.216.0.0/15"))
                .entries(entry("3.5.0.0/19"))
                .next_token("e2")
                .build()
        });
    let entries2 = mock!(aws_sdk_ec2::Client::get_managed_prefix_list_entries)
        .match_requests(|r| r.next_token() == Some("e2"))
        .then_output(move || GetManagedPrefixListEntriesOutput::builder().entries(entry("54.231.0.0/16")).build());
    let cidrs =
        ec2_only(&[&lists, &entries1, &entries2]).prefix_list_cidrs("com.amazonaws.us-east-1.s3").await.unwrap();
    let want: Vec<ipnet::IpNet> =
        ["52.216.0.0/15", "3.5.0.0/19", "54.231.0.0/16"].iter().map(|c| c.parse().unwrap()).collect();
    assert_eq!(cidrs, want);
}

#[tokio::test]
async fn flow_logs_join_pages_and_map_destinations() {
    let wanted = ["eni-0aa", "subnet-a", "vpc-1"];
    let fl = |id: &str| ec2::FlowLog::builder().flow_log_id(id);
    let page1 = mock!(aws_sdk_ec2::Client::describe_flow_logs)
        .match_requests(move |r| r.next_token().is_none() && has_filter(r.filter(), "resource-id", &wanted))
        .then_output(move || {
            DescribeFlowLogsOutput::builder()
                .flow_logs(
                    fl("fl-1")
                        .resource_id("eni-0aa")
                        .traffic_type(ec2::TrafficType::All)
                        .log_destination_type(ec2::LogDestinationType::CloudWatchLogs)
                        .log_group_name("/vpc/flow")
                        .log_format("${version} ${interface-id} ${srcaddr} ${dstaddr} ${pkt-dstaddr}")
                        .max_aggregation_interval(60)
                        .deliver_logs_status("SUCCESS")
                        .build(),
                )
                .next_token("f2")
                .build()
        });
    let page2 = mock!(aws_sdk_ec2::Client::describe_flow_logs)
        .match_requests(|r| r.next_token() == Some("f2"))
        .then_output(move || {
            DescribeFlowLogsOutput::builder()
                .flow_logs(
                    fl("fl-2")
                        .resource_id("vpc-1")
                        .traffic_type(ec2::TrafficType::Reject)
                        .log_destination_type(ec2::LogDestinationType::S3)
                        .log_destination("arn:aws:s3:::flow-bucket")
                        .log_format("${version} ${account-id}")
                        .max_aggregation_interval(600)
                        .deliver_logs_status("FAILED")
                        .deliver_logs_error_message("Access error")
                        .build(),
                )
                .build()
        });
    let ids: Vec<String> = wanted.iter().map(|s| (*s).to_owned()).collect();
    let aws = ec2_only(&[&page1, &page2]);
    let logs = aws.describe_flow_logs(&ids).await.unwrap();
    assert_eq!(logs.len(), 2);
    let (a, b) = (&logs[0], &logs[1]);
    assert_eq!((a.id.as_str(), a.resource_id.as_str()), ("fl-1", "eni-0aa"));
    assert_eq!((a.traffic_type, a.destination_type), (TrafficType::All, FlowLogDestinationType::CloudWatchLogs));
    assert_eq!(a.log_group.as_deref(), Some("/vpc/flow"));
    assert_eq!(a.max_aggregation_interval, 60);
    assert!(a.log_format.contains("${pkt-dstaddr}"));
    assert_eq!((a.deliver_status.as_deref(), a.deliver_error.as_deref()), (Some("SUCCESS"), None));
    assert_eq!((b.traffic_type, b.destination_type), (TrafficType::Reject, FlowLogDestinationType::S3));
    assert_eq!((b.log_group.as_deref(), b.destination.as_deref()), (None, Some("arn:aws:s3:::flow-bucket")));
    assert_eq!((b.max_aggregation_interval, b.deliver_error.as_deref()), (600, Some("Access error")));

    // No resources: no request (an empty filter would list every flow log of the region).
    assert!(aws.describe_flow_logs(&[]).await.unwrap().is_empty());
    assert_eq!((page1.num_calls(), page2.num_calls()), (1, 1));
}

#[tokio::test]
async fn regions_are_sorted() {
    let regions = mock!(aws_sdk_ec2::Client::describe_regions).then_output(|| {
        DescribeRegionsOutput::builder()
            .regions(ec2::Region::builder().region_name("us-west-2").build())
            .regions(ec2::Region::builder().region_name("eu-west-1").build())
            .build()
    });
    assert_eq!(ec2_only(&[&regions]).describe_regions().await.unwrap(), ["eu-west-1", "us-west-2"]);
}

// ---------------------------------------------------------------------------------------------------
// Metrics

fn result(id: &str, points: &[(i64, f64)]) -> MetricDataResult {
    let mut b = MetricDataResult::builder().id(id).status_code(StatusCode::Complete);
    for (t, v) in points {
        b = b.timestamps(DateTime::from_secs(*t)).values(*v);
    }
    b.build()
}

#[tokio::test]
async fn metric_data_is_asked_per_nat_gateway_and_joined_across_pages() {
    const T0: i64 = 1_790_000_000;
    let page1 = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| {
            let q = r.metric_data_queries();
            let stat0 = q[0].metric_stat().unwrap();
            let metric0 = stat0.metric().unwrap();
            r.next_token().is_none()
                && q.len() == 2
                && q[0].id() == Some("m0")
                && q[1].id() == Some("m1")
                && metric0.namespace() == Some("AWS/NATGateway")
                && metric0.metric_name() == Some("ErrorPortAllocation")
                && metric0.dimensions()[0].name() == Some("NatGatewayId")
                && metric0.dimensions()[0].value() == Some("nat-0aaa")
                && stat0.stat() == Some("Sum")
                && stat0.period() == Some(60)
                && q[1].metric_stat().unwrap().stat() == Some("Maximum")
                && r.scan_by() == Some(&ScanBy::TimestampAscending)
                && r.start_time().map(DateTime::secs) == Some(T0)
                && r.end_time().map(DateTime::secs) == Some(T0 + 600)
        })
        .then_output(|| {
            GetMetricDataOutput::builder()
                .metric_data_results(result("m0", &[(T0, 0.0), (T0 + 60, 12.0)]))
                .metric_data_results(result("m1", &[(T0, 51_000.0)]))
                .next_token("more")
                .build()
        });
    let page2 = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| r.next_token() == Some("more"))
        .then_output(|| {
            GetMetricDataOutput::builder()
                .metric_data_results(result("m1", &[(T0 + 60, 54_000.0), (T0 + 120, 55_000.0)]))
                .build()
        });
    let aws = aws(&[], &[&page1, &page2], &[]);
    let queries =
        [MetricQuery::new("ErrorPortAllocation", "Sum"), MetricQuery::new("ActiveConnectionCount", "Maximum")];
    let series = aws.get_metric_data("nat-0aaa", &queries, T0 as u64, T0 as u64 + 600, 60).await.unwrap();

    assert_eq!(series.len(), 2);
    assert_eq!((series[0].metric.as_str(), series[0].statistic.as_str()), ("ErrorPortAllocation", "Sum"));
    let t0 = T0 as u64;
    assert_eq!(series[0].points, [(t0, 0.0), (t0 + 60, 12.0)]);
    assert_eq!((series[1].metric.as_str(), series[1].statistic.as_str()), ("ActiveConnectionCount", "Maximum"));
    assert_eq!(series[1].points, [(t0, 51_000.0), (t0 + 60, 54_000.0), (t0 + 120, 55_000.0)]);
}

#[tokio::test]
async fn more_than_500_metric_queries_are_batched() {
    let first = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| r.metric_data_queries().len() == 500)
        .then_output(|| GetMetricDataOutput::builder().metric_data_results(result("m499", &[(600, 1.0)])).build());
    let second = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| r.metric_data_queries().len() == 1 && r.metric_data_queries()[0].id() == Some("m0"))
        .then_output(|| GetMetricDataOutput::builder().metric_data_results(result("m0", &[(660, 2.0)])).build());
    let aws = aws(&[], &[&first, &second], &[]);
    let queries: Vec<MetricQuery> = (0..501).map(|i| MetricQuery::new(&format!("M{i}"), "Sum")).collect();
    let series = aws.get_metric_data("nat-1", &queries, 0, 3600, 60).await.unwrap();
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    assert_eq!(series.len(), 501);
    assert_eq!((series[499].metric.as_str(), series[499].points.as_slice()), ("M499", &[(600, 1.0)][..]));
    assert_eq!((series[500].metric.as_str(), series[500].points.as_slice()), ("M500", &[(660, 2.0)][..]));
    assert!(series[0].points.is_empty());
}

#[tokio::test]
async fn metric_periods_are_checked_before_asking() {
    let aws = aws(&[], &[], &[]);
    let e = aws.get_metric_data("nat-1", &MetricQuery::nat_defaults(), 0, 600, 90).await.unwrap_err();
    assert!(matches!(e, Error::InvalidRequest { operation: "cloudwatch:GetMetricData", .. }), "{e:?}");
}

// ---------------------------------------------------------------------------------------------------
// Logs Insights

fn query(groups: usize) -> InsightsQuery {
    InsightsQuery {
        kind: QueryKind::TopDestinations,
        text: "fields @timestamp | limit 5".into(),
        log_groups: (0..groups).map(|i| format!("/vpc/flow-{i}")).collect(),
        start: 1_790_000_000,
        end: 1_790_003_600,
        destinations: Vec::new(),
    }
}

#[tokio::test]
async fn start_query_sends_groups_range_and_limit() {
    let start = mock!(aws_sdk_cloudwatchlogs::Client::start_query)
        .match_requests(|r| {
            r.log_group_names() == ["/vpc/flow-0", "/vpc/flow-1"]
                && r.query_string() == Some("fields @timestamp | limit 5")
                && r.start_time() == Some(1_790_000_000)
                && r.end_time() == Some(1_790_003_600)
                && r.limit() == Some(10_000)
        })
        .then_output(|| StartQueryOutput::builder().query_id("q-123").build());
    let aws = aws(&[], &[], &[&start]);
    assert_eq!(aws.start_query(&query(2), 10_000).await.unwrap(), "q-123");

    // Over the per-query log-group limit: refused locally, nothing sent.
    let e = aws.start_query(&query(51), 100).await.unwrap_err();
    assert!(matches!(e, Error::InvalidRequest { operation: "logs:StartQuery", .. }), "{e:?}");
    assert_eq!(start.num_calls(), 1);
}

fn row(dst: &str, ports: &str) -> Vec<ResultField> {
    vec![
        ResultField::builder().field("dstAddr").value(dst).build(),
        ResultField::builder().field("ports").value(ports).build(),
        ResultField::builder().field("@ptr").value("CmAKJgoi").build(),
    ]
}

fn stats(bytes: f64) -> QueryStatistics {
    QueryStatistics::builder().records_matched(10.0).records_scanned(1000.0).bytes_scanned(bytes).build()
}

#[tokio::test]
async fn query_results_go_from_running_with_partial_rows_to_complete() {
    let polls = mock!(aws_sdk_cloudwatchlogs::Client::get_query_results)
        .match_requests(|r| r.query_id() == Some("q-1") && r.next_token().is_none())
        .sequence()
        .output(|| {
            GetQueryResultsOutput::builder()
                .status(SdkQueryStatus::Running)
                .results(row("52.1.1.1", "40000"))
                .statistics(stats(1.0e6))
                .build()
        })
        .output(|| {
            GetQueryResultsOutput::builder()
                .status(SdkQueryStatus::Complete)
                .results(row("52.1.1.1", "55000"))
                .results(row("52.2.2.2", "9000"))
                .statistics(stats(2.0e6))
                .next_token("r2")
                .build()
        })
        .build();
    let page2 = mock!(aws_sdk_cloudwatchlogs::Client::get_query_results)
        .match_requests(|r| r.next_token() == Some("r2"))
        .then_output(|| {
            GetQueryResultsOutput::builder()
                .status(SdkQueryStatus::Complete)
                .results(row("52.3.3.3", "10"))
                .statistics(stats(2.0e6))
                .build()
        });
    let aws = aws(&[], &[], &[&polls, &page2]);

    let running = aws.get_query_results("q-1").await.unwrap();
    assert_eq!(running.status, QueryStatus::Running);
    assert!(!running.status.is_finished());
    assert_eq!(running.rows, [vec![("dstAddr".into(), "52.1.1.1".into()), ("ports".into(), "40000".into())]]);
    assert_eq!(running.bytes_scanned, 1.0e6);

    let done = aws.get_query_results("q-1").await.unwrap();
    assert_eq!(done.status, QueryStatus::Complete);
    let dsts: Vec<&str> =
        done.rows.iter().filter_map(|r| natgw_core::topology::QueryResults::field(r, "dstAddr")).collect();
    assert_eq!(dsts, ["52.1.1.1", "52.2.2.2", "52.3.3.3"]);
    assert!(done.rows.iter().all(|r| r.len() == 2), "@ptr is dropped");
    assert_eq!((done.records_matched, done.records_scanned, done.bytes_scanned), (10.0, 1000.0, 2.0e6));
    assert_eq!(page2.num_calls(), 1);
}

#[tokio::test]
async fn failed_timed_out_and_unknown_statuses_are_mapped() {
    let statuses = mock!(aws_sdk_cloudwatchlogs::Client::get_query_results)
        .sequence()
        .output(|| GetQueryResultsOutput::builder().status(SdkQueryStatus::Failed).build())
        .output(|| GetQueryResultsOutput::builder().status(SdkQueryStatus::Timeout).build())
        .output(|| GetQueryResultsOutput::builder().status(SdkQueryStatus::Cancelled).build())
        .output(|| GetQueryResultsOutput::builder().status(SdkQueryStatus::Scheduled).build())
        .output(|| GetQueryResultsOutput::builder().status(SdkQueryStatus::from("SomethingNew")).build())
        .build();
    let aws = aws(&[], &[], &[&statuses]);
    let mut seen = Vec::new();
    for _ in 0..5 {
        let r = aws.get_query_results("q-2").await.unwrap();
        assert!(r.rows.is_empty() && r.bytes_scanned == 0.0);
        seen.push(r.status);
    }
    assert_eq!(
        seen,
        [
            QueryStatus::Failed,
            QueryStatus::Timeout,
            QueryStatus::Cancelled,
            QueryStatus::Scheduled,
            QueryStatus::Unknown
        ]
    );
}

#[tokio::test]
async fn stop_query_reports_success() {
    let stop = mock!(aws_sdk_cloudwatchlogs::Client::stop_query)
        .match_requests(|r| r.query_id() == Some("q-9"))
        .then_output(|| StopQueryOutput::builder().success(true).build());
    assert!(aws(&[], &[], &[&stop]).stop_query("q-9").await.unwrap());
}

#[tokio::test]
async fn log_group_is_found_by_exact_name_across_prefix_pages() {
    let g = |name: &str| {
        LogGroup::builder()
            .log_group_name(name)
            .stored_bytes(2048)
            .log_group_class(aws_sdk_cloudwatchlogs::types::LogGroupClass::Standard)
    };
    let page1 = mock!(aws_sdk_cloudwatchlogs::Client::describe_log_groups)
        .match_requests(|r| r.log_group_name_prefix() == Some("/vpc/flow") && r.next_token().is_none())
        .then_output(move || {
            DescribeLogGroupsOutput::builder().log_groups(g("/vpc/flow-archive").build()).next_token("g2").build()
        });
    let page2 = mock!(aws_sdk_cloudwatchlogs::Client::describe_log_groups)
        .match_requests(|r| r.log_group_name_prefix() == Some("/vpc/flow") && r.next_token() == Some("g2"))
        .then_output(move || {
            DescribeLogGroupsOutput::builder().log_groups(g("/vpc/flow").retention_in_days(14).build()).build()
        });
    let none = mock!(aws_sdk_cloudwatchlogs::Client::describe_log_groups)
        .match_requests(|r| r.log_group_name_prefix() == Some("/nothing"))
        .then_output(|| DescribeLogGroupsOutput::builder().build());
    let aws = aws(&[], &[], &[&page1, &page2, &none]);

    let found = aws.describe_log_group("/vpc/flow").await.unwrap().unwrap();
    assert_eq!(found.name, "/vpc/flow");
    assert_eq!(
        (found.stored_bytes, found.retention_days, found.class.as_deref()),
        (Some(2048), Some(14), Some("STANDARD"))
    );
    assert_eq!(aws.describe_log_group("/nothing").await.unwrap(), None);
}

// ---------------------------------------------------------------------------------------------------
// FilterLogEvents

fn events(stream: &str, from: i64, n: usize) -> FilterLogEventsOutputBuilder {
    let mut b = FilterLogEventsOutputBuilder::default();
    for i in 0..n {
        let t = from + i as i64 * 1000;
        b = b.events(
            FilteredLogEvent::builder().log_stream_name(stream).timestamp(t).message(format!("record {t}")).build(),
        );
    }
    b
}

#[tokio::test]
async fn log_events_join_pages_within_the_range() {
    const START: u64 = 1_790_000_000;
    let ms = START as i64 * 1000;
    let page1 = mock!(aws_sdk_cloudwatchlogs::Client::filter_log_events)
        .match_requests(move |r| {
            r.log_group_name() == Some("/vpc/flow")
                && r.log_stream_name_prefix() == Some("eni-0aa")
                && r.log_stream_names().is_empty()
                && r.start_time() == Some(ms)
                && r.end_time() == Some(ms + 60_999)
                && r.next_token().is_none()
        })
        .then_output(move || events("eni-0aa-all", ms, 3).next_token("n1").build());
    let page2 = mock!(aws_sdk_cloudwatchlogs::Client::filter_log_events)
        .match_requests(|r| r.next_token() == Some("n1"))
        .then_output(move || events("eni-0aa-all", ms + 3000, 2).build());
    let aws = aws(&[], &[], &[&page1, &page2]);

    let got = aws
        .filter_log_events("/vpc/flow", &StreamSelector::Prefix("eni-0aa".into()), START, START + 60, 1000)
        .await
        .unwrap();
    assert!(!got.truncated);
    assert_eq!(got.events.len(), 5);
    assert_eq!(got.events[0].timestamp_ms, START * 1000);
    assert_eq!(got.events[4].timestamp_ms, START * 1000 + 4000);
    assert_eq!(got.events[4].message, format!("record {}", ms + 4000));
    assert_eq!(got.events[0].stream.as_deref(), Some("eni-0aa-all"));
}

#[tokio::test]
async fn log_events_stop_at_the_cap_and_say_so() {
    let page1 = mock!(aws_sdk_cloudwatchlogs::Client::filter_log_events)
        .match_requests(|r| r.next_token().is_none() && r.limit() == Some(4))
        .then_output(|| events("s", 0, 3).next_token("n1").build());
    let page2 = mock!(aws_sdk_cloudwatchlogs::Client::filter_log_events)
        .match_requests(|r| r.next_token() == Some("n1") && r.limit() == Some(1))
        .then_output(|| events("s", 3000, 1).next_token("n2").build());
    let aws = aws(&[], &[], &[&page1, &page2]);
    let got = aws.filter_log_events("/vpc/flow", &StreamSelector::All, 0, 60, 4).await.unwrap();
    assert_eq!(got.events.len(), 4);
    assert!(got.truncated);
    assert_eq!((page1.num_calls(), page2.num_calls()), (1, 1));
}

#[tokio::test]
async fn many_stream_names_are_sent_100_at_a_time() {
    let first = mock!(aws_sdk_cloudwatchlogs::Client::filter_log_events)
        .match_requests(|r| r.log_stream_names().len() == 100 && r.log_stream_names()[0] == "eni-0-all")
        .then_output(|| events("eni-0-all", 0, 2).build());
    let second = mock!(aws_sdk_cloudwatchlogs::Client::filter_log_events)
        .match_requests(|r| r.log_stream_names().len() == 50 && r.log_stream_names()[0] == "eni-100-all")
        .then_output(|| events("eni-100-all", 0, 1).build());
    let aws = aws(&[], &[], &[&first, &second]);
    let names: Vec<String> = (0..150).map(|i| format!("eni-{i}-all")).collect();
    let got = aws.filter_log_events("/vpc/flow", &StreamSelector::Names(names), 0, 60, 100).await.unwrap();
    assert_eq!(got.events.len(), 3);
    assert!(!got.truncated);
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
}

// ---------------------------------------------------------------------------------------------------
// Construction

#[tokio::test]
async fn options_override_the_standard_chain_and_regions_can_be_switched() {
    // Loading sends nothing: credentials are resolved on the first call.
    let options =
        AwsOptions { region: Some("eu-west-1".into()), profile: None, endpoint_url: Some("http://127.0.0.1:9".into()) };
    let aws = SdkAws::new(&options).await.unwrap();
    assert_eq!(aws.region().as_deref(), Some("eu-west-1"));
    assert_eq!(aws.with_region("ap-southeast-2").region().as_deref(), Some("ap-southeast-2"));
}
