"""An 835 that is not all there (truncated, a missing SE/GE/IEA, counts that disagree) is refused
whole: rule ``incomplete_file`` with the reader's structural finding, nothing posted.

The reader marks such a file with a finding in ``edi.x835.STRUCTURE_CODES``; posting what was
read of it would book a remittance whose claims or PLBs may be cut off, so the remittance
service refuses the file (a structured error naming the segment, never ``None:``), leaves no
row behind, and the file ends ``failed``.
"""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from claims_server.models import (
    ClaimPayment,
    EdiFile,
    EdiFileStatus,
    JournalEntry,
    Posting,
    Remittance,
    WorkItem,
)
from claims_server.remittance.services import receive_and_post
from edi import x835
from tests.integration.remittance.support import Clp, Svc, build_835, make_claim

X12 = {"Content-Type": "application/edi-x12"}


def _counts(session) -> tuple[int, ...]:
    session.expire_all()
    return tuple(
        session.scalar(select(func.count()).select_from(model))
        for model in (Remittance, ClaimPayment, JournalEntry, Posting, WorkItem)
    )


def _file(session, world) -> bytes:
    """Two claims paid 60.00 and 40.00 (BPR02 100.00), as a whole file."""
    clps = []
    for pcn, paid in (("PCN-TR1", 6000), ("PCN-TR2", 4000)):
        claim = make_claim(session, world, pcn, [("99213", 10000)])
        lcn = claim.service_lines[0].line_control_number
        clps.append(
            Clp(
                pcn,
                "1",
                10000,
                paid,
                0,
                lines=[Svc("99213", 10000, paid, [("CO", "45", 10000 - paid)], lcn=lcn)],
            )
        )
    return build_835(clps, trace="TRUNC-1")


def _cut(content: bytes, before: str) -> bytes:
    return content[: content.index(before.encode())]


CUTS = {
    "no SE (cut after the last claim)": (lambda c: _cut(c, "SE*"), "835_SE_MISSING", "SE"),
    "no GE": (lambda c: _cut(c, "GE*"), "835_GE_MISSING", "GE"),
    "no IEA": (lambda c: _cut(c, "IEA*"), "835_IEA_MISSING", "IEA"),
    "GE01 counts two sets": (lambda c: c.replace(b"GE*1*", b"GE*2*"), "835_GE01_COUNT", "GE"),
}


@pytest.mark.parametrize("cut", list(CUTS))
def test_an_incomplete_835_is_refused_whole(session, world, factory, cut):
    make, code, segment = CUTS[cut]
    content = make(_file(session, world))
    before = _counts(session)
    report = receive_and_post(factory, content)
    assert report.status == "failed"
    error = report.error
    assert error["rule"] == "incomplete_file"
    assert not error["message"].startswith("None") and "None:" not in error["message"]
    assert error["message"].startswith("the file is incomplete")
    rules = [e["rule"] for e in error["errors"]]
    assert code in rules and set(rules) <= x835.STRUCTURE_CODES
    first = next(e for e in error["errors"] if e["rule"] == code)
    assert first["segment"] in (segment, "ST") and first["message"]
    assert _counts(session) == before  # nothing posted: no remittance, entry or work item
    session.expire_all()
    row = session.scalar(select(EdiFile))
    assert row.status is EdiFileStatus.FAILED and row.error_summary["rule"] == "incomplete_file"


def test_upload_of_a_truncated_835_is_a_422_naming_the_missing_trailer(session, world, api_client):
    content = _cut(_file(session, world), "SE*")
    client = api_client("biller")
    response = client.post("/api/v1/remittances", data=content, headers=X12)
    assert response.status_code == 422, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] == "failed" and body["error"]["rule"] == "incomplete_file"
    assert "835_SE_MISSING" in [e["rule"] for e in body["error"]["errors"]]
    assert "Traceback" not in response.get_data(as_text=True)
    assert _counts(session) == (0, 0, 0, 0, 0)
