"""CBOR exactly as aws-sdk-cloudwatch (Rust, aws-smithy-cbor) writes a request body: structures as
indefinite-length maps (`begin_map` ... `end`), lists as definite-length arrays, timestamps as tag 1
followed by a float64, doubles as float64. Used to hand-make SDK-like requests to the CBOR proxy.
"""

from __future__ import annotations

import datetime as dt
import http.client
import struct

SERVICE = "GraniteServiceVersion20100801"


class Tag1:
    """A timestamp, written as tag 1 + float64 like aws-smithy-cbor's Encoder::timestamp."""

    def __init__(self, secs: float):
        self.secs = secs


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    if n < 0x100:
        return bytes([major << 5 | 24, n])
    if n < 0x10000:
        return bytes([major << 5 | 25]) + struct.pack(">H", n)
    if n < 0x100000000:
        return bytes([major << 5 | 26]) + struct.pack(">I", n)
    return bytes([major << 5 | 27]) + struct.pack(">Q", n)


def sdk_cbor(v) -> bytes:
    if isinstance(v, dict):  # a structure: begin_map() ... end()
        return b"\xbf" + b"".join(sdk_cbor(k) + sdk_cbor(x) for k, x in v.items()) + b"\xff"
    if isinstance(v, list):  # encoder.array(len)
        return _head(4, len(v)) + b"".join(sdk_cbor(x) for x in v)
    if isinstance(v, Tag1):
        return b"\xc1\xfb" + struct.pack(">d", v.secs)
    if isinstance(v, bool):
        return b"\xf5" if v else b"\xf4"
    if isinstance(v, int):
        return _head(0, v) if v >= 0 else _head(1, -1 - v)
    if isinstance(v, float):
        return b"\xfb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        return _head(3, len(b)) + b
    raise TypeError(v)


def post(port: int, op: str, payload: dict, host: str = "127.0.0.1") -> tuple[int, dict[str, str], bytes]:
    """POSTs `payload` as aws-sdk-cloudwatch would (path, headers, body layout); returns the status,
    the lower-cased response headers and the body."""
    body = sdk_cbor(payload)
    amz_date = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    headers = {
        "content-type": "application/cbor",
        "smithy-protocol": "rpc-v2-cbor",
        "accept": "application/cbor",
        "x-amzn-query-mode": "true",
        "content-length": str(len(body)),
        "x-amz-user-agent": "aws-sdk-rust/1.3.9 api/cloudwatch/1.140.0 os/linux lang/rust/1.94.1",
        "user-agent": "aws-sdk-rust/1.3.9 os/linux lang/rust/1.94.1",
        "amz-sdk-invocation-id": "5f3d7c2e-0000-4000-8000-000000000001",
        "amz-sdk-request": "attempt=1; max=5",
        "x-amz-date": amz_date,
        "authorization": (
            f"AWS4-HMAC-SHA256 Credential=AKIDTEST/{amz_date[:8]}/us-east-1/monitoring/aws4_request, "
            "SignedHeaders=accept;content-length;content-type;host;smithy-protocol;x-amz-date, Signature=00"
        ),
    }
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        conn.request("POST", f"/service/{SERVICE}/operation/{op}", body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()
