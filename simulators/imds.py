"""A simulated EC2 instance metadata service: identity documents signed like AWS signs them.

On AWS every instance reads its own identity document and signature from
http://169.254.169.254/latest/dynamic/instance-identity/{document,signature}
(IMDSv2: a session token from PUT /latest/api/token first); AWS signs with a
per-region RSA key and publishes the certificate. Here one key plays the
cloud's, `public_pem()` is what the control plane is configured with, and one
loopback HTTP server answers for every instance under a path prefix of its id:
an agent's `imds_url` is http://127.0.0.1:<port>/<instance id>. Test and
simulation code only.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from streamfleet.localproc import free_port

ACCOUNT_ID = "123456789012"
DOCUMENT_PATH = "/latest/dynamic/instance-identity/document"
SIGNATURE_PATH = "/latest/dynamic/instance-identity/signature"
TOKEN_PATH = "/latest/api/token"  # noqa: S105 - a path, not a secret


@dataclass
class IdentitySigner:
    """The cloud's signing key and the documents it has issued, by instance id."""

    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    documents: dict[str, str] = field(default_factory=dict)

    def public_pem(self) -> str:
        return (
            self.key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )

    def document(
        self, instance_id: str, region: str, private_ip: str, *, account_id: str = ACCOUNT_ID
    ) -> str:
        """The document of a launched instance (AWS's field names, pretty-printed like AWS)."""
        doc = {
            "accountId": account_id,
            "architecture": "x86_64",
            "availabilityZone": f"{region}a",
            "imageId": "ami-12c6146b",
            "instanceId": instance_id,
            "instanceType": "g4dn.2xlarge",
            "pendingTime": "2026-12-01T18:00:00Z",
            "privateIp": private_ip,
            "region": region,
            "version": "2017-09-30",
        }
        text = json.dumps(doc, indent=2)
        self.documents[instance_id] = text
        return text

    def sign(self, document: str) -> str:
        raw = self.key.sign(document.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
        return base64.b64encode(raw).decode("ascii")

    def identity(self, instance_id: str, region: str, private_ip: str) -> tuple[str, str]:
        """(document, signature) for an instance, as its IMDS would answer."""
        doc = self.document(instance_id, region, private_ip)
        return doc, self.sign(doc)


class LocalImds:
    """The HTTP face of an IdentitySigner on 127.0.0.1 (IMDSv2 tokens required)."""

    def __init__(self, signer: IdentitySigner, port: int | None = None) -> None:
        self.signer = signer
        self.port = port or free_port()
        self._tokens: set[str] = set()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url_for(self, instance_id: str) -> str:
        return f"http://127.0.0.1:{self.port}/{instance_id}"

    def start(self) -> LocalImds:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        imds = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet, like the real one

            def _send(self, status: int, body: str) -> None:
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:
                if not self.path.endswith(TOKEN_PATH):
                    self._send(404, "")
                    return
                token = secrets.token_urlsafe(24)
                imds._tokens.add(token)
                self._send(200, token)

            def do_GET(self) -> None:
                if self.headers.get("X-aws-ec2-metadata-token") not in imds._tokens:
                    self._send(401, "")
                    return
                iid, _, rest = self.path.lstrip("/").partition("/")
                document = imds.signer.documents.get(iid)
                if document is None:
                    self._send(404, "")
                elif "/" + rest == DOCUMENT_PATH:
                    self._send(200, document)
                elif "/" + rest == SIGNATURE_PATH:
                    self._send(200, imds.signer.sign(document))
                else:
                    self._send(404, "")

        return Handler
