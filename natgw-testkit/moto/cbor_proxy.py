"""CloudWatch Smithy RPC v2 CBOR -> awsJson1_0 translating proxy in front of moto.

`aws-sdk-cloudwatch` (Rust, >= 1.100) speaks only the `smithy.protocols#rpcv2Cbor` protocol:

    POST /service/GraniteServiceVersion20100801/operation/<Operation>
    smithy-protocol: rpc-v2-cbor, Content-Type: application/cbor, Accept: application/cbor
    x-amzn-query-mode: true (CloudWatch is @awsQueryCompatible)

moto 5.2 has no route for that path (HTTP 404) but emulates CloudWatch over awsJson1_0
(`X-Amz-Target: GraniteServiceVersion20100801.<Operation>`). This proxy decodes the CBOR input,
re-encodes it as awsJson1_0 using botocore's CloudWatch model for the shapes (CBOR tag-1 timestamps
become epoch seconds, byte strings base64), calls moto, and encodes moto's answer back as CBOR driven
by the output shape: timestamps as tag 1 (epoch seconds), doubles as CBOR floats (the Rust decoder
rejects an integer where a double is modelled), integers as integers. Responses carry
`smithy-protocol: rpc-v2-cbor` and `Content-Type: application/cbor`.

Errors become the rpcv2Cbor error shape: the HTTP status of moto's answer and a CBOR map with
`__type` (the error's shape ID, `com.amazonaws.cloudwatch#<Shape>`) and `message`, plus the
`x-amzn-query-error: <Code>;<Sender|Receiver>` header that @awsQueryCompatible clients read the
error code from.

GetMetricData pagination: moto never pages (it returns every datapoint and no NextToken). The proxy
asks moto for the whole answer and pages it itself like CloudWatch does: at most `MaxDatapoints`
(from the request, else `--max-datapoints`, CloudWatch's default 100,800) datapoints per page,
counted over all queries in order, `StatusCode: PartialData` for a query with points left, and an
opaque `NextToken`; a token the proxy did not issue gets CloudWatch's `InvalidNextToken` error.

Requests not on the rpcv2Cbor path are forwarded to moto unchanged.

Usage: python cbor_proxy.py --port PORT --moto http://127.0.0.1:MOTO_PORT [--max-datapoints N]
       [--exit-with-parent]
Prints `ready <port>` on stdout once listening.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.client
import json
import re
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import botocore.session
import cbor2

SERVICE = "GraniteServiceVersion20100801"
NAMESPACE = "com.amazonaws.cloudwatch"
PATH_RE = re.compile(r"^/service/(?P<service>[^/]+)/operation/(?P<op>[A-Za-z0-9]+)$")
CBOR = "application/cbor"
JSON_10 = "application/x-amz-json-1.0"
DEFAULT_MAX_DATAPOINTS = 100_800
TOKEN_PREFIX = "natgw-proxy:"
# moto picks the service and region from the SigV4 credential scope; hand-made requests get this one.
FALLBACK_AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIDMOTO/20260101/us-east-1/monitoring/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=0"
)


class ProxyError(Exception):
    """An error the proxy answers itself (status, modelled shape name or code, message)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Translator:
    """Shape-driven CBOR <-> awsJson conversion over botocore's CloudWatch model."""

    def __init__(self) -> None:
        self.model = botocore.session.get_session().get_service_model("cloudwatch")
        # Query error code (and shape name) -> error shape, for __type and x-amzn-query-error.
        self.errors: dict[str, Any] = {}
        for shape in self.model.error_shapes:
            self.errors[shape.name] = shape
            code = shape.metadata.get("error", {}).get("code")
            if code:
                self.errors.setdefault(code, shape)

    def operation(self, name: str):
        try:
            return self.model.operation_model(name)
        except Exception:  # botocore raises OperationNotFoundError
            raise ProxyError(404, "UnknownOperationException", f"unknown CloudWatch operation {name!r}")

    # --- CBOR request value -> awsJson value -------------------------------------------------
    def to_json(self, value: Any, shape) -> Any:
        if value is None:
            return None
        kind = shape.type_name if shape is not None else None
        if kind == "structure":
            members = shape.members
            return {k: self.to_json(v, members.get(k)) for k, v in value.items() if v is not None}
        if kind == "list":
            return [self.to_json(v, shape.member) for v in value]
        if kind == "map":
            return {k: self.to_json(v, shape.value) for k, v in value.items()}
        return plain_to_json(value)

    # --- awsJson value -> CBOR value ---------------------------------------------------------
    def to_cbor(self, value: Any, shape) -> Any:
        if value is None or shape is None:
            return value
        kind = shape.type_name
        if kind == "structure":
            members = shape.members
            return {k: self.to_cbor(v, members.get(k)) for k, v in value.items() if v is not None}
        if kind == "list":
            return [self.to_cbor(v, shape.member) for v in value]
        if kind == "map":
            return {k: self.to_cbor(v, shape.value) for k, v in value.items()}
        if kind == "timestamp":
            return cbor2.CBORTag(1, epoch_seconds(value))
        if kind in ("double", "float"):
            return float(value)
        if kind in ("integer", "long", "short", "byte"):
            return int(value)
        if kind == "blob":
            return base64.b64decode(value) if isinstance(value, str) else bytes(value)
        return value

    def error_body(self, code: str, message: str, status: int, op: str | None = None) -> tuple[dict, str]:
        """The rpcv2Cbor error map and the x-amzn-query-error header value for a code: the
        operation's own modelled error with that code first (GetDashboard's ResourceNotFound is
        DashboardNotFoundError), else any error shape of the service with that name or code."""
        shape = None
        if op:
            try:
                for s in self.model.operation_model(op).error_shapes:
                    if code in (s.name, s.metadata.get("error", {}).get("code")):
                        shape = s
                        break
            except Exception:
                pass
        shape = shape or self.errors.get(code)
        if shape is not None:
            meta = shape.metadata.get("error", {})
            query_code = meta.get("code", shape.name)
            fault = "Sender" if meta.get("senderFault") else "Receiver"
            return {"__type": f"{NAMESPACE}#{shape.name}", "message": message}, f"{query_code};{fault}"
        fault = "Sender" if status < 500 else "Receiver"
        return {"__type": code, "message": message}, f"{code};{fault}"


def plain_to_json(value: Any) -> Any:
    """Generic CBOR -> JSON for leaves (and anything outside the model)."""
    if isinstance(value, cbor2.CBORTag) and value.tag == 1:
        return value.value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.timestamp()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: plain_to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain_to_json(v) for v in value]
    return value


def epoch_seconds(value: Any) -> int | float:
    """awsJson timestamp (epoch number, or an ISO string some moto paths emit) -> epoch seconds."""
    if isinstance(value, (int, float)):
        seconds = value
    elif isinstance(value, str):
        try:
            seconds = float(value)
        except ValueError:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.timezone.utc)
            seconds = parsed.timestamp()
    elif isinstance(value, dt.datetime):
        seconds = value.timestamp()
    else:
        raise ValueError(f"not a timestamp: {value!r}")
    return int(seconds) if float(seconds).is_integer() else float(seconds)


def encode_token(offset: int) -> str:
    return TOKEN_PREFIX + base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_token(token: str) -> int:
    try:
        if not token.startswith(TOKEN_PREFIX):
            raise ValueError
        offset = json.loads(base64.urlsafe_b64decode(token[len(TOKEN_PREFIX) :]))["offset"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError
        return offset
    except Exception:
        raise ProxyError(400, "InvalidNextToken", "The service returned an invalid next token.")


def page_metric_data(output: dict, offset: int, page_size: int) -> dict:
    """One page of a full GetMetricData answer: datapoints [offset, offset + page_size) over all
    results in order; every result is listed (empty when none of its points fall on this page)."""
    results = output.get("MetricDataResults", [])
    total = sum(len(r.get("Timestamps", [])) for r in results)
    end = min(offset + page_size, total)
    paged = []
    seen = 0
    for r in results:
        ts, vals = r.get("Timestamps", []), r.get("Values", [])
        lo = min(max(offset - seen, 0), len(ts))
        hi = min(max(end - seen, 0), len(ts))
        item = dict(r)
        item["Timestamps"], item["Values"] = ts[lo:hi], vals[lo:hi]
        if hi < len(ts):
            item["StatusCode"] = "PartialData"
        paged.append(item)
        seen += len(ts)
    page = dict(output)
    page["MetricDataResults"] = paged
    page.pop("NextToken", None)
    if end < total:
        page["NextToken"] = encode_token(end)
    return page


class Proxy:
    def __init__(self, moto_url: str, max_datapoints: int):
        parsed = urllib.parse.urlparse(moto_url)
        self.moto_host = parsed.hostname or "127.0.0.1"
        self.moto_port = parsed.port or 80
        self.max_datapoints = max_datapoints
        self.tr = Translator()

    def moto(self, method: str, path: str, body: bytes, headers: dict[str, str]):
        conn = http.client.HTTPConnection(self.moto_host, self.moto_port, timeout=120)
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def call_json(self, op: str, payload: dict, auth: str) -> dict:
        headers = {
            "Content-Type": JSON_10,
            "X-Amz-Target": f"{SERVICE}.{op}",
            "Authorization": auth,
            "X-Amz-Date": dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ"),
        }
        status, rheaders, rbody = self.moto("POST", "/", json.dumps(payload).encode(), headers)
        try:
            data = json.loads(rbody) if rbody.strip() else {}
        except ValueError:
            data = {"message": rbody.decode("utf-8", "replace")}
        if status >= 300:
            code = rheaders.get("x-amzn-query-error", "").split(";")[0] or str(
                data.get("__type") or rheaders.get("x-amzn-errortype") or "InternalFailure"
            )
            code = code.split("#")[-1].split(":")[0]
            raise ProxyError(status, code, str(data.get("message") or data.get("Message") or ""))
        return data

    def handle_cbor(self, op: str, body: bytes, auth: str) -> dict:
        opm = self.tr.operation(op)
        try:
            request = cbor2.loads(body) if body else {}
        except Exception as e:
            raise ProxyError(400, "SerializationException", f"body is not CBOR: {e}")
        if not isinstance(request, dict):
            raise ProxyError(400, "SerializationException", "body is not a CBOR map")
        payload = self.tr.to_json(request, opm.input_shape) if opm.input_shape is not None else {}
        if op == "GetMetricData":
            token = payload.pop("NextToken", None)
            page_size = payload.pop("MaxDatapoints", None) or self.max_datapoints
            offset = decode_token(token) if token else 0
            output = page_metric_data(self.call_json(op, payload, auth), offset, int(page_size))
        else:
            output = self.call_json(op, payload, auth)
        return self.tr.to_cbor(output, opm.output_shape) if opm.output_shape is not None else {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "natgw-cbor-proxy"
    proxy: Proxy  # set on the class by main()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (BaseHTTPRequestHandler's name)
        sys.stderr.write("cbor-proxy: " + (format % args) + "\n")

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self._body()
        m = PATH_RE.match(self.path.split("?")[0])
        if not m:
            self._forward("POST", body)
            return
        request_id = self.headers.get("amz-sdk-invocation-id") or "natgw-cbor-proxy"
        base = {"smithy-protocol": "rpc-v2-cbor", "Content-Type": CBOR, "x-amzn-requestid": request_id}
        auth = self.headers.get("Authorization") or FALLBACK_AUTH
        try:
            if m.group("service") != SERVICE:
                raise ProxyError(404, "UnknownOperationException", f"unknown service {m.group('service')!r}")
            out = self.proxy.handle_cbor(m.group("op"), body, auth)
            self._send(200, cbor2.dumps(out), base)
        except ProxyError as e:
            err, query_error = self.proxy.tr.error_body(e.code, e.message, e.status, m.group("op"))
            self._send(e.status, cbor2.dumps(err), {**base, "x-amzn-query-error": query_error})
        except Exception as e:  # a proxy bug: say so in the protocol's terms
            err, query_error = self.proxy.tr.error_body("InternalFailure", f"cbor proxy: {e!r}", 500)
            self._send(500, cbor2.dumps(err), {**base, "x-amzn-query-error": query_error})

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/__proxy/health":
            self._send(200, b"ok", {"Content-Type": "text/plain"})
            return
        self._forward("GET", b"")

    def _forward(self, method: str, body: bytes) -> None:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
        try:
            status, rheaders, rbody = self.proxy.moto(method, self.path, body, headers)
        except OSError as e:
            self._send(502, f"moto unreachable: {e}".encode(), {"Content-Type": "text/plain"})
            return
        keep = {k: v for k, v in rheaders.items() if k not in ("content-length", "connection", "transfer-encoding")}
        self._send(status, rbody, keep)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--moto", required=True, help="moto's base URL, http://127.0.0.1:PORT")
    ap.add_argument("--max-datapoints", type=int, default=DEFAULT_MAX_DATAPOINTS)
    ap.add_argument("--exit-with-parent", action="store_true", help="exit once the parent process is gone")
    args = ap.parse_args()
    if args.exit_with_parent:
        import orphan_guard

        orphan_guard.install()
    Handler.proxy = Proxy(args.moto, args.max_datapoints)
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print(f"ready {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        threading.Thread(target=server.shutdown, daemon=True).start()


if __name__ == "__main__":
    main()
