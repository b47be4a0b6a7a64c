"""Characters outside the X12 basic/extended sets, inbound and outbound (issue 15, findings 3 and 4).

Inbound: bytes FF FE FD in ISA06 made the acknowledgment's ASCII encode fail (a 500).
Any such byte anywhere in a file now gives a finding naming the file, segment and
element, and our TA1 (in the ISA) or 999 (IK4 code 6) rejecting it, on the upload
endpoint, the clearinghouse inbox and the ``edi`` commands.

Outbound: a patient named "Zoë" stopped every 837 batch (``encode("ascii")``); the
writer now converts text to the X12 character set (Zoë -> Zoe), and a claim that still
cannot be written is held with a finding while the rest of the batch goes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from claims_server.models import (
    Claim,
    ClaimState,
    Coverage,
    EdiFile,
    EdiFileStatus,
    FileDirection,
    Remittance,
)
from claims_server.submission.services import build_batches
from edi.reader import read_text
from edi.x999 import parse_999
from tests.integration.test_cli import run_cli

DATA = Path(__file__).resolve().parents[2] / "data" / "x12"
X12 = {"Content-Type": "application/edi-x12"}


def _isa06(replacement: bytes) -> bytes:
    """The valid 837 with ISA06 (15 characters once decoded) replaced."""
    raw = (DATA / "837p_valid.x12").read_bytes()
    assert raw[35:50] == b"SUBMIT01       "
    return raw[:35] + replacement + raw[50:]


def _inbound(session) -> list[EdiFile]:
    session.expire_all()
    return list(session.scalars(select(EdiFile).where(EdiFile.direction == FileDirection.INBOUND)))


@pytest.mark.parametrize(
    "isa06",
    [
        b"SUB\xff\xfe\xfdMITTER   ",  # the reported bytes (each becomes one U+FFFD)
        b"SUB\x00\x00\x00MITTER   ",  # NUL: PostgreSQL refuses it in a text column
        "SUBMITTËR      ".encode(),  # a valid UTF-8 letter outside the sets
        b"\xff" * 15,  # nothing of it is X12: our answer still has someone to address
    ],
)
def test_upload_with_invalid_bytes_in_isa06_gets_a_rejecting_ta1(api_client, session, isa06):
    client = api_client("biller")
    file = (DATA / "837p_isa06_invalid_bytes.x12").read_bytes() if b"\xfe" in isa06 else _isa06(isa06)
    response = client.post("/api/v1/edi/x12", data=file, headers=X12)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["X-Acknowledgment"] == "TA1" and response.headers["X-Accepted"] == "false"
    text = response.data.decode("ascii")
    # TA104 R, TA105 006 (invalid interchange sender id), echoing the inbound ISA13.
    ta1 = [s for s in read_text(text) if s.id == "TA1"]
    assert [(s.get(1), s.get(4), s.get(5)) for s in ta1] == [("000000101", "R", "006")]
    (row,) = _inbound(session)
    assert row.status is EdiFileStatus.FAILED
    errors = row.error_summary["errors"]
    assert any(e["element"] == "ISA06" and e["segment"] == "ISA" for e in errors)
    assert row.sender_id is None or (row.sender_id.isascii() and "\x00" not in row.sender_id)
    again = client.post("/api/v1/edi/x12", data=file, headers=X12)
    assert again.status_code == 200 and again.data == response.data


def test_upload_with_an_invalid_byte_in_a_name_gets_a_999_rejecting_the_element(api_client, session):
    client = api_client("biller")
    raw = (DATA / "837p_valid.x12").read_bytes()
    assert raw.count(b"NM1*IL*1*DOE*") == 1
    file = raw.replace(b"NM1*IL*1*DOE*", b"NM1*IL*1*DO\xebE*")  # a Latin-1 byte: not even UTF-8
    response = client.post("/api/v1/edi/x12", data=file, headers=X12)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["X-Acknowledgment"] == "999" and response.headers["X-Accepted"] == "false"
    (ack,) = parse_999(response.data).acks
    (ts,) = ack.transaction_sets
    assert ts.status == "R"
    element_errors = [
        (seg.segment_id, e.position, e.code) for seg in ts.segment_errors for e in seg.element_errors
    ]
    assert ("NM1", 3, "6") in element_errors
    (row,) = _inbound(session)
    assert row.status is EdiFileStatus.FAILED
    assert any(
        e["element"] == "NM103" and e["code"] == "X12.ELEMENT_INVALID_CHARACTER"
        for e in row.error_summary["errors"]
    )


def test_inbox_file_with_an_invalid_byte_is_refused_with_findings_and_an_ack(
    session, folder_route, database_url, tmp_path
):
    inbox = Path(folder_route.settings["inbox"])
    inbox.mkdir(parents=True, exist_ok=True)
    text = (DATA / "835_clp04_overflow.x12").read_bytes().replace(b"1" + b"0" * 30, b"77.77")
    assert text.count(b"N1*PR*DEMO PAYER") == 1
    (inbox / "era-1.x12").write_bytes(text.replace(b"N1*PR*DEMO PAYER", b"N1*PR*DEMO PAY\xc3\x89R"))
    (inbox / "claims-2.x12").write_bytes(_isa06(b"SUB\xff\xfe\xfdMITTER   "))
    env = {"DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path / "instance")}
    result = run_cli("clearinghouse", "poll", "--route", str(folder_route.id), env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    files = json.loads(result.stdout)["routes"][0]["files"]
    assert [f["status"] for f in files] == ["failed", "failed"]
    by_rule = {f["rule"] for f in files}
    assert by_rule == {"x12_character_set"}
    n102 = next(f for f in files if f["kind"] == "835")
    assert [(e["segment"], e["element"]) for e in n102["errors"]] == [("N1", "N102")]
    assert n102["acknowledgment"] == "999"
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Remittance)) == 0  # nothing posted
    acks = list(session.scalars(select(EdiFile).where(EdiFile.direction == FileDirection.OUTBOUND)))
    assert sorted(a.kind.value for a in acks) == ["999", "TA1"]
    ack_999 = next(a for a in acks if a.kind.value == "999")
    (ts,) = parse_999(bytes(ack_999.content)).acks[0].transaction_sets
    assert ts.status == "R"
    assert ("N1", 2, "6") in [
        (s.segment_id, e.position, e.code) for s in ts.segment_errors for e in s.element_errors
    ]
    assert not list(inbox.iterdir())  # taken from the inbox: stored, not lost


@pytest.mark.parametrize("command", ["validate", "ack", "parse"])
def test_edi_commands_report_the_invalid_bytes(command, tmp_path):
    result = run_cli("edi", command, str(DATA / "837p_isa06_invalid_bytes.x12"), env={})
    assert "Traceback" not in result.stderr, result.stderr
    if command == "ack":
        assert result.returncode in (0, 1), result.stderr
        assert "TA1*000000101*240603*0930*R*006~" in result.stdout
        result.stdout.encode("ascii")
    elif command == "validate":
        assert result.returncode == 1
        assert "ISA06" in result.stdout and "character" in result.stdout
    else:
        assert result.returncode == 1
        findings = json.loads(result.stdout)["character_findings"]
        assert [(f["segment"], f["element"]) for f in findings] == [("ISA", "ISA06")]


def _patient_of(session, coverage_public_id: str):
    return session.scalar(select(Coverage).where(Coverage.public_id == coverage_public_id)).patient


def test_zoe_is_written_as_x12_text_and_an_unwritable_name_holds_only_its_claim(
    session, ids, make_claims, api_client
):
    # "Zoë" through the API (accepted there, as the issue found), then a ready claim.
    client = api_client("biller")
    zoe = _patient_of(session, ids["coverage"])
    answer = client.patch(f"/api/v1/patients/{zoe.public_id}", json={"first_name": "Zoë"})
    assert answer.status_code == 200, answer.get_json()
    session.expire_all()  # the API changed the row: this session must not write its old copy back
    # The dependent's last name has no Latin letter at all: that claim cannot be written.
    dependent = _patient_of(session, ids["dependent_coverage"])
    dependent.last_name = "李"
    session.commit()
    claims = make_claims(3)  # self (Zoë), dependent, self (Zoë)
    result = build_batches(session)
    session.commit()
    assert result.claims_batched == 2 and len(result.batch_ids) == 1
    (held,) = result.held
    assert held.public_id == claims[1].public_id
    (finding,) = [f for f in held.findings if f["severity"] == "error"]
    assert finding["path"] == "NM103" and finding["rule_id"].startswith("X12.")
    session.expire_all()
    states = {c.public_id: session.get(Claim, c.id).state for c in claims}
    assert states == {
        claims[0].public_id: ClaimState.BATCHED,
        claims[1].public_id: ClaimState.DRAFT,
        claims[2].public_id: ClaimState.BATCHED,
    }
    out = session.scalar(select(EdiFile).where(EdiFile.batch_id == result.batch_ids[0]))
    content = bytes(out.content)
    assert content.isascii()
    names = [s for s in read_text(content.decode()) if s.id == "NM1" and s.get(1) == "IL"]
    assert {s.get(4) for s in names} == {"Zoe"}
