"""An 835 amount beyond X12's R 1/18 or the ledger's BIGINT cents is a finding, never a 500.

Issue 15, finding 3: an 835 with CLP04 = 1 followed by 30 zeros ended in a numeric
overflow (a 500); the file stayed "received" and every retry was a 500 again. Now the
parser (edi.numbers) reports ``835_AMOUNT_OUT_OF_RANGE`` naming the segment and element,
posting refuses the whole file (nothing half-applied), the file ends ``failed`` with the
finding, and a retry answers the same 422 without changing anything.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from claims_server.clearinghouse.services import receive_file
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
from tests.integration.test_cli import run_cli

DATA = Path(__file__).resolve().parents[2] / "data" / "x12"
X12 = {"Content-Type": "application/edi-x12"}


def _overflow() -> bytes:
    return (DATA / "835_clp04_overflow.x12").read_bytes()


def _counts(session) -> tuple[int, ...]:
    session.expire_all()
    return tuple(
        session.scalar(select(func.count()).select_from(model))
        for model in (Remittance, ClaimPayment, JournalEntry, Posting, WorkItem)
    )


def _assert_failed_with_finding(session, error: dict) -> None:
    assert error["rule"] == "amount_out_of_range"
    (finding,) = error["errors"]
    assert finding["field"] == "CLP04" and finding["segment"] == "CLP"
    assert finding["rule"] == "835_AMOUNT_OUT_OF_RANGE"
    assert "1000000000000000000000000000000" not in str(error)
    row = session.scalar(select(EdiFile))
    assert row.status is EdiFileStatus.FAILED and row.error_summary["rule"] == "amount_out_of_range"


def test_upload_overflowing_clp04_is_a_422_with_the_finding_and_retry_is_the_same(session, world, api_client):
    client = api_client("biller")
    assert _counts(session) == (0, 0, 0, 0, 0)
    first = client.post("/api/v1/remittances", data=_overflow(), headers=X12)
    assert first.status_code == 422, first.get_data(as_text=True)
    body = first.get_json()
    assert body["status"] == "failed"
    _assert_failed_with_finding(session, body["error"])
    # Nothing half-applied: the first (good) claim of the file is not posted either.
    assert _counts(session) == (0, 0, 0, 0, 0)
    retry = client.post("/api/v1/remittances", data=_overflow(), headers=X12)
    assert retry.status_code == 422 and retry.get_json()["error"] == body["error"]
    assert _counts(session) == (0, 0, 0, 0, 0)
    assert session.scalar(select(func.count()).select_from(EdiFile)) == 1


@pytest.mark.parametrize(
    ("old", "new", "element"),
    [
        ("BPR*I*157.77*", "BPR*I*" + "9" * 19 + "*", "BPR02"),  # 19 digits: longer than R 1/18
        (
            "SVC*HC:99213*100.00*77.77*",
            "SVC*HC:99213*100.00*99999999999999.99*",
            "SVC03",
        ),  # 16 digits: past the ledger
        ("CAS*PR*2*22.23", "CAS*PR*2*-92233720368547758.08", "CAS03"),  # -2^63 cents
    ],
)
def test_every_amount_element_has_the_same_limits(session, world, factory, old, new, element):
    text = _overflow().decode().replace("1" + "0" * 30, "77.77")
    assert old in text
    report = receive_and_post(factory, text.replace(old, new, 1).encode())
    assert report.status == "failed" and report.error["rule"] == "amount_out_of_range"
    assert [e["field"] for e in report.error["errors"]] == [element]
    assert _counts(session) == (0, 0, 0, 0, 0)


def test_inbox_file_with_an_overflowing_amount_ends_failed(session, world, factory):
    outcome = receive_file(factory, _overflow(), route_id=None)
    assert outcome.status == "failed"
    _assert_failed_with_finding(session, outcome.summary)
    assert _counts(session) == (0, 0, 0, 0, 0)
    again = receive_file(factory, _overflow(), route_id=None)
    assert again.duplicate and again.status == "failed"
    assert _counts(session) == (0, 0, 0, 0, 0)


def test_cli_post_reports_the_finding(session, world, database_url, tmp_path):
    session.commit()
    path = tmp_path / "overflow.x12"
    path.write_bytes(_overflow())
    env = {"DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path / "instance")}
    for _ in range(2):  # the retry ends the same way
        result = run_cli("remittance", "post", str(path), "--json", env=env)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert '"835_AMOUNT_OUT_OF_RANGE"' in result.stdout and '"CLP04"' in result.stdout
    assert _counts(session) == (0, 0, 0, 0, 0)
