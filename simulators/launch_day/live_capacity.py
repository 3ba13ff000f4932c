"""Capacity errors for the pool managers: a small front before moto's endpoint.

moto has no capacity model, and the pool managers are separate processes (no
botocore hooks to reach). Each pool manager talks to moto through this front;
while a region is refused, its Auto Scaling SetDesiredCapacity is answered
with AWS's InsufficientInstanceCapacity error (Auto Scaling's XML error
shape), which the pool manager retries, falls back on and reports as a
constraint. Every other call is passed to moto unchanged. Test code only.
"""

from __future__ import annotations

import re
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from streamfleet.localproc import free_port

_REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/autoscaling/")
ICE_XML = (
    '<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/">'
    "<Error><Type>Sender</Type><Code>InsufficientInstanceCapacity</Code>"
    "<Message>We currently do not have sufficient capacity in the Availability Zone you "
    "requested.</Message></Error><RequestId>launch-day-live</RequestId></ErrorResponse>"
)


class CapacityFront:
    def __init__(self, moto_url: str) -> None:
        self.moto_url = moto_url.rstrip("/")
        self.refused: set[str] = set()  # regions whose scale-out is refused now
        self.refusals = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> CapacityFront:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(front: CapacityFront) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _pass(self, method: str) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(size) if size else None
            match = _REGION.search(self.headers.get("Authorization", ""))
            if (
                body is not None
                and b"Action=SetDesiredCapacity" in body
                and match is not None
                and match.group(1) in front.refused
            ):
                front.refusals += 1
                self._send(400, ICE_XML.encode(), "text/xml")
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            req = urllib.request.Request(
                front.moto_url + self.path, data=body, headers=headers, method=method
            )
            try:
                with urllib.request.urlopen(req, timeout=30) as resp:
                    self._send(resp.status, resp.read(), resp.headers.get("Content-Type", ""))
            except urllib.error.HTTPError as exc:
                self._send(exc.code, exc.read(), exc.headers.get("Content-Type", ""))

        def _send(self, status: int, body: bytes, ctype: str) -> None:
            self.send_response(status)
            if ctype:
                self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            self._pass("POST")

        def do_GET(self) -> None:
            self._pass("GET")

    return Handler
