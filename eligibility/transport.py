"""Real-time 270/271 over HTTP with the CAQH CORE connectivity envelope (rule 270, v2.2.0).

The CORE envelope is an HTTP POST of a ``multipart/form-data`` body with one field per
envelope element: ``PayloadType`` (``X12_270_Request_005010X279A1``), ``ProcessingMode``
(``RealTime``), ``PayloadID`` (a UUID), ``TimeStamp`` (ISO 8601 UTC), ``SenderID``,
``ReceiverID``, ``CORERuleVersion`` (``2.2.0``) and ``Payload`` (the X12 text). The
answer is the same form with ``PayloadType`` ``X12_271_Response_005010X279A1`` (or
``X12_999_Response_005010X231A1`` when the 270 was rejected) and ``ErrorCode`` /
``ErrorMessage`` (``Success`` when the envelope was fine).

Only the standard library is used (``urllib``, ``email``), so the library stays free of
web frameworks; :func:`parse_envelope` is what the simulator's endpoint uses too.
Failures are :class:`TransportFailure` with ``kind`` ``timeout``, ``connection``,
``http`` or ``envelope``: the caller stores them and plans a retry, never a 500.
"""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP

CORE_RULE_VERSION = "2.2.0"
REQUEST_PAYLOAD_TYPE = "X12_270_Request_005010X279A1"
RESPONSE_PAYLOAD_TYPE = "X12_271_Response_005010X279A1"
ACK_PAYLOAD_TYPE = "X12_999_Response_005010X231A1"
REAL_TIME = "RealTime"
ENVELOPE_FIELDS = (
    "PayloadType",
    "ProcessingMode",
    "PayloadID",
    "TimeStamp",
    "SenderID",
    "ReceiverID",
    "CORERuleVersion",
)
MAX_RESPONSE_BYTES = 5 * 1024 * 1024


class TransportFailure(Exception):
    """No usable answer: ``kind`` is timeout, connection, http or envelope (safe to store)."""

    def __init__(self, kind: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "message": self.message, "http_status": self.status}


@dataclass(frozen=True, slots=True)
class CoreEnvelope:
    """One CORE envelope (request or response)."""

    payload_type: str
    processing_mode: str
    payload_id: str
    timestamp: str
    sender_id: str
    receiver_id: str
    core_rule_version: str
    payload: str
    error_code: str = ""
    error_message: str = ""

    def fields(self) -> dict[str, str]:
        out = {
            "PayloadType": self.payload_type,
            "ProcessingMode": self.processing_mode,
            "PayloadID": self.payload_id,
            "TimeStamp": self.timestamp,
            "SenderID": self.sender_id,
            "ReceiverID": self.receiver_id,
            "CORERuleVersion": self.core_rule_version,
            "Payload": self.payload,
        }
        if self.error_code:
            out["ErrorCode"] = self.error_code
            out["ErrorMessage"] = self.error_message
        return out


def new_request(
    payload: str, *, sender_id: str, receiver_id: str, now: datetime | None = None
) -> CoreEnvelope:
    """A real-time 270 request envelope with a fresh PayloadID."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return CoreEnvelope(
        REQUEST_PAYLOAD_TYPE,
        REAL_TIME,
        str(uuid.uuid4()),
        stamp,
        sender_id,
        receiver_id,
        CORE_RULE_VERSION,
        payload,
    )


def encode_form(fields: Mapping[str, str]) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type (boundary checked against the data)."""
    boundary = f"----core-{uuid.uuid4().hex}"
    parts: list[bytes] = []
    for name, value in fields.items():
        data = value.encode("utf-8")
        if boundary.encode() in data:  # pragma: no cover - a UUID in the data is astronomically unlikely
            raise ValueError("boundary collision")
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + data + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def decode_form(body: bytes, content_type: str) -> dict[str, str]:
    """The fields of a multipart/form-data body; raises TransportFailure('envelope') when unreadable."""
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type:
        raise TransportFailure("envelope", "the answer is not a multipart/form-data CORE envelope")
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode() + body
    )
    if not message.is_multipart():
        raise TransportFailure("envelope", "the CORE envelope has no form fields")
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        raw = part.get_payload(decode=True) or b""
        fields[str(name)] = raw.decode("utf-8", errors="replace")
    return fields


def parse_envelope(fields: Mapping[str, str]) -> CoreEnvelope:
    """A CoreEnvelope from form fields; raises TransportFailure('envelope') naming a missing field."""
    missing = [name for name in (*ENVELOPE_FIELDS, "Payload") if name not in fields]
    if missing and not (fields.get("ErrorCode") and "Payload" in missing and len(missing) == 1):
        raise TransportFailure("envelope", f"the CORE envelope lacks {', '.join(missing)}")
    return CoreEnvelope(
        fields.get("PayloadType", ""),
        fields.get("ProcessingMode", ""),
        fields.get("PayloadID", ""),
        fields.get("TimeStamp", ""),
        fields.get("SenderID", ""),
        fields.get("ReceiverID", ""),
        fields.get("CORERuleVersion", ""),
        fields.get("Payload", ""),
        fields.get("ErrorCode", ""),
        fields.get("ErrorMessage", ""),
    )


@dataclass(frozen=True, slots=True)
class RealTimeResult:
    request: CoreEnvelope
    response: CoreEnvelope

    @property
    def is_271(self) -> bool:
        return self.response.payload_type == RESPONSE_PAYLOAD_TYPE

    @property
    def is_999(self) -> bool:
        return self.response.payload_type == ACK_PAYLOAD_TYPE


class RealTimeClient:
    """POSTs a 270 in a CORE envelope to ``url`` and returns the answering envelope.

    CORE rule 270 wants an answer within 20 seconds; ``timeout`` defaults to that.
    ``headers`` carries the endpoint's authentication (e.g. ``Authorization``).
    """

    def __init__(
        self,
        url: str,
        *,
        sender_id: str,
        receiver_id: str,
        timeout: float = 20.0,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("the eligibility endpoint must be an http(s) URL")
        self.url = url
        self.sender_id = sender_id
        self.receiver_id = receiver_id
        self.timeout = timeout
        self.headers = dict(headers or {})

    def exchange(self, x12_270: str, *, now: datetime | None = None) -> RealTimeResult:
        request = new_request(x12_270, sender_id=self.sender_id, receiver_id=self.receiver_id, now=now)
        body, content_type = encode_form(request.fields())
        http_request = urllib.request.Request(
            self.url, data=body, method="POST", headers={**self.headers, "Content-Type": content_type}
        )
        try:
            with urllib.request.urlopen(http_request, timeout=self.timeout) as answer:
                raw = answer.read(MAX_RESPONSE_BYTES + 1)
                answer_type = answer.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            raise TransportFailure(
                "http", f"the eligibility endpoint answered HTTP {exc.code}", status=exc.code
            ) from None
        except TimeoutError:
            raise TransportFailure("timeout", f"no answer within {self.timeout:g} seconds") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise TransportFailure("timeout", f"no answer within {self.timeout:g} seconds") from None
            raise TransportFailure(
                "connection", f"cannot reach the eligibility endpoint ({type(exc.reason).__name__})"
            ) from None
        except OSError as exc:
            raise TransportFailure("connection", f"connection failed ({type(exc).__name__})") from None
        if len(raw) > MAX_RESPONSE_BYTES:
            raise TransportFailure("envelope", "the answer exceeds the size limit")
        response = parse_envelope(decode_form(raw, answer_type))
        if response.error_code and response.error_code != "Success":
            raise TransportFailure("envelope", f"the endpoint reported {response.error_code[:60]}")
        if response.payload_id != request.payload_id:
            raise TransportFailure("envelope", "the answer's PayloadID does not match the request")
        return RealTimeResult(request, response)
