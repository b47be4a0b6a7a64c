"""The simulator's payer rules and X12 answers: deterministic, balanced, valid by our validator."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal

from claims_server.simulator.book import BOOK_NAME, PayerBook
from claims_server.simulator.rules import DeductibleTracker, adjudicate, front_end
from claims_server.simulator.service import answer_837, remit_837, run_once
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


def _837(claims: list[edi.Claim], control: int = 41) -> bytes:
    batch = edi.Batch837(
        submitter=edi.Submitter("CLINIC", "SUB1", edi.Contact(name="BILLING", phone="2175550100")),
        receiver=edi.Receiver("CLEARINGHOUSE", "CH1"),
        claims=claims,
        sender_id="SUB1",
        receiver_id="CH1",
        created=datetime(2026, 3, 10, 9, 0),
    )
    return write_837(
        batch, interchange_control=control, group_control=control, transaction_controls=[f"{control:04d}"]
    ).encode()


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


# -- coordination of benefits: a later payer adjudicates from the prior payers' 835 ----------------

ADJUDICATED = date(2026, 3, 5)


def _cas(adjustments) -> list[tuple[str, str, int]]:
    return [(a.group, a.reason, a.amount_cents) for a in adjustments]


def _prior(
    lines: list[tuple[int, list[tuple[str, str, int]]]] | None,
    *,
    paid: int,
    responsibility: str = "P",
    payer_id: str = "PAYER1",
    claim_cas: tuple[tuple[str, str, int], ...] = (),
    adjudicated: date = ADJUDICATED,
    eaf: int | None = None,
) -> edi.OtherPayer:
    """A prior payer's 2320/2330B/2430: ``lines`` are (SVD02, CAS) per line, None for no 2430."""
    return edi.OtherPayer(
        payer=edi.Payer(name=f"PAYER {payer_id}", payer_id=payer_id),
        subscriber=edi.Subscriber(
            last_name="DOE",
            first_name="JANE",
            member_id=f"{payer_id}MEMBER",
            responsibility=responsibility,
            claim_filing_indicator="CI",
        ),
        paid_cents=paid,
        adjustments=tuple(edi.CasAdjustment(*a) for a in claim_cas),
        remaining_patient_liability_cents=eaf,
        payer_claim_control_number=f"{payer_id}CLAIM",
        adjudication_date=adjudicated,
        line_adjudications=tuple(
            edi.LineAdjudication(
                n, line_paid, "99213", adjudicated, adjustments=tuple(edi.CasAdjustment(*a) for a in cas)
            )
            for n, (line_paid, cas) in enumerate(lines or [], start=1)
        ),
    )


def _later(priors: list[edi.OtherPayer], *, responsibility: str = "S", when: date = DOS, pcn: str = "S1"):
    claim = _claim(pcn, [("99213", 12_500)], payer_id="PAYER2", when=when)
    return dataclasses.replace(
        claim,
        subscriber=dataclasses.replace(
            claim.subscriber, responsibility=responsibility, member_id="SECOND001"
        ),
        other_payers=priors,
    )


def _balanced(result) -> None:
    for line in result.lines:
        assert line.line.charge_cents - sum(a.amount_cents for a in line.adjustments) == line.paid_cents


def test_a_secondary_pays_what_the_primary_left_to_the_patient_and_restates_the_rest():
    # The demo's claim: 99213 billed 125.00, the primary allowed 91.00, paid 61.00, copay 30.00.
    result = _adjudicate(_later([_prior([(6_100, [("CO", "45", 3_400), ("PR", "3", 3_000)])], paid=6_100)]))
    assert result.status_code == "2"
    assert result.paid_cents == 3_000 and result.patient_cents == 0
    assert _cas(result.lines[0].adjustments) == [("CO", "45", 3_400), ("OA", "23", 6_100)]
    _balanced(result)
    # It never pays past its own allowed amount (91.00 less the 80.00 the primary paid):
    # the rest of what the primary left to the patient stays PR, never more.
    result = _adjudicate(_later([_prior([(8_000, [("CO", "45", 2_500), ("PR", "2", 2_000)])], paid=8_000)]))
    assert result.paid_cents == 1_100 and result.patient_cents == 900
    assert _cas(result.lines[0].adjustments) == [("CO", "45", 2_500), ("OA", "23", 8_000), ("PR", "2", 900)]
    _balanced(result)


def test_a_tertiary_counts_every_prior_payment_against_its_allowed_amount():
    primary = _prior([(8_000, [("CO", "45", 2_500), ("PR", "2", 2_000)])], paid=8_000)
    secondary = _prior(
        [(1_100, [("CO", "45", 2_500), ("OA", "23", 8_000), ("PR", "2", 900)])],
        paid=1_100,
        responsibility="S",
        payer_id="PAYER3",
    )
    result = _adjudicate(_later([secondary, primary], responsibility="T"))  # order of 2320s does not matter
    assert result.status_code == "3" and result.paid_cents == 0
    assert _cas(result.lines[0].adjustments) == [("CO", "45", 2_500), ("OA", "23", 9_100), ("PR", "2", 900)]
    _balanced(result)


def test_claim_level_cob_without_2430_is_spread_over_the_lines():
    with_cas = _later([_prior(None, paid=6_100, claim_cas=(("CO", "45", 3_400), ("PR", "3", 3_000)))])
    only_eaf = _later([_prior(None, paid=6_100, eaf=3_000)])
    for claim in (with_cas, only_eaf):
        result = _adjudicate(claim)
        assert result.paid_cents == 3_000 and result.patient_cents == 0
        assert _cas(result.lines[0].adjustments) == [("CO", "45", 3_400), ("OA", "23", 6_100)]


def test_a_secondary_counts_its_filing_limit_from_the_primarys_adjudication():
    lines = [(6_100, [("CO", "45", 3_400), ("PR", "3", 3_000)])]
    old_service = date(2025, 1, 2)  # 432 days before the 837: a primary would deny it CO-29
    assert (
        _adjudicate(_claim("P0", [("99213", 12_500)], when=old_service)).lines[0].adjustments[0].reason
        == "29"
    )
    prompt = _adjudicate(_later([_prior(lines, paid=6_100, adjudicated=date(2026, 3, 1))], when=old_service))
    assert prompt.paid_cents == 3_000
    late = _adjudicate(_later([_prior(lines, paid=6_100, adjudicated=date(2025, 6, 1))], when=old_service))
    # Denied for what it was asked to pay (the primary's PR), the rest restated; nothing allowed.
    assert late.status_code == "4" and late.paid_cents == 0
    assert _cas(late.lines[0].adjustments) == [("CO", "45", 3_400), ("CO", "29", 3_000), ("OA", "23", 6_100)]
    _balanced(late)


def test_cob_835_is_valid_balanced_and_restates_claim_level_pr(tmp_path):
    # The primary left 5.00 of deductible at the claim level (2320 CAS), inside its SVD02.
    prior = _prior(
        [(6_100, [("CO", "45", 3_400), ("PR", "3", 3_000)])], paid=5_600, claim_cas=(("PR", "1", 500),)
    )
    content = _837(
        [
            _later([prior], pcn="S1"),
            _later([_prior(None, paid=6_100, claim_cas=(("CO", "45", 3_400), ("PR", "3", 3_000)))], pcn="S2"),
        ]
    )
    assert answer_837(content, "cob.x12", tmp_path)["accepted"] == 2
    remit_837(content, "cob.x12", tmp_path)
    path = next(tmp_path.glob("835-*"))
    report = validate(path)
    assert report.valid, [f.message for f in report.findings]
    (remittance,) = parse_835_document(path).transactions
    assert remittance.balanced and not remittance.findings
    first, second = remittance.claims
    assert (first.status, first.paid_cents, first.patient_responsibility_cents) == ("2", 3_000, 500)
    assert _cas(first.adjustments) == [("PR", "1", 500), ("OA", "23", -500)]
    assert (second.paid_cents, second.patient_responsibility_cents) == (3_000, None)
    assert remittance.payment.amount_cents == 6_000


# -- replacements and voids: the payer reverses what it had in force ------------------------------


def _replacement(pcn: str, lines, named: str, *, frequency: str = "7") -> edi.Claim:
    return dataclasses.replace(
        _claim(pcn, lines, indicator="MC"), frequency_code=frequency, original_claim_number=named
    )


def _send(outbox, inbox, content: bytes, control: int):
    """Drop an 837 and let the simulator answer it (999 + 277CA, then the 835): its 835 set."""
    (outbox / f"837-{control}.x12").write_bytes(content)
    run_once(outbox, inbox)
    run_once(outbox, inbox)
    path = next(inbox.glob(f"835-*-{control:09d}-*"))
    report = validate(path)
    assert report.valid, [f.message for f in report.findings]
    document = parse_835_document(path)
    assert document.balanced and not document.all_findings()
    (remittance,) = document.transactions
    assert remittance.payment.amount_cents >= 0
    return path, remittance


def _negated(reversal, original) -> None:
    assert reversal.status == "22"
    assert reversal.patient_control_number == original.patient_control_number
    assert reversal.payer_claim_control_number == original.payer_claim_control_number
    assert (reversal.charge_cents, reversal.paid_cents) == (-original.charge_cents, -original.paid_cents)
    assert (reversal.patient_responsibility_cents or 0) == -(original.patient_responsibility_cents or 0)
    assert len(reversal.lines) == len(original.lines)
    for back, line in zip(reversal.lines, original.lines, strict=True):
        assert (back.charge_cents, back.paid_cents) == (-line.charge_cents, -line.paid_cents)
        assert _cas(back.adjustments) == [(g, r, -c) for g, r, c in _cas(line.adjustments)]


def test_replacements_and_voids_get_the_reversal_first_and_forward_balances_balance(tmp_path):
    outbox, inbox = tmp_path / "outbox", tmp_path / "inbox"
    outbox.mkdir()
    drug = [("99213", 12_500), ("J1100", 1_800)]  # Medicaid: the drug line is denied without its NDC
    _, first = _send(outbox, inbox, _837([_claim("G1", drug, indicator="MC")], 41), 41)
    (original,) = first.claims
    assert original.payer_claim_control_number == "SIM00000004100410001" and original.paid_cents == 9_100

    # A replacement naming it (REF*F8): the reversal, then the corrected adjudication, one 835.
    fixed = _replacement("G1R", drug, "SIM00000004100410001")
    fixed.lines[1] = dataclasses.replace(
        fixed.lines[1], ndc="63323016501", drug_quantity=Decimal(1), drug_unit="ML"
    )
    _, second = _send(outbox, inbox, _837([fixed], 42), 42)
    reversal, corrected = second.claims
    _negated(reversal, original)
    assert (corrected.patient_control_number, corrected.status, corrected.frequency) == ("G1R", "1", "7")
    assert corrected.payer_claim_control_number == "SIM00000004200420001"
    assert corrected.paid_cents == 9_100 + 1_440
    assert second.payment.amount_cents == 1_440 and not second.provider_adjustments

    # Our replacement of the replacement names the original number again: the payer reverses
    # what is in force (the first replacement's adjudication). It pays 14.40 less, so the
    # 835 nets below zero: BPR02 0 and the balance carried forward (PLB FB, negative).
    _, third = _send(outbox, inbox, _837([_replacement("G2R", drug[:1], "SIM00000004100410001")], 43), 43)
    reversal, again = third.claims
    _negated(reversal, corrected)
    assert again.paid_cents == 9_100
    assert third.payment.amount_cents == 0
    assert [(p.reason, p.reference, p.amount_cents) for p in third.provider_adjustments] == [
        ("FB", "G1R", -1_440)
    ]

    # A void: the reversal only (nothing adjudicated), carried forward too.
    void = _replacement("G3V", drug[:1], "SIM00000004100410001", frequency="8")
    void_path, fourth = _send(outbox, inbox, _837([void], 44), 44)
    (reversal,) = fourth.claims
    _negated(reversal, again)
    assert [(p.reason, p.reference, p.amount_cents) for p in fourth.provider_adjustments] == [
        ("FB", "G2R", -9_100)
    ]

    # The next 835 with money takes both forward balances back, oldest first.
    new = [
        _claim("N1", [("99214", 17_500)], indicator="MC"),
        _claim("N2", [("99213", 12_500)], indicator="MC"),
    ]
    _, fifth = _send(outbox, inbox, _837(new, 45), 45)
    assert sum(c.paid_cents for c in fifth.claims) == 12_900 + 9_100
    assert [(p.reason, p.reference, p.amount_cents) for p in fifth.provider_adjustments] == [
        ("FB", "G1R", 1_440),
        ("FB", "G2R", 9_100),
    ]
    assert fifth.payment.amount_cents == 22_000 - 10_540
    book = PayerBook.load(outbox / "remitted" / BOOK_NAME)
    assert book.forward == {}

    # Remitting the void's 837 again (a crash before it moved) gives the very same 835.
    again_inbox = tmp_path / "again"
    remit_837((outbox / "remitted" / "837-44.x12").read_bytes(), "837-44.x12", again_inbox, book=book)
    assert next(again_inbox.glob("835-*")).read_bytes() == void_path.read_bytes()
    # A further void of the same family finds nothing in force: no 835 at all.
    outcome = remit_837(
        _837([_replacement("G4V", drug[:1], "SIM00000004100410001", frequency="8")], 46),
        "x",
        tmp_path / "none",
        book=book,
    )
    assert outcome["reversed"] == 0 and not (tmp_path / "none").exists()


def test_a_replacement_naming_nothing_the_payer_knows_is_adjudicated_alone(tmp_path):
    outbox, inbox = tmp_path / "outbox", tmp_path / "inbox"
    outbox.mkdir()
    _, remittance = _send(outbox, inbox, _837([_replacement("R9", [("99213", 12_500)], "SIM99")], 47), 47)
    assert [(c.patient_control_number, c.status) for c in remittance.claims] == [("R9", "1")]
