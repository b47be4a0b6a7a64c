"""A clearinghouse's HTTPS file API as a :class:`~claims_server.clearinghouse.transport.Transport`.

Many clearinghouses offer the SFTP mailbox's operations over REST; this adapter maps
them one to one (paths relative to ``base_url``, all configurable per route):

- upload: ``POST {upload_path}`` with the file as ``multipart/form-data`` and an
  ``Idempotency-Key`` (the file's SHA-256: the same interchange, same key), so a retry
  after a lost answer is recognized rather than filed twice by a server that honours it;
  the JSON answer must echo ``size`` and ``sha256`` (or ``GET {upload_path}/{name}``
  must), which confirms the upload as reading the file back does over SFTP;
- ``GET {inbox_path}``: the waiting files (``[name, ...]``, ``[{"name": ...}]`` or
  ``{"files": [...]}``); ``GET {inbox_path}/{name}``: one file; ``DELETE`` it once stored.

Only the standard library (urllib, ssl): TLS is verified against the system store or a
route's ``ca_bundle``; redirects are refused (they would carry the Authorization header
elsewhere); a 5xx answer or a connection failure is retried with exponential backoff,
anything else fails at once; answers larger than ``max_response_bytes`` are refused
while reading. Error messages and log lines name the route, the operation and the file,
never a secret or a body. See docs/clearinghouse-http.md.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import ipaddress
import json
import logging
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from claims_server.clearinghouse.transport import (
    TransportConfigError,
    TransportError,
    UploadReceipt,
    confirm_receipt,
    is_temporary,
    secret_from_env,
)

logger = logging.getLogger(__name__)

AUTH_KINDS = ("bearer", "basic")
READ_CHUNK = 1 << 16
_LOOPBACK_NAMES = frozenset({"localhost"})
# Route settings the HTTP adapter reads; ``retry_base_seconds`` is the send task's (tasks.py).
_KNOWN_SETTINGS = frozenset(
    {
        "base_url",
        "auth",
        "token_env",
        "username",
        "password_env",
        "upload_path",
        "inbox_path",
        "upload_field",
        "ca_bundle",
        "verify_tls",
        "timeout_seconds",
        "max_attempts",
        "backoff_seconds",
        "max_response_bytes",
        "retry_base_seconds",
    }
)


class ResponseTooLarge(TransportError):
    """The clearinghouse answered with more bytes than the route allows (not retried)."""


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """A route's HTTP transport settings, checked (secrets are named here, never held)."""

    base_url: str
    auth: str  # bearer or basic
    token_env: str | None = None  # bearer: the variable holding the token
    username: str | None = None  # basic
    password_env: str | None = None  # basic: the variable holding the password
    upload_path: str = "outbound"
    inbox_path: str = "inbound"
    upload_field: str = "file"
    ca_bundle: str | None = None  # PEM file of CAs to trust instead of the system store
    verify_tls: bool = True
    timeout_seconds: float = 30.0
    max_attempts: int = 3
    backoff_seconds: float = 1.0
    max_response_bytes: int = 64 * 1024 * 1024


_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(HttpSettings)}


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _production() -> bool:
    """CLAIMS_ENV of this process: setting names are the environment variables (config.py), and the
    web app, the workers and the CLI of a deployment all read theirs from the environment."""
    return os.environ.get("CLAIMS_ENV", "").strip() == "production"


def _unverified_tls_problem(base_url: str) -> str | None:
    """Why ``verify_tls: false`` is refused for ``base_url``, or None where it may stay off.

    Claim files are PHI: without verification anyone on the path can read them, so it may
    be switched off only for a test peer on this host, and never in production.
    """
    if _production():
        return (
            "verify_tls: must be true when CLAIMS_ENV=production; trust the clearinghouse's CA with ca_bundle"
        )
    if not _is_loopback(urllib.parse.urlsplit(base_url).hostname or ""):
        return (
            "verify_tls: false is allowed only for a test peer on 127.0.0.1, ::1 or localhost; "
            "trust the clearinghouse's CA with ca_bundle (a PEM file) instead"
        )
    return None


def _number(
    settings: Mapping[str, Any], key: str, kind: type, low: float, high: float, problems: list[str]
) -> Any:
    default = _DEFAULTS[key]
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and value != int(value)):
        problems.append(f"{key}: must be a number from {low:g} to {high:g}")
        return default
    if not low <= value <= high:
        problems.append(f"{key}: must be from {low:g} to {high:g}, not {value:g}")
        return default
    return kind(value)


def _path(settings: Mapping[str, Any], key: str, problems: list[str]) -> str:
    value = settings.get(key, _DEFAULTS[key])
    if not isinstance(value, str) or not value.strip("/"):
        problems.append(f"{key}: must be a path below base_url, e.g. {_DEFAULTS[key]!r}")
        return str(_DEFAULTS[key])
    if any(part in ("..", ".") for part in value.split("/")) or "?" in value or "#" in value:
        problems.append(f"{key}: must be a plain path below base_url (no '..', query or fragment)")
    return value.strip("/")


def parse_http_settings(settings: Mapping[str, Any]) -> HttpSettings:
    """Check a route's ``http`` settings; every problem at once in one TransportConfigError."""
    problems: list[str] = []
    unknown = sorted(set(settings) - _KNOWN_SETTINGS)
    if unknown:
        problems.append(
            f"unknown settings {', '.join(unknown)} (known: {', '.join(sorted(_KNOWN_SETTINGS))})"
        )
    base_url = settings.get("base_url")
    parsed = urllib.parse.urlsplit(base_url) if isinstance(base_url, str) else None
    if parsed is None or parsed.scheme not in ("https", "http") or not parsed.hostname:
        problems.append("base_url: must be an https:// URL, e.g. https://api.clearinghouse.example/v1")
    elif parsed.username is not None or parsed.password is not None:
        problems.append("base_url: must not carry credentials; use auth with token_env or password_env")
    elif parsed.query or parsed.fragment:
        problems.append("base_url: must not have a query or fragment")
    elif parsed.scheme == "http" and not _is_loopback(parsed.hostname):
        # Claim files are PHI: plain HTTP only to this host (a local gateway or a test peer).
        problems.append("base_url: must use https (plain http is allowed only to localhost)")
    auth = settings.get("auth")
    if auth not in AUTH_KINDS:
        problems.append("auth: must be bearer (with token_env) or basic (with username and password_env)")
    elif auth == "bearer" and not settings.get("token_env"):
        problems.append("token_env: bearer auth needs the name of the environment variable holding the token")
    elif auth == "basic" and not (settings.get("username") and settings.get("password_env")):
        problems.append("username and password_env: basic auth needs both")
    verify_tls = settings.get("verify_tls", True)
    if not isinstance(verify_tls, bool):
        problems.append("verify_tls: must be true or false")
    elif verify_tls is False and parsed is not None and parsed.hostname:
        tls_problem = _unverified_tls_problem(str(base_url))
        if tls_problem:
            problems.append(tls_problem)
    ca_bundle = settings.get("ca_bundle")
    if ca_bundle is not None and not (isinstance(ca_bundle, str) and ca_bundle):
        problems.append("ca_bundle: must be the path of a PEM file")
    upload_field = settings.get("upload_field", _DEFAULTS["upload_field"])
    if not (isinstance(upload_field, str) and upload_field.isascii() and upload_field.isidentifier()):
        problems.append("upload_field: must be a form field name such as 'file'")
    config = HttpSettings(
        base_url=str(base_url).rstrip("/"),
        auth=str(auth),
        token_env=settings.get("token_env") or None,
        username=settings.get("username") or None,
        password_env=settings.get("password_env") or None,
        upload_path=_path(settings, "upload_path", problems),
        inbox_path=_path(settings, "inbox_path", problems),
        upload_field=str(upload_field),
        ca_bundle=ca_bundle or None,
        verify_tls=verify_tls is not False,
        timeout_seconds=_number(settings, "timeout_seconds", float, 0.1, 600, problems),
        max_attempts=_number(settings, "max_attempts", int, 1, 10, problems),
        backoff_seconds=_number(settings, "backoff_seconds", float, 0, 60, problems),
        max_response_bytes=_number(settings, "max_response_bytes", int, 1024, 1 << 30, problems),
    )
    if problems:
        raise TransportConfigError("the route's http settings: " + "; ".join(problems))
    return config


def open_http_transport(route_name: str, settings: Mapping[str, Any]) -> HttpTransport:
    """The adapter for a route's ``http`` settings, with its secret read from the environment."""
    try:
        config = parse_http_settings(settings)
        if config.auth == "bearer":
            authorization = f"Bearer {secret_from_env(settings, 'token_env')}"
        else:
            pair = f"{config.username}:{secret_from_env(settings, 'password_env')}".encode()
            authorization = "Basic " + base64.b64encode(pair).decode("ascii")
        if config.ca_bundle is not None and not os.path.isfile(config.ca_bundle):
            raise TransportConfigError(f"ca_bundle: no such file {config.ca_bundle}")
    except TransportConfigError as exc:
        raise TransportConfigError(f"route {route_name!r}: {exc}") from None
    return HttpTransport(route_name, config, authorization)


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would replay our Authorization header to wherever it points: refuse it."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> None:
        return None


def _multipart(field: str, name: str, content: bytes) -> tuple[bytes, str]:
    boundary = f"claims-server-{uuid.uuid4().hex}"
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
        "Content-Type: application/edi-x12\r\n\r\n"
    ).encode("ascii")
    return head + content + f"\r\n--{boundary}--\r\n".encode(
        "ascii"
    ), f"multipart/form-data; boundary={boundary}"


def _describe(exc: BaseException) -> str:
    """A connection failure in words, without the URL (which the message names separately)."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, str):
        return reason
    if isinstance(reason, TimeoutError | ssl.SSLError | OSError) and "timed out" in str(reason):
        return "timed out"
    return f"{type(reason).__name__}: {reason}"


class HttpTransport:
    """A clearinghouse's HTTPS file API (see the module docstring); one route's settings."""

    def __init__(
        self,
        route_name: str,
        config: HttpSettings,
        authorization: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.route_name = route_name
        self.config = config
        self._authorization = authorization
        self._sleep = sleep
        context = ssl.create_default_context(cafile=config.ca_bundle)
        if not config.verify_tls:
            # Settings built without parse_http_settings get the same refusal.
            tls_problem = _unverified_tls_problem(config.base_url)
            if tls_problem:
                raise TransportConfigError(f"route {route_name!r}: {tls_problem}")
            logger.warning("clearinghouse route %r: TLS certificate verification is switched off", route_name)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self._opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=context), _RefuseRedirects()
        )

    # -- plumbing ---------------------------------------------------------------------
    def _url(self, *parts: str) -> str:
        quoted = [p if i == 0 else urllib.parse.quote(p, safe="") for i, p in enumerate(parts)]
        return "/".join([self.config.base_url, *quoted])

    def _fail(self, operation: str, what: str) -> TransportError:
        return TransportError(f"clearinghouse route {self.route_name!r}: {operation} failed: {what}")

    def _read(self, response: Any, operation: str) -> bytes:
        limit = self.config.max_response_bytes
        declared = response.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ResponseTooLarge(
                f"clearinghouse route {self.route_name!r}: {operation} refused: the answer is "
                f"{int(declared):,} bytes, more than max_response_bytes ({limit:,})"
            )
        chunks: list[bytes] = []
        total = 0
        while chunk := response.read(READ_CHUNK):
            total += len(chunk)
            if total > limit:
                raise ResponseTooLarge(
                    f"clearinghouse route {self.route_name!r}: {operation} refused: the answer "
                    f"exceeds max_response_bytes ({limit:,}) and was not read further"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _request(
        self,
        method: str,
        url: str,
        operation: str,
        *,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        absent: tuple[int, ...] = (),
    ) -> bytes | None:
        """The answer's body; None when the status is one of ``absent`` (e.g. 404 for gone)."""
        attempts = self.config.max_attempts
        for attempt in range(1, attempts + 1):
            request = urllib.request.Request(url, data=data, method=method)
            request.add_header("Authorization", self._authorization)
            request.add_header("User-Agent", "claims-server")
            for key, value in (headers or {}).items():
                request.add_header(key, value)
            try:
                with self._opener.open(request, timeout=self.config.timeout_seconds) as response:
                    return self._read(response, operation)
            except urllib.error.HTTPError as exc:
                status = exc.code
                exc.close()
                if status in absent:
                    return None
                if status in (401, 403):
                    raise self._fail(
                        operation,
                        f"the clearinghouse refused our credentials (HTTP {status}); "
                        f"check the route's {self.config.auth} auth settings",
                    ) from None
                if status < 500:
                    raise self._fail(operation, f"HTTP {status} {exc.reason}") from None
                problem = f"HTTP {status} {exc.reason}"
            except ResponseTooLarge:
                raise
            except ssl.SSLCertVerificationError as exc:
                raise self._fail(operation, f"TLS certificate not trusted ({exc.verify_message})") from None
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, ssl.SSLCertVerificationError):
                    raise self._fail(
                        operation, f"TLS certificate not trusted ({exc.reason.verify_message})"
                    ) from None
                problem = _describe(exc)
            except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
                problem = _describe(exc)
            if attempt == attempts:
                raise self._fail(operation, f"{problem} (after {attempts} attempts)")
            delay = self.config.backoff_seconds * 2 ** (attempt - 1)
            logger.warning(
                "clearinghouse route %r: %s failed (%s); attempt %d of %d, retrying in %.1f s",
                self.route_name,
                operation,
                problem,
                attempt,
                attempts,
                delay,
            )
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _json(self, body: bytes, operation: str) -> Any:
        try:
            return json.loads(body)
        except (UnicodeDecodeError, ValueError):
            raise self._fail(operation, "the answer is not JSON") from None

    def _receipt(self, name: str, content: bytes, answer: Any) -> UploadReceipt | None:
        if not isinstance(answer, dict) or "sha256" not in answer or "size" not in answer:
            return None
        size, sha256 = answer["size"], answer["sha256"]
        if not isinstance(size, int) or not isinstance(sha256, str):
            return None
        return confirm_receipt(str(answer.get("name") or name), content, size, sha256.lower())

    # -- Transport --------------------------------------------------------------------
    def upload(self, name: str, content: bytes) -> UploadReceipt:
        operation = f"upload of {name}"
        body, content_type = _multipart(self.config.upload_field, name, content)
        answer = self._request(
            "POST",
            self._url(self.config.upload_path),
            operation,
            data=body,
            headers={
                "Content-Type": content_type,
                "Accept": "application/json",
                "Idempotency-Key": hashlib.sha256(content).hexdigest(),
            },
        )
        receipt = self._receipt(name, content, self._json(answer or b"", operation) if answer else None)
        if receipt is None:
            receipt = self.uploaded(name, content)
        if receipt is None:
            raise self._fail(operation, "the clearinghouse did not confirm the file's size and SHA-256")
        return receipt

    def uploaded(self, name: str, content: bytes) -> UploadReceipt | None:
        operation = f"status of {name}"
        # 404: not there; 405: this API cannot say (the Idempotency-Key still guards the upload).
        answer = self._request(
            "GET",
            self._url(self.config.upload_path, name),
            operation,
            headers={"Accept": "application/json"},
            absent=(404, 405),
        )
        if answer is None:
            return None
        try:
            return self._receipt(name, content, self._json(answer, operation))
        except TransportError:
            return None  # there, but not these bytes: upload them

    def list_inbox(self) -> list[str]:
        operation = "listing the inbox"
        answer = self._request(
            "GET", self._url(self.config.inbox_path), operation, headers={"Accept": "application/json"}
        )
        listing = self._json(answer or b"", operation)
        if isinstance(listing, dict):
            listing = listing.get("files")
        if not isinstance(listing, list):
            raise self._fail(operation, "expected a JSON list of files")
        names = []
        for entry in listing:
            name = entry.get("name") if isinstance(entry, dict) else entry
            if not isinstance(name, str) or not name or "/" in name:
                raise self._fail(operation, "an entry has no usable file name")
            if not is_temporary(name):
                names.append(name)
        return sorted(names)

    def fetch(self, name: str) -> bytes:
        answer = self._request("GET", self._url(self.config.inbox_path, name), f"download of {name}")
        return answer or b""

    def remove(self, name: str) -> None:
        self._request("DELETE", self._url(self.config.inbox_path, name), f"removal of {name}", absent=(404,))

    def close(self) -> None:
        return None  # urllib keeps no connection open between requests
