"""Shared by the ui part 2 tests (dashboard, remittances, files, patients): requests with their own
request id, the audit events one request wrote, and uploading an 835 the way the page's script does."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from claims_server.models import AuditEvent
from tests.integration.remittance.support import Clp, Svc, build_835
from tests.integration.ui.support import csrf_token_of


def payment_835(pcn: str, trace: str, *, unmatched: bool = False) -> bytes:
    """The payer's 835 for a claim of 99213 120.00 + 85025 30.00 (``make_claim``): 99213 paid 90.00
    (CO-45 10.00, PR-2 20.00), 85025 denied CO-97 with remark M15; BPR02 90.00. ``unmatched`` adds
    a second claim (40.00 paid) that is none of ours."""
    claims = [
        Clp(
            pcn,
            "1",
            15000,
            9000,
            2000,
            lines=[
                Svc("99213", 12000, 9000, [("CO", "45", 1000), ("PR", "2", 2000)]),
                Svc("85025", 3000, 0, [("CO", "97", 3000)], remarks=["M15"]),
            ],
        )
    ]
    if unmatched:
        claims.append(
            Clp("NOSUCHCLAIM01", "1", 5000, 4000, 0, lines=[Svc("99212", 5000, 4000, [("CO", "45", 1000)])])
        )
    return build_835(claims, trace=trace)


def with_request_id(client: Any, method: str, path: str, **kwargs: Any) -> tuple[Any, str]:
    """Call ``path`` with a fresh X-Request-ID; returns (response, request id)."""
    request_id = uuid.uuid4().hex
    headers = {**kwargs.pop("headers", {}), "X-Request-ID": request_id}
    return client.open(path, method=method, headers=headers, **kwargs), request_id


def audit_events(session: Any, request_id: str, action: str | None = None) -> list[AuditEvent]:
    """The audit events one request wrote (``action`` "R" for reads, "E" for executions ...)."""
    session.rollback()
    stmt = select(AuditEvent).where(AuditEvent.request_id == request_id)
    if action is not None:
        stmt = stmt.where(AuditEvent.action == action)
    return list(session.scalars(stmt))


def upload_835(client: Any, content: bytes, *, token: str | None = None) -> Any:
    """POST the raw 835 to the page's upload endpoint as remittance_upload.js does."""
    csrf = token if token is not None else csrf_token_of(client, "/ui/remittances")
    return client.post(
        "/ui/remittances/upload",
        data=content,
        content_type="application/edi-x12",
        headers={"X-CSRF-Token": csrf, "Accept": "application/json"},
    )
