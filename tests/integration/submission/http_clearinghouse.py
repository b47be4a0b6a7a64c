"""A real HTTPS clearinghouse file API on 127.0.0.1 for the HTTP transport tests (a test peer).

stdlib ``ThreadingHTTPServer`` behind TLS with a throwaway CA made here (cryptography).
It keeps uploads in ``root/outbound`` and serves ``root/inbound``, the same folder pair
the simulator answers in, so the send + receive path runs as it does over SFTP:

- ``POST /api/v1/outbound`` (multipart, field ``file``): stores the file, answers 201
  ``{"name", "size", "sha256"}``; an ``Idempotency-Key`` seen before answers the first
  upload's record again and stores nothing;
- ``GET /api/v1/outbound/<name>``: that record, or 404;
- ``GET /api/v1/inbound``: ``{"files": [{"name", "size"}]}``; ``GET``/``DELETE`` one file.

Bearer or basic credentials are checked on every request (401 otherwise). Knobs for
the failure tests: ``fail_next`` (statuses to answer instead, in order, before doing
anything), ``fail_after_store`` (store the upload, then answer 500: the lost answer),
``delay_seconds`` (answer late) and ``stream_without_length`` (no Content-Length).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TOKEN = "synthetic-bearer-token-5f0c"
USERNAME = "claims"
PASSWORD = "synthetic-basic-password-9a1e"
PREFIX = "/api/v1"


@dataclass
class HttpClearinghouse:
    outbound: Path  # uploads land here (the simulator's outbox)
    inbound: Path  # files served to us (the simulator's inbox)
    port: int = 0
    ca_file: str = ""
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    uploads_by_key: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_next: list[int] = field(default_factory=list)
    fail_after_store: int = 0
    delay_seconds: float = 0.0
    stream_without_length: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}{PREFIX}"

    def route_settings(self, *, auth: str = "bearer", **overrides: Any) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "base_url": self.base_url,
            "auth": auth,
            "ca_bundle": self.ca_file,
            "timeout_seconds": 5,
            "max_attempts": 3,
            "backoff_seconds": 0.05,
            "retry_base_seconds": 1,
        }
        if auth == "bearer":
            settings["token_env"] = "CH_HTTP_TOKEN"
        else:
            settings.update(username=USERNAME, password_env="CH_HTTP_PASSWORD")
        settings.update(overrides)
        return settings

    def calls(self, method: str, path: str = "") -> int:
        return sum(1 for m, p, _ in self.requests if m == method and p.startswith(PREFIX + path))


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a 127.0.0.1 server certificate it signed: (ca.pem, server.pem, server.key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "synthetic test clearinghouse CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


def _handler(peer: HttpClearinghouse) -> type[BaseHTTPRequestHandler]:
    expected = {
        f"Bearer {TOKEN}",
        "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode(),
    }

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _answer(self, status: int, body: bytes = b"", content_type: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            if self.stream_body(status):
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True
                return
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def stream_body(self, status: int) -> bool:
            return peer.stream_without_length and status == 200 and self.command == "GET"

        def _json(self, status: int, value: Any) -> None:
            self._answer(status, json.dumps(value).encode())

        def _begin(self) -> bool:
            """Record the call, check credentials, apply the failure knobs; False when answered."""
            length = int(self.headers.get("Content-Length") or 0)
            self.body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
            with peer.lock:
                peer.requests.append((self.command, self.path, headers))
                failure = peer.fail_next.pop(0) if peer.fail_next else None
            if self.headers.get("Authorization") not in expected:
                self._json(401, {"error": "unauthorized"})
                return False
            if peer.delay_seconds:
                time.sleep(peer.delay_seconds)
            if failure is not None:
                self._json(failure, {"error": "injected failure"})
                return False
            return True

        def _name(self, folder: str) -> str | None:
            prefix = f"{PREFIX}/{folder}/"
            if not self.path.startswith(prefix):
                return None
            name = unquote(self.path[len(prefix) :])
            return None if "/" in name or name.startswith(".") or not name else name

        def do_POST(self) -> None:
            if not self._begin():
                return
            if self.path != f"{PREFIX}/outbound":
                return self._json(404, {"error": "no such endpoint"})
            message = BytesParser(policy=HTTP).parsebytes(
                f"Content-Type: {self.headers.get('Content-Type')}\r\n\r\n".encode() + self.body
            )
            part = next(
                (
                    p
                    for p in message.iter_parts()
                    if p.get_param("name", header="content-disposition") == "file"
                ),
                None,
            )
            if part is None or not part.get_filename():
                return self._json(400, {"error": "multipart field 'file' with a filename expected"})
            name, content = part.get_filename(), part.get_payload(decode=True)
            key = self.headers.get("Idempotency-Key")
            with peer.lock:
                record = peer.uploads_by_key.get(key) if key else None
                if record is None:
                    temp = peer.outbound / f".{name}.part"
                    temp.write_bytes(content)
                    temp.replace(peer.outbound / name)
                    record = {
                        "name": name,
                        "size": len(content),
                        "sha256": hashlib.sha256(content).hexdigest(),
                    }
                    if key:
                        peer.uploads_by_key[key] = record
                    if peer.fail_after_store:
                        peer.fail_after_store -= 1
                        return self._json(500, {"error": "stored, but the answer was lost"})
            self._json(201, record)

        def do_GET(self) -> None:
            if not self._begin():
                return
            if self.path == f"{PREFIX}/inbound":
                files = sorted(p for p in peer.inbound.iterdir() if p.is_file())
                return self._json(200, {"files": [{"name": p.name, "size": p.stat().st_size} for p in files]})
            if (name := self._name("inbound")) is not None:
                path = peer.inbound / name
                if not path.is_file():
                    return self._json(404, {"error": "no such file"})
                return self._answer(200, path.read_bytes(), "application/edi-x12")
            if (name := self._name("outbound")) is not None:
                path = peer.outbound / name
                if not path.is_file():
                    return self._json(404, {"error": "no such file"})
                data = path.read_bytes()
                return self._json(
                    200, {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                )
            self._json(404, {"error": "no such endpoint"})

        def do_DELETE(self) -> None:
            if not self._begin():
                return
            name = self._name("inbound")
            if name is None or not (peer.inbound / name).is_file():
                return self._json(404, {"error": "no such file"})
            (peer.inbound / name).unlink()
            self._answer(204)

    return Handler


class _QuietServer(ThreadingHTTPServer):
    """Refused handshakes and clients that gave up (the timeout tests) are expected here."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None


@contextmanager
def running_http_clearinghouse(root: Path) -> Iterator[HttpClearinghouse]:
    """Serve the fake clearinghouse over HTTPS on 127.0.0.1 (an ephemeral port) while in the block."""
    peer = HttpClearinghouse(root / "outbound", root / "inbound")
    for folder in (peer.outbound, peer.inbound, root / "tls"):
        folder.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = _certificates(root / "tls")
    peer.ca_file = str(ca_file)
    server = _QuietServer(("127.0.0.1", 0), _handler(peer))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    # The handshake runs in the request's thread, so a refused one cannot stall the listener.
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    peer.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
