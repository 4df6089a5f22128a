"""Seeds moto with a simulated NAT gateway incident for natgw's end-to-end tests.

Reads what natgw-testkit's simulator wrote (scenario.json, metrics.json, the NAT interface's flow log
in the custom format and its LogFormat) and creates, with boto3 straight against moto:

mode `diagnose`
  - a VPC with the scenario's CIDR blocks, the NAT gateway's public subnet and one private subnet per
    client subnet (/24s of the clients' addresses, in their AZs), an internet gateway and a public
    route table, an Elastic IP and the NAT gateway, a private route table sending 0.0.0.0/0 to it;
  - a log group and a flow log on the NAT gateway's interface (cloud-watch-logs, the custom
    LogFormat with pkt-dstaddr and tcp-flags, MaxAggregationInterval 60);
  - the simulator's NAT-interface records as events of the stream `<eni>-all` (event timestamp =
    record start in ms), with the simulator's NAT interface, private IP, VPC, subnet and AZ id
    rewritten to the ones moto assigned, so the records agree with DescribeNatGateways;
  - the simulator's per-minute AWS/NATGateway metrics (dimension NatGatewayId = moto's ID).
  With --records-between, only the records starting in that span are written (an exhaustion needs
  55,000 held ports, so >= 220,000 NAT-interface records, and moto's FilterLogEvents rescans the whole
  stream for each 10,000-event page: a slice keeps an end-to-end test to seconds).

mode `doctor`
  - the same topology and metrics but no flow log, plus two more NAT gateways (each in its own VPC)
    whose flow logs are not usable as they are: one VPC-level flow log delivered to S3 only, and one
    on the NAT interface in the default format with the 600 s aggregation interval.

Times: moto drops log events older than 14 days, so a scenario that does not end within the last
12 hours is shifted by a whole number of minutes to end 5-6 minutes before now (`shift_secs`).

Prints one JSON object on stdout (see `natgw_testkit::moto::Seeded`).
"""

from __future__ import annotations

import argparse
import gzip
import ipaddress
import json
import sys
import time
from typing import Any

import boto3

NAMESPACE = "AWS/NATGateway"
ROLE_ARN = "arn:aws:iam::123456789012:role/natgw-e2e-flow-logs"
# PutLogEvents limits: 10,000 events, 1,048,576 bytes (message bytes + 26 per event), 24 h span.
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD = 26
MAX_BATCH_SPAN_MS = 24 * 3600 * 1000
# PutMetricData: up to 1,000 datums per call.
MAX_METRIC_DATUMS = 1_000
RECENT_SECS = 12 * 3600
END_BEFORE_NOW_SECS = 300


def shift_for(end: int, now: int) -> int:
    """Seconds (a multiple of 60) to add so a scenario ending at `end` ends 5-6 min before `now`;
    0 when it already ended within the last 12 h. Mirrored by `natgw_testkit::moto::recent`."""
    if now - RECENT_SECS <= end <= now:
        return 0
    return (now - END_BEFORE_NOW_SECS - end) // 60 * 60


def read_text(path: str) -> str:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return f.read()


class Seeder:
    def __init__(self, endpoint: str, region: str):
        kw = dict(
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        self.ec2 = boto3.client("ec2", **kw)
        self.logs = boto3.client("logs", **kw)
        self.cw = boto3.client("cloudwatch", **kw)
        self.s3 = boto3.client("s3", **kw)
        self.region = region

    def tag(self, resource: str, name: str) -> None:
        self.ec2.create_tags(Resources=[resource], Tags=[{"Key": "Name", "Value": name}])

    def zone_ids(self) -> dict[str, str]:
        zones = self.ec2.describe_availability_zones()["AvailabilityZones"]
        return {z["ZoneName"]: z["ZoneId"] for z in zones}

    def topology(self, sc: dict, name: str) -> dict[str, Any]:
        """VPC, subnets, IGW, NAT gateway and route tables for a scenario; returns the IDs."""
        cidrs = sc["vpc_cidrs"]
        vpc = self.ec2.create_vpc(CidrBlock=cidrs[0])["Vpc"]["VpcId"]
        self.tag(vpc, name)
        for c in cidrs[1:]:
            self.ec2.associate_vpc_cidr_block(VpcId=vpc, CidrBlock=c)
        nat = sc["nat"]
        if len(nat["addresses"]) != 1:
            raise SystemExit(
                f"scenario {sc['name']!r} has {len(nat['addresses'])} NAT addresses; moto implements no "
                "secondary NAT addresses: use a one-address scenario"
            )
        public_cidr = str(ipaddress.ip_network(nat["addresses"][0] + "/24", strict=False))
        public = self.ec2.create_subnet(VpcId=vpc, CidrBlock=public_cidr, AvailabilityZone=nat["az"])["Subnet"]
        self.tag(public["SubnetId"], f"{name}-public-{nat['az']}")
        # One private subnet per client subnet: the /24 of its clients, in their AZ.
        private: dict[str, dict] = {}
        for c in sc["clients"]:
            net = str(ipaddress.ip_network(c["ip"] + "/24", strict=False))
            p = private.setdefault(c["subnet_id"], {"cidr": net, "az": c["az"]})
            if p["cidr"] != net:
                raise SystemExit(f"clients of {c['subnet_id']} span more than one /24: {p['cidr']}, {net}")
        private_ids = {}
        for sim_id, p in private.items():
            sub = self.ec2.create_subnet(VpcId=vpc, CidrBlock=p["cidr"], AvailabilityZone=p["az"])["Subnet"]
            self.tag(sub["SubnetId"], f"{name}-private-{p['az']}")
            private_ids[sim_id] = sub["SubnetId"]
        igw = self.ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        self.ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
        public_rt = self.ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        self.ec2.create_route(RouteTableId=public_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
        self.ec2.associate_route_table(RouteTableId=public_rt, SubnetId=public["SubnetId"])
        eip = self.ec2.allocate_address(Domain="vpc")
        created = self.ec2.create_nat_gateway(
            SubnetId=public["SubnetId"],
            AllocationId=eip["AllocationId"],
            TagSpecifications=[{"ResourceType": "natgateway", "Tags": [{"Key": "Name", "Value": name}]}],
        )["NatGateway"]
        nat_id = created["NatGatewayId"]
        # Read it back as a client would.
        gw = self.ec2.describe_nat_gateways(NatGatewayIds=[nat_id])["NatGateways"][0]
        addr = gw["NatGatewayAddresses"][0]
        private_rt = self.ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        self.tag(private_rt, f"{name}-private")
        self.ec2.create_route(RouteTableId=private_rt, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat_id)
        for sub in private_ids.values():
            self.ec2.associate_route_table(RouteTableId=private_rt, SubnetId=sub)
        return {
            "nat_gateway_id": nat_id,
            "vpc_id": vpc,
            "nat_interface": addr["NetworkInterfaceId"],
            "nat_private_ip": addr["PrivateIp"],
            "nat_public_ip": addr.get("PublicIp"),
            "nat_is_primary": addr.get("IsPrimary"),
            "nat_subnet_id": public["SubnetId"],
            "nat_az": nat["az"],
            "private_subnet_ids": sorted(private_ids.values()),
            "private_route_table_id": private_rt,
            "subnet_map": {nat["subnet_id"]: public["SubnetId"], **private_ids},
        }

    def flow_log(self, resource_type: str, resource_id: str, **kw: Any) -> str:
        out = self.ec2.create_flow_logs(
            ResourceType=resource_type, ResourceIds=[resource_id], TrafficType="ALL", **kw
        )
        if out.get("Unsuccessful"):
            raise SystemExit(f"CreateFlowLogs failed: {out['Unsuccessful']}")
        return out["FlowLogIds"][0]

    def interface_flow_log(self, eni: str, group: str, log_format: str | None, interval: int) -> str:
        """A new log group and a flow log of one interface into it (default format when None)."""
        self.logs.create_log_group(logGroupName=group)
        kw: dict[str, Any] = {"LogFormat": log_format} if log_format else {}
        return self.flow_log(
            "NetworkInterface",
            eni,
            LogDestinationType="cloud-watch-logs",
            LogGroupName=group,
            DeliverLogsPermissionArn=ROLE_ARN,
            MaxAggregationInterval=interval,
            **kw,
        )

    def put_records(self, group: str, stream: str, lines: list[str], start_field: int) -> int:
        """PutLogEvents in chronological batches within the API limits; returns the count written."""
        events = sorted(
            ({"timestamp": int(line.split(" ")[start_field]) * 1000, "message": line} for line in lines),
            key=lambda e: e["timestamp"],
        )
        self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
        written = 0
        i = 0
        while i < len(events):
            j, size = i, 0
            while j < len(events):
                n = len(events[j]["message"].encode()) + EVENT_OVERHEAD
                if (
                    j - i >= MAX_BATCH_EVENTS
                    or size + n > MAX_BATCH_BYTES
                    or events[j]["timestamp"] - events[i]["timestamp"] >= MAX_BATCH_SPAN_MS
                ):
                    break
                size += n
                j += 1
            out = self.logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events[i:j])
            rejected = out.get("rejectedLogEventsInfo")
            if rejected:
                raise SystemExit(f"PutLogEvents rejected events: {rejected}")
            written += j - i
            i = j
        return written

    def put_metrics(self, metrics: dict, nat_id: str, shift: int) -> int:
        datums = []
        for name, points in sorted(metrics["series"].items()):
            unit = "Bytes" if name.startswith("Bytes") else "Count"
            for minute, value in points:
                datums.append(
                    {
                        "MetricName": name,
                        "Dimensions": [{"Name": "NatGatewayId", "Value": nat_id}],
                        "Timestamp": minute + shift,
                        "Value": float(value),
                        "Unit": unit,
                    }
                )
        for i in range(0, len(datums), MAX_METRIC_DATUMS):
            self.cw.put_metric_data(Namespace=NAMESPACE, MetricData=datums[i : i + MAX_METRIC_DATUMS])
        return len(datums)


def rewrite(lines: list[str], header: list[str], mapping: dict[str, str], shift: int) -> list[str]:
    """Token-wise rewrite of simulator IDs/addresses to moto's, and start/end shifted by `shift`."""
    times = [header.index(f) for f in ("start", "end") if f in header]
    out = []
    for line in lines:
        tokens = [mapping.get(t, t) for t in line.split(" ")]
        if shift:
            for k in times:
                if tokens[k] != "-":
                    tokens[k] = str(int(tokens[k]) + shift)
        out.append(" ".join(tokens))
    return out


def doctor(s: Seeder, sc: dict, name: str, topo: dict, cases: list) -> None:
    """The doctor mode's gateways: the scenario's own without any flow log, one whose VPC logs to S3
    only, and one whose interface logs to CloudWatch Logs in the default format every 600 s."""

    def case(kind: str, t: dict, flow_log_id: str | None, detail: str) -> None:
        cases.append(
            {
                "case": kind,
                "nat_gateway_id": t["nat_gateway_id"],
                "vpc_id": t["vpc_id"],
                "nat_interface": t["nat_interface"],
                "flow_log_id": flow_log_id,
                "detail": detail,
            }
        )

    case("no-flow-log", topo, None, "no flow log on the NAT interface, its subnet or its VPC")
    # A VPC-level flow log delivered to S3 only: Logs Insights / FilterLogEvents cannot read it.
    t = s.topology(dict(sc, name=f"{sc['name']}-s3-only"), f"{name}-s3-only")
    t.pop("subnet_map")
    bucket = f"natgw-e2e-flow-logs-{t['vpc_id']}"
    s.s3.create_bucket(Bucket=bucket)
    flow = s.flow_log(
        "VPC", t["vpc_id"], LogDestinationType="s3", LogDestination=f"arn:aws:s3:::{bucket}", MaxAggregationInterval=60
    )
    case("s3-only", t, flow, f"VPC flow log to s3://{bucket}/ only (default format, 60 s)")
    # The NAT interface logged to CloudWatch Logs, but in the default format and every 600 s.
    t = s.topology(dict(sc, name=f"{sc['name']}-default-600s"), f"{name}-default-600s")
    t.pop("subnet_map")
    group = f"/natgw-e2e/{sc['name']}-default-600s/flow-logs"
    flow = s.interface_flow_log(t["nat_interface"], group, None, 600)
    case("default-format-600s", t, flow, f"NAT interface flow log to {group}, default format, 600 s aggregation")


def main() -> None:
    ap = argparse.ArgumentParser(description="Seed moto with a simulated NAT gateway incident.")
    ap.add_argument("--endpoint", required=True, help="moto's URL, http://127.0.0.1:PORT")
    ap.add_argument("--mode", choices=("diagnose", "doctor"), default="diagnose")
    ap.add_argument("--scenario", required=True, help="scenario.json")
    ap.add_argument("--metrics", required=True, help="metrics.json")
    ap.add_argument("--records", help="the NAT interface's flow log in the custom format (header first)")
    ap.add_argument("--format", help="its LogFormat (one line)")
    ap.add_argument(
        "--records-between",
        nargs=2,
        type=int,
        metavar=("FROM", "TO"),
        help="only records whose start is in [FROM, TO) (simulation times, before any shift)",
    )
    ap.add_argument("--now", type=int, default=None, help="unix seconds (default: the clock)")
    args = ap.parse_args()

    began = time.time()
    with open(args.scenario) as f:
        sc = json.load(f)
    with open(args.metrics) as f:
        metrics = json.load(f)
    now = args.now if args.now is not None else int(time.time())
    start = sc["start"]
    end = start + sc["duration_secs"]
    shift = shift_for(end, now)
    s = Seeder(args.endpoint, sc["region"])
    name = f"natgw-e2e-{sc['name']}"
    topo = s.topology(sc, name)
    subnet_map = topo.pop("subnet_map")
    result: dict[str, Any] = {
        "mode": args.mode,
        "scenario": sc["name"],
        **topo,
        "start": start + shift,
        "end": end + shift,
        "shift_secs": shift,
        "log_group": None,
        "log_stream": None,
        "flow_log_id": None,
        "log_format": None,
        "records_written": 0,
        "metric_datums": s.put_metrics(metrics, topo["nat_gateway_id"], shift),
        "doctor_cases": [],
    }

    if args.mode == "diagnose":
        if not args.records or not args.format:
            raise SystemExit("--records and --format are required in diagnose mode")
        log_format = read_text(args.format).strip()
        text = read_text(args.records).splitlines()
        header, lines = text[0].split(" "), [line for line in text[1:] if line]
        if args.records_between:
            lo, hi = args.records_between
            k = header.index("start")
            lines = [line for line in lines if lo <= int(line.split(" ", k + 1)[k]) < hi]
        group = f"/natgw-e2e/{sc['name']}/flow-logs"
        stream = f"{topo['nat_interface']}-all"
        flow_log_id = s.interface_flow_log(topo["nat_interface"], group, log_format, 60)
        nat = sc["nat"]
        mapping = {
            nat["interface_id"]: topo["nat_interface"],
            nat["addresses"][0]: topo["nat_private_ip"],
            nat["vpc_id"]: topo["vpc_id"],
            nat["az_id"]: s.zone_ids().get(nat["az"], nat["az_id"]),
            **subnet_map,
        }
        lines = rewrite(lines, header, mapping, shift)
        written = s.put_records(group, stream, lines, header.index("start"))
        result.update(
            log_group=group, log_stream=stream, flow_log_id=flow_log_id, log_format=log_format, records_written=written
        )
    else:
        doctor(s, sc, name, topo, result["doctor_cases"])
    result["seconds"] = round(time.time() - began, 2)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
