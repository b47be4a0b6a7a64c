"""The simulator's payer rules and X12 answers: deterministic, balanced, valid by our validator."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from claims_server.simulator.rules import DeductibleTracker, adjudicate, front_end
from claims_server.simulator.service import answer_837, remit_837
from edi import claims as edi
from edi.identifiers import npi_with_check_digit
from edi.validate import validate
from edi.x277ca import parse_277ca
from edi.x835 import parse_835_document
from edi.x837 import write_837

NPI = npi_with_check_digit("123456789")
DOS = date(2026, 3, 2)
RECEIVED = date(2026, 3, 10)


def _claim(
    pcn: str,
    lines: list[tuple[str, int]],
    *,
    indicator: str = "CI",
    payer_id: str = "PAYER1",
    npi: str = NPI,
    member: str = "MEMBER001",
    when: date = DOS,
) -> edi.Claim:
    address = edi.Address("1 Main St", "Springfield", "IL", "627010001")
    return edi.Claim(
        patient_control_number=pcn,
        billing_provider=edi.BillingProvider(
            npi=npi, address=address, tax_id="930000017", organization_name="CLINIC"
        ),
        subscriber=edi.Subscriber(
            last_name="DOE",
            first_name="JANE",
            member_id=member,
            birth_date=date(1970, 1, 1),
            sex="F",
            address=address,
            claim_filing_indicator=indicator,
        ),
        payer=edi.Payer(name="PAYER ONE", payer_id=payer_id),
        lines=[
            edi.ServiceLine(
                procedure=code,
                charge_cents=cents,
                units=Decimal(1),
                service_date=when,
                line_control_number=f"{pcn}-{i}",
            )
            for i, (code, cents) in enumerate(lines, 1)
        ],
        diagnoses=[edi.Diagnosis("I10")],
        total_charge_cents=sum(c for _, c in lines),
        place_of_service="11",
    )


def _adjudicate(claim: edi.Claim, tracker: DeductibleTracker | None = None):
    return adjudicate(
        claim, received=RECEIVED, payer_claim_number="X1", deductibles=tracker or DeductibleTracker()
    )


def test_fee_schedule_deductible_and_coinsurance_balance():
    result = _adjudicate(_claim("A1", [("99214", 17_500), ("83036", 4_500)]))
    first = result.lines[0]
    assert first.allowed_cents == 12_900 and first.paid_cents == 0  # all to the $500 deductible
    assert [(a.group, a.reason, a.amount_cents) for a in first.adjustments] == [
        ("CO", "45", 4_600),
        ("PR", "1", 12_900),
    ]
    for line in result.lines:
        assert line.line.charge_cents - sum(a.amount_cents for a in line.adjustments) == line.paid_cents
    assert result.status_code == "1"


def test_deductible_is_met_across_claims_then_coinsurance():
    tracker = DeductibleTracker()
    for n in range(4):
        last = _adjudicate(_claim(f"D{n}", [("99215", 25_000)]), tracker)
    line = last.lines[0]
    assert [(a.group, a.reason) for a in line.adjustments] == [("CO", "45"), ("PR", "2")]
    assert line.paid_cents == 18_100 - (18_100 * 20 + 50) // 100


def test_copay_plan_and_unlisted_code_at_80_percent():
    result = _adjudicate(_claim("C1", [("99213", 12_500), ("99999", 10_000)], payer_id="DEMOSUMMIT"))
    visit, other = result.lines
    assert ("PR", "3", 3_000) in [(a.group, a.reason, a.amount_cents) for a in visit.adjustments]
    assert other.allowed_cents == 8_000


def test_planted_denials_by_carc():
    bundled = _adjudicate(_claim("B1", [("93000", 6_000), ("93010", 3_000)]))
    assert [(a.group, a.reason) for a in bundled.lines[1].adjustments] == [("CO", "97")]
    assert bundled.lines[1].remarks == ("M15",)
    drug = _adjudicate(_claim("J1", [("J1100", 1_800)]))
    assert drug.lines[0].adjustments[0].reason == "16" and drug.lines[0].remarks == ("M119",)
    assert drug.status_code == "4"
    late = _adjudicate(_claim("L1", [("99213", 12_500)], indicator="MC", when=date(2025, 10, 1)))
    assert late.lines[0].adjustments[0].reason == "29" and late.paid_cents == 0


def test_front_end_rejections():
    bad_npi = NPI[:-1] + str((int(NPI[-1]) + 1) % 10)
    assert front_end(_claim("N1", [("99213", 100)], npi=bad_npi)).statuses == (("A7", "562", "85"),)
    assert front_end(_claim("M1", [("99213", 100)], member="X1")).statuses == (("A7", "164", "IL"),)
    assert not front_end(_claim("P1", [("72148", 90_000)])).accepted
    assert front_end(_claim("OK", [("99213", 100)])).accepted


def _837(claims: list[edi.Claim]) -> bytes:
    batch = edi.Batch837(
        submitter=edi.Submitter("CLINIC", "SUB1", edi.Contact(name="BILLING", phone="2175550100")),
        receiver=edi.Receiver("CLEARINGHOUSE", "CH1"),
        claims=claims,
        sender_id="SUB1",
        receiver_id="CH1",
        created=datetime(2026, 3, 10, 9, 0),
    )
    return write_837(batch, interchange_control=41, group_control=41, transaction_controls=["0041"]).encode()


def test_answers_are_valid_balanced_and_deterministic(tmp_path):
    content = _837(
        [
            _claim("G1", [("99214", 17_500), ("83036", 4_500)]),
            _claim("G2", [("93000", 6_000), ("93010", 3_000)], payer_id="PAYER2"),
            _claim("R1", [("72148", 90_000)]),
        ]
    )
    first, second = tmp_path / "a", tmp_path / "b"
    outcome = answer_837(content, "in.x12", first)
    answer_837(content, "in.x12", second)
    remit_837(content, "in.x12", first)
    remit_837(content, "in.x12", second)
    assert outcome == {"file": "in.x12", "acknowledgment": "999", "accepted": 2, "rejected": 1}
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in second.iterdir()) and len(names) == 3
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes()
        report = validate(first / name)
        assert report.valid, [f.message for f in report.findings]
    ack = parse_277ca(next(first.glob("277CA-*")))
    verdicts = {c.patient_control_number: c.outcome for t in ack.transactions for c in t.claims}
    assert verdicts == {"G1": "accepted", "G2": "accepted", "R1": "rejected"}
    remittance = parse_835_document(next(first.glob("835-*")))
    assert not remittance.findings
    assert all(t.balanced and not t.findings for t in remittance.transactions)
    paid = {c.patient_control_number for t in remittance.transactions for c in t.claims}
    assert paid == {"G1", "G2"}  # the rejected claim is never adjudicated
