"""Reads back what seed.py put into moto, the way natgw's adapter reads it, and prints one JSON object:

- `nat_gateways`: DescribeNatGateways of the gateway (boto3, straight to moto);
- `flow_logs`: DescribeFlowLogs with resource-id = the NAT interface, and with resource-id = the VPC;
- `log_events`: FilterLogEvents of the log group over [start, end) (all pages), the first message
  and the first one with log-status OK;
- `metrics`: GetMetricData through the CBOR proxy with requests laid out as aws-sdk-cloudwatch lays
  them out, following NextToken, per metric: points, sum, max, pages.

Usage: python inspect_moto.py --endpoint URL --cloudwatch-endpoint URL --nat-gateway-id ID
       [--log-group G [--dump FILE]] --start S --end E [--max-datapoints N]
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse

import boto3
import cbor2
from sdk_cbor import Tag1, post

METRICS = (
    ("ErrorPortAllocation", "Sum"),
    ("ActiveConnectionCount", "Maximum"),
    ("ConnectionAttemptCount", "Sum"),
    ("ConnectionEstablishedCount", "Sum"),
    ("IdleTimeoutCount", "Sum"),
    ("PacketsDropCount", "Sum"),
)


def metrics_via_proxy(port: int, nat_id: str, start: int, end: int, max_datapoints: int | None) -> dict:
    queries = [
        {
            "Id": f"m{i}",
            "MetricStat": {
                "Metric": {
                    "Namespace": "AWS/NATGateway",
                    "MetricName": name,
                    "Dimensions": [{"Name": "NatGatewayId", "Value": nat_id}],
                },
                "Period": 60,
                "Stat": stat,
            },
            "ReturnData": True,
        }
        for i, (name, stat) in enumerate(METRICS)
    ]
    # CloudWatch buckets from StartTime: align it to the minute as a careful client does.
    request = {
        "MetricDataQueries": queries,
        "StartTime": Tag1(float(start // 60 * 60)),
        "EndTime": Tag1(float(end)),
        "ScanBy": "TimestampAscending",
    }
    if max_datapoints:
        request["MaxDatapoints"] = max_datapoints
    values: dict[str, list[float]] = {q["Id"]: [] for q in queries}
    pages = 0
    while True:
        status, headers, body = post(port, "GetMetricData", request)
        if status != 200 or headers.get("smithy-protocol") != "rpc-v2-cbor":
            raise SystemExit(f"GetMetricData through the proxy: {status} {headers} {body[:300]!r}")
        page = cbor2.loads(body)
        pages += 1
        for r in page["MetricDataResults"]:
            values[r["Id"]].extend(r["Values"])
        token = page.get("NextToken")
        if not token:
            break
        request["NextToken"] = token
    out = {}
    for i, (name, _) in enumerate(METRICS):
        v = values[f"m{i}"]
        out[name] = {"points": len(v), "sum": sum(v), "max": max(v, default=0.0)}
    return {"pages": pages, "series": out}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--cloudwatch-endpoint", required=True)
    ap.add_argument("--nat-gateway-id", required=True)
    ap.add_argument("--log-group")
    ap.add_argument("--start", type=int, required=True)
    ap.add_argument("--end", type=int, required=True)
    ap.add_argument("--max-datapoints", type=int)
    ap.add_argument("--dump", help="write every event's message to this file, one per line")
    args = ap.parse_args()
    kw = dict(
        endpoint_url=args.endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    ec2, logs = boto3.client("ec2", **kw), boto3.client("logs", **kw)
    gw = ec2.describe_nat_gateways(NatGatewayIds=[args.nat_gateway_id])["NatGateways"][0]
    eni = gw["NatGatewayAddresses"][0]["NetworkInterfaceId"]
    by_eni = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [eni]}])["FlowLogs"]
    by_vpc = ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [gw["VpcId"]]}])["FlowLogs"]
    routes = ec2.describe_route_tables(Filters=[{"Name": "route.nat-gateway-id", "Values": [args.nat_gateway_id]}])
    result = {
        "nat_gateways": json.loads(json.dumps(gw, default=str)),
        "flow_logs": json.loads(json.dumps(by_eni + by_vpc, default=str)),
        "routed_subnets": sorted(
            a["SubnetId"] for rt in routes["RouteTables"] for a in rt.get("Associations", []) if a.get("SubnetId")
        ),
        "log_events": None,
        "metrics": None,
    }
    if args.log_group:
        count, first, first_ok, pages, token = 0, None, None, 0, None
        dump = open(args.dump, "w") if args.dump else None
        while True:
            req = dict(logGroupName=args.log_group, startTime=args.start * 1000, endTime=args.end * 1000 - 1)
            if token:
                req["nextToken"] = token
            page = logs.filter_log_events(**req)
            pages += 1
            count += len(page["events"])
            if first is None and page["events"]:
                first = page["events"][0]["message"]
            if first_ok is None:
                first_ok = next((e["message"] for e in page["events"] if " OK " in e["message"]), None)
            if dump:
                dump.writelines(e["message"] + "\n" for e in page["events"])
            token = page.get("nextToken")
            if not token:
                break
        if dump:
            dump.close()
        result["log_events"] = {"count": count, "pages": pages, "first_message": first, "first_ok_message": first_ok}
    port = urllib.parse.urlparse(args.cloudwatch_endpoint).port
    result["metrics"] = metrics_via_proxy(port, args.nat_gateway_id, args.start, args.end, args.max_datapoints)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
