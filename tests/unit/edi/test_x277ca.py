"""277CA: both corpus files, and hand-written cases for the category table."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from edi.x277ca import CATEGORIES, category_outcome, parse_277ca

CORPUS = (
    Path(__file__).resolve().parents[2] / "data" / "corpus" / "imsweb_x12-parser/src/test/resources/277_5010"
)


def test_accepted_277ca() -> None:
    document = parse_277ca(CORPUS / "x12_277CA_accepted.txt")
    (tx,) = document.transactions
    assert (tx.control_number, tx.implementation, tx.reference) == ("000014420", "005010X214", "000000674")
    assert tx.payer is not None and tx.payer.name == "NYSDOH"
    (receiver,) = tx.receivers
    assert receiver.statuses[0].codes[0].category == "A1" and receiver.amounts == {"YU": 12500}
    (claim,) = tx.claims
    assert claim.patient_control_number == "5781"
    assert claim.payer_claim_control_number == "1107000000014420"
    assert claim.provider_npi == "1234567890"
    (status,) = claim.statuses
    assert (status.codes[0].category, status.codes[0].code, status.action_code) == ("A2", "20", "WQ")
    assert status.charge_cents == 12500 and status.effective_date == date(2011, 3, 11)
    assert claim.accepted and not claim.rejected and claim.outcome == "accepted"
    data = document.to_json_dict()
    assert data["transactions"][0]["accepted_claims"] == 1


def test_rejected_277ca_with_pipe_component_separator() -> None:
    (tx,) = parse_277ca(CORPUS / "x12_277CA_rejected.txt").transactions
    (claim,) = tx.claims
    assert claim.patient_control_number == "3920394930203"
    (status,) = claim.statuses
    code = status.codes[0]
    assert (code.category, code.code, code.entity) == ("A7", "562", "85")
    assert claim.rejected and claim.outcome == "rejected"
    assert claim.bill_type == "731" and claim.service_date == date(2009, 3, 11)
    assert tx.to_json_dict()["rejected_claims"] == 1


HAND = (
    "ISA*00*          *00*          *ZZ*PAYER          *ZZ*SUBMIT01       *240603*0930*^*00501*000000005*0*P*:~"
    "GS*HN*PAYER*SUBMIT01*20240603*0930*5*X*005010X214~ST*277*0001*005010X214~"
    "BHT*0085*08*BATCH1*20240603*0930*TH~HL*1**20*1~NM1*PR*2*SYNTHETIC PLAN*****PI*SYN01~TRN*1*T1~"
    "DTP*050*D8*20240603~DTP*009*D8*20240603~HL*2*1*21*1~NM1*41*2*SYNTHETIC BILLING*****46*SUB01~TRN*2*B1~"
    "STC*A1:19:PR*20240603*WQ*350~QTY*90*1~QTY*AA*1~AMT*YU*100~AMT*YY*250~"
    "HL*3*2*19*1~NM1*85*2*SYNTHETIC CLINIC*****XX*1234567893~TRN*1*P1~"
    "HL*4*3*PT~NM1*QC*1*DOE*JANE****MI*MEM1~TRN*2*PCN-OK~STC*A2:20*20240603*WQ*100~REF*1K*PAYER1~"
    "DTP*472*RD8*20240501-20240502~"
    "HL*5*3*PT~NM1*QC*1*ROE*RICHARD****MI*MEM2~TRN*2*PCN-BAD~STC*A3:21:85*20240603*U*250******A7:562:85~"
    "REF*D9*CH1~DTP*472*D8*20240501~SVC*HC:99213:25*150*0****1~STC*A7:453*20240603*U*150~REF*FJ*LINE1~"
    "DTP*472*D8*20240501~SE*34*0001~GE*1*5~IEA*1*000000005~"
)


def test_hand_written_277ca_with_line_status_and_second_composite() -> None:
    (tx,) = parse_277ca(HAND.encode()).transactions
    ok, bad = tx.claims
    assert ok.patient_control_number == "PCN-OK" and ok.accepted
    assert (ok.service_date, ok.service_date_end) == (date(2024, 5, 1), date(2024, 5, 2))
    assert bad.patient_control_number == "PCN-BAD" and bad.rejected
    assert [(c.category, c.code, c.entity) for c in bad.statuses[0].codes] == [
        ("A3", "21", "85"),
        ("A7", "562", "85"),
    ]
    assert bad.clearinghouse_trace_number == "CH1"
    (line,) = bad.lines
    assert (line.procedure, line.modifiers, line.charge_cents, line.line_control_number) == (
        "99213",
        ("25",),
        15000,
        "LINE1",
    )
    assert line.statuses[0].outcome == "rejected"
    (receiver,) = tx.receivers
    assert {k: str(v) for k, v in receiver.quantities.items()} == {"90": "1", "AA": "1"}
    assert receiver.amounts == {"YU": 10000, "YY": 25000}
    assert tx.findings == []


def test_unknown_category_is_a_finding() -> None:
    (tx,) = parse_277ca(HAND.replace("STC*A2:20", "STC*ZZ:20").encode()).transactions
    assert [f.code for f in tx.findings] == ["277_CATEGORY_UNKNOWN"]
    assert tx.findings[0].element == "STC01-1" and tx.findings[0].loop == "2000D"
    assert tx.claims[0].outcome == "unknown" and not tx.claims[0].accepted


@pytest.mark.parametrize(
    ("category", "outcome"),
    [
        ("A1", "accepted"),
        ("A2", "accepted"),
        ("A3", "rejected"),
        ("A4", "rejected"),
        ("A6", "rejected"),
        ("A7", "rejected"),
        ("A8", "rejected"),
        ("P1", "pending"),
        ("F2", "finalized"),
        ("E0", "error"),
        ("R3", "request"),
        ("Q9", "unknown"),
    ],
)
def test_category_outcomes(category: str, outcome: str) -> None:
    assert category_outcome(category) == outcome


def test_every_category_has_an_outcome_and_a_description() -> None:
    outcomes = {"accepted", "rejected", "pending", "finalized", "request", "error"}
    assert all(o in outcomes and d for o, d in CATEGORIES.values())


def test_unreadable_input() -> None:
    document = parse_277ca(b"\x00\x01")
    assert not document.readable and document.findings
