"""Tests of cbor_proxy.py against a real moto_server, with requests built byte for byte as
aws-sdk-cloudwatch (Rust, aws-smithy-cbor) builds them: structures as indefinite-length maps,
lists as definite-length arrays, timestamps as tag 1 + float64, the SDK's headers.

Run: <venv>/bin/python -m unittest test_cbor_proxy   (from this directory; `natgw-testkit`'s
`moto` integration test runs it too).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import socket
import struct
import subprocess
import sys
import time
import unittest
import urllib.request

import cbor2
from sdk_cbor import SERVICE, Tag1, post, sdk_cbor

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.dirname(sys.executable)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except urllib.error.HTTPError:
            return  # answering
        except OSError:
            if time.time() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout} s")
            time.sleep(0.1)


class ProxyTest(unittest.TestCase):
    procs: list[subprocess.Popen] = []

    @classmethod
    def setUpClass(cls) -> None:
        cls.moto_port, cls.proxy_port = free_port(), free_port()
        cls.procs = [
            subprocess.Popen(
                [os.path.join(BIN, "moto_server"), "-H", "127.0.0.1", "-p", str(cls.moto_port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            subprocess.Popen(
                [
                    sys.executable,
                    os.path.join(HERE, "cbor_proxy.py"),
                    "--port",
                    str(cls.proxy_port),
                    "--moto",
                    f"http://127.0.0.1:{cls.moto_port}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
        ]
        wait_http(f"http://127.0.0.1:{cls.moto_port}/moto-api/")
        wait_http(f"http://127.0.0.1:{cls.proxy_port}/__proxy/health")
        cls.now = int(time.time()) // 60 * 60
        # Five minutes of one NAT gateway's metrics, via CBOR PutMetricData.
        data = []
        for i in range(5):
            t = float(cls.now - 600 + 60 * i)
            dims = [{"Name": "NatGatewayId", "Value": "nat-0proxytest"}]
            data.append({"MetricName": "ErrorPortAllocation", "Dimensions": dims, "Timestamp": Tag1(t), "Value": float(i), "Unit": "Count"})
            data.append({"MetricName": "ActiveConnectionCount", "Dimensions": dims, "Timestamp": Tag1(t), "Value": 1000.0 + i, "Unit": "Count"})
        status, headers, body = cls.cbor("PutMetricData", {"Namespace": "AWS/NATGateway", "MetricData": data})
        assert status == 200, (status, body)

    @classmethod
    def tearDownClass(cls) -> None:
        for p in cls.procs:
            p.kill()
            p.wait()

    @classmethod
    def cbor(cls, op: str, payload: dict, port: int | None = None):
        return post(port or cls.proxy_port, op, payload)

    def query(self, **extra) -> dict:
        q = {
            "MetricDataQueries": [
                {
                    "Id": name.lower(),
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/NATGateway",
                            "MetricName": name,
                            "Dimensions": [{"Name": "NatGatewayId", "Value": "nat-0proxytest"}],
                        },
                        "Period": 60,
                        "Stat": stat,
                    },
                    "ReturnData": True,
                }
                for name, stat in (("ErrorPortAllocation", "Sum"), ("ActiveConnectionCount", "Maximum"))
            ],
            "StartTime": Tag1(float(self.now - 900)),
            "EndTime": Tag1(float(self.now)),
            "ScanBy": "TimestampAscending",
        }
        q.update(extra)
        return q

    def test_get_metric_data_speaks_rpcv2_cbor(self) -> None:
        status, headers, body = self.cbor("GetMetricData", self.query())
        self.assertEqual(status, 200, body)
        self.assertEqual(headers["smithy-protocol"], "rpc-v2-cbor")
        self.assertEqual(headers["content-type"], "application/cbor")
        out = cbor2.loads(body)
        results = {r["Id"]: r for r in out["MetricDataResults"]}
        self.assertNotIn("NextToken", out)
        err = results["errorportallocation"]
        self.assertEqual(err["StatusCode"], "Complete")
        self.assertEqual(err["Values"], [0.0, 1.0, 2.0, 3.0, 4.0])
        self.assertTrue(all(isinstance(v, float) for v in err["Values"]), "doubles must be CBOR floats")
        # Tag 1 (cbor2 decodes it to an aware datetime) with an unsigned 32-bit epoch-seconds value.
        self.assertIn(b"\xc1\x1a" + struct.pack(">I", self.now - 600), body)
        self.assertEqual(
            [int(t.timestamp()) for t in err["Timestamps"]], [self.now - 600 + 60 * i for i in range(5)]
        )
        self.assertEqual(results["activeconnectioncount"]["Values"], [1000.0, 1001.0, 1002.0, 1003.0, 1004.0])

    def test_get_metric_data_pages_with_next_token(self) -> None:
        pages, token = [], None
        while True:
            extra = {"MaxDatapoints": 3}
            if token:
                extra["NextToken"] = token
            status, _, body = self.cbor("GetMetricData", self.query(**extra))
            self.assertEqual(status, 200, body)
            page = cbor2.loads(body)
            pages.append(page)
            token = page.get("NextToken")
            if not token:
                break
        self.assertEqual(len(pages), 4)  # 10 datapoints, 3 per page
        merged: dict[str, list] = {}
        for page in pages:
            self.assertLessEqual(sum(len(r["Values"]) for r in page["MetricDataResults"]), 3)
            for r in page["MetricDataResults"]:
                merged.setdefault(r["Id"], []).extend(r["Values"])
        self.assertEqual(merged["errorportallocation"], [0.0, 1.0, 2.0, 3.0, 4.0])
        self.assertEqual(merged["activeconnectioncount"], [1000.0, 1001.0, 1002.0, 1003.0, 1004.0])
        first = {r["Id"]: r["StatusCode"] for r in pages[0]["MetricDataResults"]}
        self.assertEqual(first["errorportallocation"], "PartialData")
        last = {r["Id"]: r["StatusCode"] for r in pages[-1]["MetricDataResults"]}
        self.assertEqual(set(last.values()), {"Complete"})

    def test_invalid_next_token_is_a_modelled_error(self) -> None:
        status, headers, body = self.cbor("GetMetricData", self.query(NextToken="bogus"))
        self.assertEqual(status, 400)
        self.assertEqual(headers["smithy-protocol"], "rpc-v2-cbor")
        self.assertEqual(headers["content-type"], "application/cbor")
        self.assertEqual(headers["x-amzn-query-error"], "InvalidNextToken;Sender")
        err = cbor2.loads(body)
        self.assertEqual(err["__type"], "com.amazonaws.cloudwatch#InvalidNextToken")
        self.assertTrue(err["message"])

    def test_moto_validation_error_comes_back_as_cbor(self) -> None:
        status, headers, body = self.cbor(
            "GetMetricData", {"MetricDataQueries": [{"Id": "a"}], "StartTime": Tag1(1.0), "EndTime": Tag1(2.0)}
        )
        self.assertEqual(status, 400)
        self.assertEqual(headers["x-amzn-query-error"], "ValidationError;Sender")
        err = cbor2.loads(body)
        # moto's ValidationError is the model's ValidationException shape (query code ValidationError).
        self.assertEqual(err["__type"], "com.amazonaws.cloudwatch#ValidationException")
        self.assertIn("MetricStat", err["message"])

    def test_modelled_error_uses_shape_id_and_query_code(self) -> None:
        status, headers, body = self.cbor("GetDashboard", {"DashboardName": "nope"})
        self.assertEqual(status, 404)
        self.assertEqual(headers["x-amzn-query-error"], "ResourceNotFound;Sender")
        self.assertEqual(cbor2.loads(body)["__type"], "com.amazonaws.cloudwatch#DashboardNotFoundError")

    def test_a_chunked_body_is_read_whole(self) -> None:
        body = sdk_cbor(self.query())
        conn = http.client.HTTPConnection("127.0.0.1", self.proxy_port, timeout=30)
        headers = {"content-type": "application/cbor", "smithy-protocol": "rpc-v2-cbor", "accept": "application/cbor"}
        conn.request(
            "POST",
            f"/service/{SERVICE}/operation/GetMetricData",
            body=iter([body[:7], body[7:]]),
            headers=headers,
            encode_chunked=True,
        )
        resp = conn.getresponse()
        out = cbor2.loads(resp.read())
        conn.close()
        self.assertEqual(resp.status, 200)
        self.assertEqual(len(out["MetricDataResults"]), 2)

    def test_botocores_own_rpcv2_cbor_client_agrees(self) -> None:
        """botocore implements rpcv2Cbor too (AWS's code, independent of the Rust SDK and of this
        proxy); forced to use it, its serializer, parser, paginator and error handling must work."""
        import boto3
        import botocore.exceptions
        import botocore.model

        saved = botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS
        botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS = ("smithy-rpc-v2-cbor",) + tuple(
            p for p in saved if p != "smithy-rpc-v2-cbor"
        )
        try:
            cw = boto3.session.Session().client(
                "cloudwatch",
                endpoint_url=f"http://127.0.0.1:{self.proxy_port}",
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        finally:
            botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS = saved
        self.assertEqual(cw.meta.service_model.resolved_protocol, "smithy-rpc-v2-cbor")
        sent: list[tuple[str, str]] = []
        cw.meta.events.register(
            "before-send",
            lambda request, **_: sent.append((request.url, request.headers.get("smithy-protocol"))),
        )
        start = dt.datetime.fromtimestamp(self.now - 900, dt.timezone.utc)
        cw.put_metric_data(
            Namespace="AWS/NATGateway",
            MetricData=[
                {
                    "MetricName": "IdleTimeoutCount",
                    "Dimensions": [{"Name": "NatGatewayId", "Value": "nat-0proxytest"}],
                    "Timestamp": start + dt.timedelta(seconds=60 * i),
                    "Value": float(10 * i),
                }
                for i in range(4)
            ],
        )
        query = self.query()
        query["MetricDataQueries"][0]["MetricStat"]["Metric"]["MetricName"] = "IdleTimeoutCount"
        del query["MetricDataQueries"][1]
        query.update(StartTime=start, EndTime=start + dt.timedelta(minutes=15), MaxDatapoints=3)
        pages = list(cw.get_paginator("get_metric_data").paginate(**query))
        self.assertEqual(len(pages), 2)
        values = [v for p in pages for r in p["MetricDataResults"] for v in r["Values"]]
        stamps = [t for p in pages for r in p["MetricDataResults"] for t in r["Timestamps"]]
        self.assertEqual(values, [0.0, 10.0, 20.0, 30.0])
        self.assertEqual(stamps[0], start)
        with self.assertRaises(cw.exceptions.InvalidNextToken):
            cw.get_metric_data(**query, NextToken="bogus")
        # The query-compatible code from x-amzn-query-error (botocore then picks the ResourceNotFound
        # class: DashboardNotFoundError shares that code).
        with self.assertRaises(botocore.exceptions.ClientError) as caught:
            cw.get_dashboard(DashboardName="nope")
        self.assertEqual(caught.exception.response["Error"]["Code"], "ResourceNotFound")
        self.assertEqual(caught.exception.response["ResponseMetadata"]["HTTPStatusCode"], 404)
        self.assertTrue(sent and all(u.split("/service/")[1].startswith(SERVICE) for u, _ in sent), sent)
        # botocore keeps header values as it set them (bytes here).
        self.assertEqual({h.decode() if isinstance(h, bytes) else h for _, h in sent}, {"rpc-v2-cbor"})

    def test_unknown_operation(self) -> None:
        status, headers, body = self.cbor("NoSuchOperation", {})
        self.assertEqual(status, 404)
        self.assertEqual(headers["smithy-protocol"], "rpc-v2-cbor")
        self.assertEqual(cbor2.loads(body)["__type"], "UnknownOperationException")

    def test_moto_itself_lacks_rpcv2_cbor(self) -> None:
        # Why the proxy exists: the same request straight to moto is not routed.
        status, _, _ = self.cbor("GetMetricData", self.query(), port=self.moto_port)
        self.assertEqual(status, 404)

    def test_other_requests_pass_through(self) -> None:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.proxy_port}/",
            data=json.dumps({"Namespace": "AWS/NATGateway"}).encode(),
            method="POST",
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": f"{SERVICE}.ListMetrics",
                "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDTEST/20260101/us-east-1/monitoring/aws4_request, "
                "SignedHeaders=host, Signature=00",
            },
        )
        out = json.loads(urllib.request.urlopen(req, timeout=30).read())
        names = {m["MetricName"] for m in out["Metrics"]}
        self.assertIn("ErrorPortAllocation", names)


if __name__ == "__main__":
    unittest.main()
