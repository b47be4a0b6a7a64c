"""Answering an X12 file an integration POSTs: store it, validate it, return our 999 or TA1.

The inbound bytes are stored (encrypted, with their SHA-256) before anything else; our
acknowledgment is stored too, as an outbound file named after the inbound one, so the
same bytes posted twice get the same answer back instead of a second, different one.
Our acknowledgment's ISA13/GS06 is the inbound file's row id: unique per file (rows
are never deleted) and traceable to it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from claims_server.clearinghouse.services import store_ack, store_inbound
from claims_server.errors import ApiError
from claims_server.models import EdiFile, EdiFileKind, EdiFileStatus, FileDirection
from claims_server.models.common import utcnow
from edi.ack import acknowledge
from edi.validate import validate

_MAX_CONTROL = 999_999_999


class NotAnInterchange(ApiError):
    """The body starts like X12 but holds no readable interchange to acknowledge."""

    status, slug, title = 400, "not-an-interchange", "Not an X12 interchange"


@dataclass(frozen=True)
class InboundAck:
    kind: str  # "999" or "TA1"
    text: str
    accepted: bool
    edi_file_public_id: str
    replayed: bool = False


def _ack_name(inbound: EdiFile) -> str:
    return f"ack-{inbound.public_id}.x12"


def acknowledge_upload(session: Session, content: bytes, *, stored_name: str) -> InboundAck:
    """Store ``content``, validate it and build (and store) our acknowledgment."""
    inbound, duplicate = store_inbound(session, content, route_id=None, stored_name=stored_name)
    if duplicate:
        previous = session.scalar(
            select(EdiFile).where(
                EdiFile.direction == FileDirection.OUTBOUND, EdiFile.stored_name == _ack_name(inbound)
            )
        )
        if previous is not None and previous.content is not None:
            return InboundAck(
                previous.kind.value,
                bytes(previous.content).decode("ascii"),
                previous.kind is EdiFileKind.ACK_999 and inbound.status is EdiFileStatus.PROCESSED,
                inbound.public_id,
                replayed=True,
            )
    report = validate(content, file=inbound.stored_name)
    errors = [f.to_json_dict() for f in report.findings if f.is_error]
    for item in errors:
        item.pop("value", None)  # the offending value may be PHI
    try:
        ack = acknowledge(report, control_number=inbound.id % _MAX_CONTROL or 1)
    except LookupError:
        inbound.status = EdiFileStatus.FAILED
        inbound.processed_at = utcnow()
        inbound.error_summary = {"errors": errors[:50]}
        first = report.findings[0] if report.findings else None
        reason = f"{first.code}: {first.message}" if first else "no readable ISA segment"
        raise NotAnInterchange(
            f"the file cannot be acknowledged: {reason}",
            errors=[
                {"field": "body", "location": "body", "rule": e["code"], "message": e["message"]}
                for e in errors[:20]
            ],
        ) from None
    inbound.status = EdiFileStatus.PROCESSED if ack.accepted else EdiFileStatus.FAILED
    inbound.processed_at = utcnow()
    inbound.error_summary = {"acknowledgment": ack.kind, "errors": errors[:50]} if errors else None
    store_ack(
        session,
        inbound,
        ack,
        stored_name=_ack_name(inbound),
        status=EdiFileStatus.PROCESSED,
        processed_at=utcnow(),
    )
    session.flush()
    return InboundAck(ack.kind, ack.text, ack.accepted, inbound.public_id)
