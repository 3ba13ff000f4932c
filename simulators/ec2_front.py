"""A fast DescribeInstances for fleets of thousands, over moto's own records.

The control plane asks EC2 about every registering instance
(control_plane/cloud.py: `DescribeInstances` by id). moto answers from the
right records but spends ~20 ms serializing one instance through its generic
botocore-shape serializer, which caps a simulated fleet's registration at ~45
a second. This front answers that one call from the same moto model (the
server in this process shares it: launches and terminations show at once)
with the few fields the control plane reads, in EC2's XML, so boto3 on the
control plane's side parses it as it parses AWS's. Every other call is
refused. Benchmark code only; tests use moto's own endpoint.
"""

from __future__ import annotations

import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

from streamfleet.localproc import free_port

_NS = "http://ec2.amazonaws.com/doc/2016-11-15/"
_REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/ec2/")


def _lookup(region: str, instance_id: str) -> tuple[str, int, str] | None:
    """(state name, state code, private IP) as moto records the instance, or None."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.ec2.models import ec2_backends

    inst = ec2_backends[DEFAULT_ACCOUNT_ID][region].get_instance_by_id(instance_id)
    if inst is None:
        return None
    state = inst.instance_state
    return str(state.name), int(state.code), str(inst.private_ip or "")


def describe_xml(found: list[tuple[str, str, int, str]]) -> str:
    items = "".join(
        f"<item><reservationId>r-front</reservationId><instancesSet><item>"
        f"<instanceId>{escape(iid)}</instanceId>"
        f"<instanceState><code>{code}</code><name>{escape(state)}</name></instanceState>"
        f"<privateIpAddress>{escape(ip)}</privateIpAddress>"
        f"</item></instancesSet></item>"
        for iid, state, code, ip in found
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><DescribeInstancesResponse xmlns="{_NS}">'
        f"<requestId>front</requestId><reservationSet>{items}</reservationSet>"
        f"</DescribeInstancesResponse>"
    )


def not_found_xml(ids: list[str]) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
        "<Code>InvalidInstanceID.NotFound</Code>"
        f"<Message>The instance IDs '{escape(', '.join(ids))}' do not exist</Message>"
        "</Error></Errors><RequestID>front</RequestID></Response>"
    )


class Ec2Front:
    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> Ec2Front:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler() -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as boto3 expects

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: str) -> None:
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "text/xml;charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = urllib.parse.parse_qs(self.rfile.read(length).decode("utf-8"))
            region = _REGION.search(self.headers.get("Authorization", ""))
            if form.get("Action") != ["DescribeInstances"] or region is None:
                self._send(
                    400, not_found_xml([]).replace("InvalidInstanceID.NotFound", "Unsupported")
                )
                return
            ids = [v[0] for k, v in sorted(form.items()) if k.startswith("InstanceId.")]
            found, missing = [], []
            for iid in ids:
                got = _lookup(region.group(1), iid)
                if got is None:
                    missing.append(iid)
                else:
                    found.append((iid, *got))
            if missing:
                self._send(400, not_found_xml(missing))
            else:
                self._send(200, describe_xml(found))

    return Handler
