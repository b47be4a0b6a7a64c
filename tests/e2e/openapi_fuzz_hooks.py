"""Schemathesis hooks for ``test_openapi_fuzz``: X12 bodies go on the wire as text.

``POST /api/v1/edi/x12`` and ``POST /api/v1/remittances`` take one interchange as the raw
body under ``application/edi-x12`` (RFC 1767), a media type schemathesis has no serializer
for; the generated string is sent as UTF-8 bytes, as ``text/plain`` would be.
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.serializer("application/edi-x12")
def x12_serializer(ctx: Any, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogatepass")
