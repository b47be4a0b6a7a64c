"""PLB adjustments (issue 17): each reference linked to the claim it names, the right
accounts (L6 interest income; WO/WU/FB/72/J1/OB payer offset; the rest provider
adjustments), a reconciliation work item for each, and cash clearing = BPR02.

Amounts are computed by hand from the 835 each test builds. Conventions: debit positive,
credit negative; BPR02 = Σ CLP04 - Σ PLB04 (a positive PLB is money the payer kept).
The reference shapes follow CMS CR 7499 (Medicare 5010 recoupments: positions 1-19 the
demand letter's control number, 20-39 the patient control number; DME: 1-14 the financial
control number, 15-29 the adjustment claim control number) and X12 RFI 484 / 2370
(CLP01, CLP07 and TRN02 in one reference).
"""

from __future__ import annotations

from sqlalchemy import func, select

from claims_server.ledger import account_totals, balance
from claims_server.models import (
    AccountCode,
    Claim,
    ClaimPayment,
    ProviderAdjustment,
    Remittance,
    WorkItem,
)
from claims_server.models.workqueue import WorkQueue
from claims_server.remittance.plb import account_for, reference_candidates
from claims_server.remittance.services import receive_and_post
from claims_server.workqueue.services import explanation_of
from tests.integration.remittance.support import Clp, Svc, build_835, make_claim

AR_INS, CASH = AccountCode.AR_INSURANCE.value, AccountCode.CASH_CLEARING.value
GROSS, CONTRACTUAL = AccountCode.GROSS_CHARGES.value, AccountCode.CONTRACTUAL_ADJUSTMENTS.value
PROVIDER = AccountCode.PROVIDER_ADJUSTMENTS.value
INTEREST, OFFSET = AccountCode.INTEREST_INCOME.value, AccountCode.PAYER_OFFSET.value


def lcns(claim: Claim) -> list[str]:
    return [line.line_control_number for line in claim.service_lines]


def paid_claim(claim: Claim, charge: int, paid: int, *, ccn: str = "PCCN0001") -> Clp:
    """A one-line claim paid ``paid`` with the rest CO-45."""
    (lcn,) = lcns(claim)
    cas = [("CO", "45", charge - paid)] if charge - paid else []
    return Clp(
        claim.patient_control_number,
        "1",
        charge,
        paid,
        0,
        lines=[Svc("99213", charge, paid, cas, lcn=lcn)],
        payer_claim_number=ccn,
    )


def post(factory, content: bytes):
    report = receive_and_post(factory, content)
    assert report.status == "posted", report.error
    (result,) = report.remittances
    assert all(c.ok for c in result.checks), [c.to_json_dict() for c in result.checks]
    return result


def remittance(session, trace: str) -> Remittance:
    session.expire_all()
    return session.scalar(select(Remittance).where(Remittance.trace_number == trace))


def plbs(session, rem: Remittance) -> list[ProviderAdjustment]:
    return list(
        session.scalars(
            select(ProviderAdjustment)
            .where(ProviderAdjustment.remittance_id == rem.id)
            .order_by(ProviderAdjustment.id)
        )
    )


def reconciliation_items(session) -> list[WorkItem]:
    return list(
        session.scalars(
            select(WorkItem).where(WorkItem.queue == WorkQueue.RECONCILIATION).order_by(WorkItem.id)
        )
    )


def cash_of(session, rem: Remittance) -> int:
    return balance(session, [CASH], remittance_id=rem.id)


# -- the reference shapes, read without a database ----------------------------------------------


def test_reference_candidates_read_the_common_shapes():
    assert reference_candidates(None) == ()
    assert reference_candidates("   ") == ()
    # The whole reference first (a CLP01 or CLP07 as sent), short ones included.
    assert reference_candidates("A1") == ("A1",)
    assert reference_candidates(" PCN-77 ") == ("PCN-77",)
    # A label and "#": the identifier after it.
    assert reference_candidates("ABC123 CLAIM#PCN-77") == ("ABC123 CLAIM#PCN-77", "ABC123", "CLAIM", "PCN-77")
    # RFI 2370: CLP01, CLP07 and TRN02 together.
    assert reference_candidates("PCN-77 ACME123456 TRACE9")[1:4] == ("PCN-77", "ACME123456", "TRACE9")
    # A label glued to the number.
    assert "77001234" in reference_candidates("CLM77001234")
    assert "77001234" in reference_candidates("ICN-77001234")
    assert "ANT12345" not in reference_candidates("CLAIMANT12345")  # a word, not a label
    # CMS A/B (CR 7499): 19 positions of control number, then the patient control number.
    medicare = "0312345678901234567" + "PCN-77"
    assert {"0312345678901234567", "PCN-77"} <= set(reference_candidates(medicare))
    # CMS DME: 14 positions of financial control number, then the adjustment ICN (15 positions).
    dme = "12345678901234" + "ACME00000000099"
    assert {"12345678901234", "ACME00000000099"} <= set(reference_candidates(dme))
    # Derived pieces shorter than four characters are not tried.
    assert reference_candidates("WO A1 XYZ") == ("WO A1 XYZ",)


def test_account_for_each_reason():
    assert account_for("L6") == AccountCode.INTEREST_INCOME
    for code in ("WO", "WU", "FB", "72", "J1", "OB", "wo"):
        assert account_for(code) == AccountCode.PAYER_OFFSET
    for code in ("CS", "90", "IR", "CV", "CT", "50", ""):
        assert account_for(code) == AccountCode.PROVIDER_ADJUSTMENTS


# -- posting -------------------------------------------------------------------------------------


def test_l6_interest_is_interest_income_linked_to_its_claim(session, world, factory):
    claim = make_claim(session, world, "PCN-L1", [("99213", 10000)])
    # Paid 80.00 (CO-45 20.00); L6 interest -2.50 naming the claim: BPR02 = 80.00 + 2.50 = 82.50.
    content = build_835(
        [paid_claim(claim, 10000, 8000)], plb=[("L6", -250)], plb_references=["PCN-L1"], trace="T-L1"
    )
    result = post(factory, content)
    rem = remittance(session, "T-L1")
    assert rem.payment_amount_cents == 8250
    assert cash_of(session, rem) == 8250
    assert account_totals(session, remittance_id=rem.id) == {CASH: 8250, INTEREST: -250}
    # Interest income is credited; nothing goes to the contra-revenue provider adjustments.
    totals = account_totals(session)
    assert totals[INTEREST] == -250
    assert PROVIDER not in totals and OFFSET not in totals
    assert sum(totals.values()) == 0
    # The claim's own ledger is the payment only (interest carries no claim dimension).
    assert account_totals(session, claim_id=claim.id) == {GROSS: -10000, CASH: 8000, CONTRACTUAL: 2000}
    (pa,) = plbs(session, rem)
    assert (pa.reason_code, pa.reference, pa.amount_cents) == ("L6", "PCN-L1", -250)
    assert (pa.reference_kind, pa.claim_id, pa.claim_payment_id) == ("claim", claim.id, None)
    (item,) = reconciliation_items(session)
    assert item.reason_codes == ["PLB-L6"]
    assert (item.claim_id, item.remittance_id, item.provider_adjustment_id) == (claim.id, rem.id, pa.id)
    assert item.dedupe_key == f"plb:{pa.id}" and item.priority == 0
    assert "interest" in item.recommended_action.lower()
    explanation = explanation_of(item)
    assert "L6" in explanation and "added 2.50" in explanation and "interest income" in explanation
    assert claim.public_id in explanation
    assert result.work_items_opened == 1


def test_wo_recoupment_naming_a_claim_debits_the_payer_offset(session, world, factory):
    first = make_claim(session, world, "PCN-W1", [("99213", 10000)])
    second = make_claim(session, world, "PCN-W2", [("99213", 5000)])
    post(factory, build_835([paid_claim(first, 10000, 9000)], trace="T-W1"))
    # Next payment: 50.00 for the second claim, 12.00 recouped for the first: BPR02 = 38.00.
    post(
        factory,
        build_835(
            [paid_claim(second, 5000, 5000)],
            plb=[("WO", 1200)],
            plb_references=["PCN-W1"],
            trace="T-W2",
            control=2,
        ),
    )
    rem = remittance(session, "T-W2")
    assert rem.payment_amount_cents == 3800 and cash_of(session, rem) == 3800
    acme = world.payers["DEMOACME"]
    assert balance(session, [OFFSET], payer_id=acme) == 1200
    assert balance(session, [OFFSET], claim_id=first.id) == 1200
    assert balance(session, [OFFSET], patient_id=first.patient_id) == 1200
    assert balance(session, [PROVIDER]) == 0
    # The claim's A/R is untouched (the recoupment is money the payer kept, held against it);
    # its postings still sum to zero: 90.00 paid, 12.00 taken back through the offset.
    assert account_totals(session, claim_id=first.id) == {
        GROSS: -10000,
        CASH: 9000 - 1200,
        CONTRACTUAL: 1000,
        OFFSET: 1200,
    }
    assert balance(session, [AR_INS], claim_id=first.id) == 0
    (pa,) = plbs(session, rem)
    assert (pa.reference_kind, pa.claim_id) == ("claim", first.id)
    (item,) = reconciliation_items(session)
    assert item.claim_id == first.id and item.remittance_id == rem.id and item.provider_adjustment_id == pa.id
    assert item.reason_codes == ["PLB-WO"] and item.priority == 1
    assert "recouped an overpayment" in item.recommended_action
    assert "kept 12.00" in explanation_of(item)
    assert sum(account_totals(session).values()) == 0


def test_forward_balance_negative_then_positive_returns_the_offset_to_zero(session, world, factory):
    one = make_claim(session, world, "PCN-F1", [("99213", 6000)])
    two = make_claim(session, world, "PCN-F2", [("99213", 3000)])
    # File 1: paid 60.00, FB -15.00 (the payer advances 15.00): BPR02 = 75.00.
    post(
        factory,
        build_835(
            [paid_claim(one, 6000, 6000)], plb=[("FB", -1500)], plb_references=["FB0110A"], trace="T-F1"
        ),
    )
    rem1 = remittance(session, "T-F1")
    assert rem1.payment_amount_cents == 7500 and cash_of(session, rem1) == 7500
    acme = world.payers["DEMOACME"]
    assert balance(session, [OFFSET], payer_id=acme) == -1500
    # File 2: paid 30.00, FB +15.00 (the payer takes it back): BPR02 = 15.00.
    post(
        factory,
        build_835(
            [paid_claim(two, 3000, 3000)],
            plb=[("FB", 1500)],
            plb_references=["FB0110A"],
            trace="T-F2",
            control=2,
        ),
    )
    rem2 = remittance(session, "T-F2")
    assert rem2.payment_amount_cents == 1500 and cash_of(session, rem2) == 1500
    assert balance(session, [OFFSET], payer_id=acme) == 0
    assert balance(session, [OFFSET], remittance_id=rem1.id) == -1500
    assert balance(session, [OFFSET], remittance_id=rem2.id) == 1500
    assert [(p.reference_kind, p.claim_id) for p in (*plbs(session, rem1), *plbs(session, rem2))] == [
        ("other", None),
        ("other", None),
    ]
    items = reconciliation_items(session)
    assert [(i.remittance_id, i.reason_codes, i.claim_id) for i in items] == [
        (rem1.id, ["PLB-FB"], None),
        (rem2.id, ["PLB-FB"], None),
    ]
    assert all("forward balance" in i.recommended_action.lower() for i in items)
    assert "added 15.00" in explanation_of(items[0]) and "kept 15.00" in explanation_of(items[1])


def test_authorized_return_and_cs(session, world, factory):
    claim = make_claim(session, world, "PCN-R1", [("99213", 10000)])
    # Paid 100.00; 72 -40.00 naming the claim (a refund the payer acknowledges), CS 7.25 with no
    # reference, CS -3.10 with a reference of the payer's own (corpus: CS:8888888888887).
    # ΣPLB = -40.00 + 7.25 - 3.10 = -35.85, BPR02 = 100.00 + 35.85 = 135.85.
    content = build_835(
        [paid_claim(claim, 10000, 10000)],
        plb=[("72", -4000), ("CS", 725), ("CS", -310)],
        plb_references=["PCN-R1", None, "8888888888887"],
        trace="T-R1",
    )
    post(factory, content)
    rem = remittance(session, "T-R1")
    assert rem.payment_amount_cents == 13585 and cash_of(session, rem) == 13585
    assert balance(session, [OFFSET], remittance_id=rem.id) == -4000
    assert balance(session, [OFFSET], claim_id=claim.id) == -4000
    assert balance(session, [PROVIDER], remittance_id=rem.id) == 725 - 310
    assert balance(session, [PROVIDER], claim_id=claim.id) == 0  # provider adjustments: per payer only
    assert account_totals(session, claim_id=claim.id) == {GROSS: -10000, CASH: 10000 + 4000, OFFSET: -4000}
    assert [(p.reason_code, p.reference_kind, p.claim_id) for p in plbs(session, rem)] == [
        ("72", "claim", claim.id),
        ("CS", "none", None),
        ("CS", "other", None),
    ]
    items = reconciliation_items(session)
    assert [i.reason_codes for i in items] == [["PLB-72"], ["PLB-CS"], ["PLB-CS"]]
    assert [i.claim_id for i in items] == [claim.id, None, None]
    assert [i.priority for i in items] == [1, 0, 0]
    assert "provider adjustments" in items[1].recommended_action


def test_reference_by_payer_claim_number_in_an_earlier_and_the_same_file(session, world, factory):
    earlier = make_claim(session, world, "PCN-C1", [("99213", 10000)])
    same = make_claim(session, world, "PCN-C2", [("99213", 4000)])
    post(factory, build_835([paid_claim(earlier, 10000, 8000, ccn="ACMECCN5551")], trace="T-C1"))
    # Next file: claim C2 (CLP07 ACMECCN5552) paid 40.00; WO 20.00 naming C1 by its CLP07 and
    # L6 -1.00 naming C2 by the CLP07 of this same file: BPR02 = 40.00 - 20.00 + 1.00 = 21.00.
    post(
        factory,
        build_835(
            [paid_claim(same, 4000, 4000, ccn="ACMECCN5552")],
            plb=[("WO", 2000), ("L6", -100)],
            plb_references=["ACMECCN5551", "ACMECCN5552"],
            trace="T-C2",
            control=2,
        ),
    )
    rem1, rem2 = remittance(session, "T-C1"), remittance(session, "T-C2")
    assert rem2.payment_amount_cents == 2100 and cash_of(session, rem2) == 2100
    cp_earlier = session.scalar(select(ClaimPayment).where(ClaimPayment.remittance_id == rem1.id))
    cp_same = session.scalar(select(ClaimPayment).where(ClaimPayment.remittance_id == rem2.id))
    wo, l6 = plbs(session, rem2)
    assert (wo.reference_kind, wo.claim_id, wo.claim_payment_id) == ("payer_claim", earlier.id, cp_earlier.id)
    assert (l6.reference_kind, l6.claim_id, l6.claim_payment_id) == ("payer_claim", same.id, cp_same.id)
    assert balance(session, [OFFSET], claim_id=earlier.id) == 2000
    assert balance(session, [INTEREST]) == -100
    items = reconciliation_items(session)
    assert [(i.claim_id, i.reason_codes) for i in items] == [(earlier.id, ["PLB-WO"]), (same.id, ["PLB-L6"])]
    assert "payer's claim number" in explanation_of(items[0])


def test_another_payers_claim_number_and_unknown_references_name_nothing(session, world, factory):
    acme_claim = make_claim(session, world, "PCN-U1", [("99213", 10000)])
    post(factory, build_835([paid_claim(acme_claim, 10000, 10000, ccn="ACMECCN7001")], trace="T-U1"))
    medicare_claim = make_claim(session, world, "PCN-U2", [("99213", 5000)], coverage=world.with_secondary)
    # Medicare's file: paid 50.00; WO 5.00 naming ACME's claim number (not Medicare's), WO 3.00
    # with a reference of nothing ours, J1 2.00 with none: BPR02 = 50.00 - 10.00 = 40.00.
    post(
        factory,
        build_835(
            [paid_claim(medicare_claim, 5000, 5000, ccn="MCRCCN1")],
            plb=[("WO", 500), ("WO", 300), ("J1", 200)],
            plb_references=["ACMECCN7001", "ZZ NOT OURS 1", None],
            trace="T-U2",
            payer="DEMOMCRB",
            control=2,
        ),
    )
    rem = remittance(session, "T-U2")
    assert rem.payment_amount_cents == 4000 and cash_of(session, rem) == 4000
    assert [(p.reference_kind, p.claim_id, p.claim_payment_id) for p in plbs(session, rem)] == [
        ("other", None, None),
        ("other", None, None),
        ("none", None, None),
    ]
    medicare = world.payers["DEMOMCRB"]
    assert balance(session, [OFFSET], payer_id=medicare) == 1000
    assert balance(session, [OFFSET], payer_id=world.payers["DEMOACME"]) == 0
    assert balance(session, [OFFSET], claim_id=acme_claim.id) == 0
    items = reconciliation_items(session)
    assert [(i.claim_id, i.reason_codes, i.priority) for i in items] == [
        (None, ["PLB-WO"], 1),
        (None, ["PLB-WO"], 1),
        (None, ["PLB-J1"], 1),
    ]
    assert "names none of our claims" in explanation_of(items[0])
    assert "carries no reference" in explanation_of(items[2])


def test_payer_reference_shapes_link_the_claim(session, world, factory):
    s1 = make_claim(session, world, "PCN-S1", [("99213", 1000)])
    s2 = make_claim(session, world, "PCN-S2", [("99213", 1000)])
    s3 = make_claim(session, world, "PCN-S3", [("99213", 1000)])
    s4 = make_claim(session, world, "77001234", [("99213", 1000)])
    s5 = make_claim(session, world, "PCN-S5", [("99213", 1000)])
    s6 = make_claim(session, world, "PCN-S6", [("99213", 1000)])
    clps = [
        paid_claim(c, 1000, 1000, ccn=f"ACME0000000000{n}") for n, c in enumerate((s1, s2, s3, s4, s5, s6), 1)
    ]
    post(factory, build_835(clps, trace="T-S0"))
    references = [
        "ABC123 CLAIM#PCN-S1",  # a label and '#'
        "0312345678901234567PCN-S2",  # CMS A/B: control number 1-19, our claim number 20-39
        "12345678901234" + "ACME00000000003",  # CMS DME: FCN 1-14, adjustment ICN (CLP07) 15-29
        "CLM77001234",  # a label glued to our number
        "PCN-S5 ACME00000000005 T-S0",  # RFI 2370: CLP01, CLP07, TRN02
        "PCN-S6 PCN-S1",  # two claims: the first is linked, the other named in the explanation
        "22012345678901 1EG4TE5MK73",  # an ICN and a Medicare id: none of ours
    ]
    amounts = [100, 200, 300, 400, 500, 600, 700]
    s0 = make_claim(session, world, "PCN-S0", [("99213", 5000)])
    post(
        factory,
        build_835(
            [paid_claim(s0, 5000, 5000, ccn="ACMEOTHER")],
            plb=[("WO", a) for a in amounts],
            plb_references=references,
            trace="T-S1",
            control=2,
        ),
    )
    rem = remittance(session, "T-S1")
    # Paid 50.00, ΣPLB = 28.00 (in two PLB segments): BPR02 = 22.00.
    assert rem.payment_amount_cents == 2200 and cash_of(session, rem) == 2200
    found = [(p.reference_kind, p.claim_id) for p in plbs(session, rem)]
    assert found == [
        ("claim", s1.id),
        ("claim", s2.id),
        ("payer_claim", s3.id),
        ("claim", s4.id),
        ("claim", s5.id),
        ("claim", s6.id),
        ("other", None),
    ]
    for claim, cents in zip((s1, s2, s3, s4, s5, s6), amounts, strict=False):
        assert balance(session, [OFFSET], claim_id=claim.id) == cents
    items = reconciliation_items(session)
    assert len(items) == 7
    assert s1.public_id in explanation_of(items[5]) and s6.public_id in explanation_of(items[5])
    # The reference (it may hold a member id) is in the encrypted explanation, not the action.
    assert all("1EG4TE5MK73" not in (i.recommended_action or "") for i in items)
    assert "1EG4TE5MK73" in explanation_of(items[6])


def test_a_rerun_posts_and_queues_nothing_twice(session, world, factory):
    claim = make_claim(session, world, "PCN-D1", [("99213", 10000)])
    content = build_835(
        [paid_claim(claim, 10000, 9000)],
        plb=[("WO", 1000), ("L6", -50), ("CS", 25)],
        plb_references=["PCN-D1", "PCN-D1", None],
        trace="T-D1",
    )
    post(factory, content)
    again = receive_and_post(factory, content)
    assert again.status == "duplicate"
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(ProviderAdjustment)) == 3
    assert len(reconciliation_items(session)) == 3
    rem = remittance(session, "T-D1")
    # BPR02 = 90.00 - (10.00 - 0.50 + 0.25) = 80.25.
    assert cash_of(session, rem) == 8025 == rem.payment_amount_cents
    assert account_totals(session, remittance_id=rem.id)[OFFSET] == 1000
    assert sum(account_totals(session).values()) == 0


def test_reconciliation_items_are_listed_filtered_and_shown(session, world, factory, api_client):
    claim = make_claim(session, world, "PCN-Q1", [("99213", 10000)])
    post(
        factory,
        build_835(
            [paid_claim(claim, 10000, 10000)],
            plb=[("WO", 900), ("L6", -75)],
            plb_references=["PCN-Q1", None],
            trace="T-Q1",
        ),
    )
    wo, l6 = reconciliation_items(session)
    client = api_client("biller")
    base = "/api/v1/workqueue/items"
    listed = client.get(f"{base}?queue=reconciliation")
    assert listed.status_code == 200
    assert sorted(i["id"] for i in listed.get_json()["items"]) == sorted([wo.public_id, l6.public_id])
    by_reason = client.get(f"{base}?reason=PLB-WO").get_json()["items"]
    assert [i["id"] for i in by_reason] == [wo.public_id]
    shown = client.get(f"{base}/{l6.public_id}")
    assert shown.status_code == 200
    assert "interest" in shown.get_json()["explanation"].lower()
    page = client.get("/ui/queues?queue=reconciliation")
    assert page.status_code == 200 and b"PLB-WO" in page.data
