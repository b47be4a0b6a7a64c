"""Receiving X12 uploads safely: size cap before buffering, ISA check, rate limit, server names.

The EDI upload endpoints call ``receive_x12_upload()`` first thing::

    @blp.route("/api/v1/edi/files", methods=["POST"])
    def upload():
        upload = receive_x12_upload()          # 413 / 415 / 422 / 429 raised as problem+json
        ...store upload.content in EdiFile(content=..., sha256=upload.sha256,
               stored_name=upload.stored_name, size_bytes=upload.size) ...

and set ``upload.accepts = X12_CONTENT_TYPES`` on the view so the JSON-only hook lets
the body through. The body is the raw file (``application/edi-x12``, ``text/plain`` or
``application/octet-stream``), never multipart: Werkzeug spools multipart parts larger
than 500 KB to temporary files, which would put PHI on disk in clear. The bytes stay in
memory until the ORM stores them encrypted. The sender's file name is never used.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

from flask import current_app, request

from claims_server.errors import ApiError, Unprocessable
from claims_server.security.ratelimit import rate_limit

X12_CONTENT_TYPES = ("application/edi-x12", "text/plain", "application/octet-stream")
#: The body as the OpenAPI document states it (:func:`check_x12_start`: ISA first, after
#: optional ASCII whitespace or a UTF-8 byte order mark).
X12_BODY_SCHEMA = {"type": "string", "pattern": r"^\ufeff?[ \t\n\r\x0b\x0c]*ISA"}
CHUNK = 64 * 1024


class PayloadTooLarge(ApiError):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(ApiError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


@dataclass(frozen=True)
class ReceivedUpload:
    content: bytes
    sha256: str
    size: int
    stored_name: str  # server-generated; use it wherever a file name is needed


def new_stored_name(suffix: str = ".x12") -> str:
    """A random file name: never derived from the sender's name or the content."""
    return f"{uuid.uuid4().hex}{suffix}"


def check_x12_start(head: bytes) -> None:
    """An interchange starts with ISA (after optional whitespace or a UTF-8 BOM)."""
    stripped = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not stripped.startswith(b"ISA"):
        raise Unprocessable(
            "the file is not an X12 interchange: it must start with an ISA segment",
            errors=[{"field": "body", "location": "body", "message": "must start with ISA"}],
        )


def raw_body_stream() -> Any:
    """The request body as a binary stream, for a view that reads a file itself: a chunked body
    (no ``Content-Length``) is read from the server's input, as :func:`receive_x12_upload` does."""
    return request.environ["wsgi.input"] if request.content_length is None else request.stream


def receive_x12_upload(max_bytes: int | None = None) -> ReceivedUpload:
    """Read the request body as one X12 file, enforcing the limits in the module docstring."""
    limit = max_bytes or int(current_app.config.get("MAX_CONTENT_LENGTH") or 0)
    with rate_limit("RATE_LIMIT_UPLOAD"):
        if request.mimetype not in X12_CONTENT_TYPES:
            raise UnsupportedMediaType(f"send the file as one of {', '.join(X12_CONTENT_TYPES)}")
        declared = request.content_length
        if limit and declared is not None and declared > limit:
            # Refused on the header alone: nothing of the body has been read.
            raise PayloadTooLarge(f"the file exceeds the limit of {limit} bytes", limit_bytes=limit)
        stream = request.environ["wsgi.input"] if declared is None else request.stream
        parts: list[bytes] = []
        size = 0
        digest = hashlib.sha256()
        while True:
            chunk = stream.read(CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if limit and size > limit:
                raise PayloadTooLarge(f"the file exceeds the limit of {limit} bytes", limit_bytes=limit)
            if not parts:
                check_x12_start(chunk[:128])
            parts.append(chunk)
            digest.update(chunk)
        if not parts:
            raise Unprocessable("the request has no file in its body")
        return ReceivedUpload(b"".join(parts), digest.hexdigest(), size, new_stored_name())
