"""The remittance detail (GET /api/v1/remittances/{id} and the workspace page) shows each PLB
with its reason, what its reference names (``reference_kind``) and the claim's public id, and
never the reference itself: PLB03-2 may carry a member id (Medicare's "original ICN and
Medicare ID"; ``claims_server/remittance/plb.py``).

The 835s are built by hand; 1EG4TE5MK73 is CMS's published example MBI (synthetic).
"""

from __future__ import annotations

from sqlalchemy import select

from claims_server.models import ProviderAdjustment, Remittance, WorkItem
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from claims_server.remittance.services import receive_and_post, remittance_detail_json
from tests.integration.remittance.support import Clp, Svc, build_835, make_claim

MEMBER_ID = "1EG4TE5MK73"


def _paid(claim, charge: int, paid: int, ccn: str) -> Clp:
    (lcn,) = (line.line_control_number for line in claim.service_lines)
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


def _post(factory, content: bytes) -> None:
    report = receive_and_post(factory, content)
    assert report.status == "posted", report.error


def _setup(session, world, factory):
    """File 1 pays claim one (CLP07 ICN-DP1). File 2 pays claim two 50.00 and carries five PLBs:
    WO 12.00 naming claim one by our number, WO 5.00 naming it by the payer's ICN, WO 3.00
    naming it by "ICN and Medicare ID", L6 -2.50 whose reference is a member id alone, CS 1.00
    with no reference. ΣPLB = 12.00 + 5.00 + 3.00 - 2.50 + 1.00 = 18.50; BPR02 = 31.50."""
    one = make_claim(session, world, "PCN-DP1", [("99213", 10000)])
    two = make_claim(session, world, "PCN-DP2", [("99213", 5000)])
    _post(factory, build_835([_paid(one, 10000, 9000, "ICN-DP1")], trace="DP-1", control=1))
    _post(
        factory,
        build_835(
            [_paid(two, 5000, 5000, "ICN-DP2")],
            plb=[("WO", 1200), ("WO", 500), ("WO", 300), ("L6", -250), ("CS", 100)],
            plb_references=["PCN-DP1", "ICN-DP1", f"ICN-DP1 {MEMBER_ID}", MEMBER_ID, None],
            trace="DP-2",
            control=2,
        ),
    )
    session.expire_all()
    rem = session.scalar(select(Remittance).where(Remittance.trace_number == "DP-2"))
    assert rem.payment_amount_cents == 3150
    # The member id is stored (encrypted explanations aside, only in provider_adjustments).
    stored = session.scalars(
        select(ProviderAdjustment.reference)
        .where(ProviderAdjustment.remittance_id == rem.id)
        .order_by(ProviderAdjustment.id)
    ).all()
    assert stored == ["PCN-DP1", "ICN-DP1", f"ICN-DP1 {MEMBER_ID}", MEMBER_ID, None]
    items = {
        item.provider_adjustment_id: item
        for item in session.scalars(select(WorkItem).where(WorkItem.queue == WorkQueue.RECONCILIATION))
    }
    return one, rem, items


def _expected(one, rem, items, session) -> list[dict]:
    pas = session.scalars(
        select(ProviderAdjustment)
        .where(ProviderAdjustment.remittance_id == rem.id)
        .order_by(ProviderAdjustment.id)
    ).all()
    rows = [
        ("WO", "overpayment recovery", "12.00", "claim", one.public_id, "PCN-DP1"),
        ("WO", "overpayment recovery", "5.00", "payer_claim", one.public_id, "ICN-DP1"),
        ("WO", "overpayment recovery", "3.00", "payer_claim", one.public_id, "ICN-DP1"),
        ("L6", "interest", "-2.50", "other", None, None),
        ("CS", None, "1.00", "none", None, None),
    ]
    expected = []
    for pa, (reason, label, amount, kind, claim, matched) in zip(pas, rows, strict=True):
        item = items[pa.id]
        assert item.status is WorkItemStatus.OPEN
        expected.append(
            {
                "provider_identifier": "1234567893",
                "fiscal_period_date": "2026-12-31",
                "reason": reason,
                "reason_label": label,
                "amount": amount,
                "reference_kind": kind,
                "claim": claim,
                "matched_identifier": matched,
                "work_item": {"id": item.public_id, "status": "open"},
            }
        )
    return expected


def _same(shown: list[dict], expected: list[dict]) -> None:
    assert len(shown) == len(expected)
    for got, want in zip(shown, expected, strict=True):
        label = want.pop("reason_label")
        got_label = got.pop("reason_label")
        # L6's label is the guide's words for interest; CS has the generic one.
        assert got_label and (label is None or label in got_label.lower()), got_label
        assert got == want


def test_the_detail_json_names_each_plbs_claim_and_kind_but_not_its_reference(
    session, world, factory, api_client
):
    one, rem, items = _setup(session, world, factory)
    expected = _expected(one, rem, items, session)

    shown = remittance_detail_json(session, rem)["provider_adjustments"]
    _same([dict(a) for a in shown], [dict(e) for e in expected])

    answer = api_client("biller").get(f"/api/v1/remittances/{rem.public_id}")
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    _same(body["provider_adjustments"], [dict(e) for e in expected])
    assert all("reference" not in a for a in body["provider_adjustments"])
    # No member id anywhere in the answer (the claims' NM1*QC ids are not in it either).
    assert MEMBER_ID not in answer.get_data(as_text=True)


def test_the_workspace_page_links_the_claim_and_hides_the_reference(session, world, factory, api_client):
    one, rem, _ = _setup(session, world, factory)
    html = api_client("biller").get(f"/ui/remittances/{rem.public_id}").get_data(as_text=True)
    assert 'id="plb-heading"' in html
    assert f"/ui/claims/{one.public_id}" in html and "names claim" in html
    assert "names none of our claims" in html  # the L6 whose reference is a member id
    assert MEMBER_ID not in html
