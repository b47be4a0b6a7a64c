"""The issue's Done-when: a FHIR transaction Bundle → our claim → 837 → the simulator's 835 → our
posting → an ExplanationOfBenefit whose amounts match the 835 to the cent."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from claims_server.clearinghouse import services as ch
from claims_server.models import Claim, ClaimState
from claims_server.simulator.service import run_once
from claims_server.submission.services import build_batches
from edi.x835 import ClaimPayment as ClaimPayment835
from edi.x835 import Remittance835, parse_835
from tests.integration.fhir.conftest import body, post, transaction_bundle

ADJ = "http://terminology.hl7.org/CodeSystem/adjudication"
C4BB = "http://hl7.org/fhir/us/carin-bb/CodeSystem/C4BBAdjudication"
CARC = "https://x12.org/codes/claim-adjustment-reason-codes"


def cents(money: dict) -> int:
    value = money["value"]
    assert isinstance(value, (Decimal, int)), "money must not arrive as a float"
    return int(Decimal(value) * 100)


def categories(adjudications: list[dict]) -> dict[str, int]:
    out = {}
    for adj in adjudications:
        coding = adj["category"]["coding"][0]
        if coding["system"] in (ADJ, C4BB):
            out[coding["code"]] = cents(adj["amount"])
    return out


def reasons(adjudications: list[dict]) -> list[tuple[str, str, int]]:
    return sorted(
        (a["reason"]["text"].split("-")[0], a["reason"]["coding"][0]["code"], cents(a["amount"]))
        for a in adjudications
        if "reason" in a and a["reason"]["coding"][0]["system"] == CARC
    )


def notes(resource: dict, item: dict | None = None) -> list[str]:
    """The RARCs of the processNotes (``CODE: meaning``), all of them or those ``item`` points at."""
    wanted = None if item is None else set(item.get("noteNumber", []))
    return sorted(
        n["text"].split(":")[0]
        for n in resource.get("processNote", [])
        if wanted is None or n["number"] in wanted
    )


def _poll(factory, route, tmp_path: Path, keep: Path) -> list[str]:
    inbox = Path(route.settings["inbox"])
    keep.mkdir(exist_ok=True)
    for path in inbox.glob("*"):
        if path.is_file():
            shutil.copy2(path, keep / path.name)
    polled = ch.poll_inbox(factory, route.id, transport_factory=lambda r: ch.route_transport(r, tmp_path))
    return [f.kind for f in polled.files]


def _through_the_payer(session, factory, route, tmp_path: Path, claims: int) -> list[Remittance835]:
    """Our pipeline: batch every ready claim into one 837, send it, the simulator's 999 + 277CA, then
    its 835, posted on arrival; returns the 835s as the payer wrote them, read by the edi library
    (not by the code under test)."""
    batching = build_batches(session)
    session.commit()
    assert batching.claims_batched == claims and len(batching.batch_ids) == 1
    transport = lambda r: ch.route_transport(r, tmp_path)  # noqa: E731
    assert ch.send_batch(factory, batching.batch_ids[0], transport_factory=transport).state == "sent"
    outbox, inbox = Path(route.settings["outbox"]), Path(route.settings["inbox"])
    keep = tmp_path / "received"
    run_once(outbox, inbox)
    assert _poll(factory, route, tmp_path, keep) == ["999", "277CA"]
    run_once(outbox, inbox)
    assert _poll(factory, route, tmp_path, keep) == ["835"]
    session.expire_all()
    return [
        r
        for path in sorted(keep.glob("*"))
        if b"ST*835" in path.read_bytes()
        for r in parse_835(path.read_bytes())
    ]


def _assert_eob_is_the_clp(biller, claim_id: str, clp: ClaimPayment835) -> dict:
    """The claim's one ExplanationOfBenefit (and its 835 ClaimResponse) against the CLP, to the cent:
    totals, every line's categories, every CAS as a CARC reason, every LQ*HE as a processNote."""
    found = biller.get(f"/fhir/R4/ExplanationOfBenefit?claim=Claim/{claim_id}")
    assert found.status_code == 200, found.get_data(as_text=True)
    bundle = body(found)
    assert bundle["type"] == "searchset" and len(bundle["entry"]) == 1
    eob = bundle["entry"][0]["resource"]
    assert eob["meta"]["profile"] == [
        "http://hl7.org/fhir/us/carin-bb/StructureDefinition/C4BB-ExplanationOfBenefit-Professional-NonClinician"
    ]
    assert eob["outcome"] == "complete" and eob["claim"]["reference"] == f"Claim/{claim_id}"
    assert eob["disposition"] == ("Denied" if clp.status == "4" else "Processed as primary")

    # Claim totals: CLP03 submitted, CLP04 benefit, CLP05 patient responsibility; PR-1/2/3 split.
    line_cas = [a for line in clp.lines for a in line.adjustments]
    all_cas = line_cas + list(clp.adjustments)
    totals = categories(eob["total"])
    assert totals["submitted"] == clp.charge_cents
    assert totals["benefit"] == clp.paid_cents
    assert totals["memberliability"] == (
        clp.patient_responsibility_cents
        if clp.patient_responsibility_cents is not None
        else sum(a.amount_cents for a in all_cas if a.group == "PR")
    )
    assert totals["deductible"] == sum(a.amount_cents for a in all_cas if (a.group, a.reason) == ("PR", "1"))
    assert totals["coinsurance"] == sum(a.amount_cents for a in all_cas if (a.group, a.reason) == ("PR", "2"))
    assert totals["copay"] == sum(a.amount_cents for a in all_cas if (a.group, a.reason) == ("PR", "3"))
    non_patient = sum(a.amount_cents for a in all_cas if a.group != "PR")
    assert totals["eligible"] == clp.charge_cents - non_patient
    assert cents(eob["payment"]["amount"]) == clp.paid_cents
    assert reasons(eob.get("adjudication", [])) == sorted(
        (a.group, a.reason, a.amount_cents) for a in clp.adjustments
    )

    # Per line: SVC02, SVC03, AMT*B6 (or charge less non-PR CAS), every CAS as a CARC reason, and
    # every LQ*HE remark as a processNote the item points at.
    assert len(eob["item"]) == len(clp.lines)
    for item, svc in zip(eob["item"], clp.lines, strict=True):
        amounts = categories(item["adjudication"])
        assert amounts["submitted"] == svc.charge_cents
        assert amounts["benefit"] == svc.paid_cents
        expected_allowed = (
            svc.allowed_cents
            if svc.allowed_cents is not None
            else svc.charge_cents - sum(a.amount_cents for a in svc.adjustments if a.group != "PR")
        )
        assert amounts["eligible"] == expected_allowed
        for category, reason in (("deductible", "1"), ("coinsurance", "2"), ("copay", "3")):
            assert amounts[category] == sum(
                a.amount_cents for a in svc.adjustments if (a.group, a.reason) == ("PR", reason)
            ), category
        assert amounts["memberliability"] == sum(a.amount_cents for a in svc.adjustments if a.group == "PR")
        assert reasons(item["adjudication"]) == sorted(
            (a.group, a.reason, a.amount_cents) for a in svc.adjustments
        )
        assert notes(eob, item) == sorted(r.code for r in svc.remarks)
        assert item["productOrService"]["coding"][0]["code"] == svc.procedure.code
    assert notes(eob) == sorted({r.code for svc in clp.lines for r in svc.remarks})
    # The lines balance as the 835 does: charge = paid + every adjustment.
    assert clp.charge_cents == clp.paid_cents + sum(a.amount_cents for a in all_cas)

    # The same CLP as a ClaimResponse, next to the 277CA's (accepted: queued for adjudication).
    responses = body(biller.get(f"/fhir/R4/ClaimResponse?request=Claim/{claim_id}"))["entry"]
    assert sorted(e["resource"]["outcome"] for e in responses) == ["complete", "queued"]
    era = next(e["resource"] for e in responses if e["resource"]["outcome"] == "complete")
    assert categories(era["total"]) == totals
    for era_item, item in zip(era["item"], eob["item"], strict=True):
        assert categories(era_item["adjudication"]) == categories(item["adjudication"])
        assert reasons(era_item["adjudication"]) == reasons(item["adjudication"])
    assert notes(era) == notes(eob)
    return eob


def _assert_reconciliation_is_the_bpr(biller, remit: Remittance835) -> None:
    """The 835 transaction set's PaymentReconciliation: BPR02, and one detail per CLP with its CLP04."""
    found = biller.get(
        f"/fhir/R4/PaymentReconciliation?identifier=https://claims-server.dev/fhir/sid/trace-number|{remit.payment.trace_number}"
    )
    assert found.status_code == 200, found.get_data(as_text=True)
    (entry,) = body(found)["entry"]
    recon = entry["resource"]
    assert cents(recon["paymentAmount"]) == remit.payment.amount_cents
    assert sum(cents(d["amount"]) for d in recon["detail"]) == remit.payment.amount_cents
    payments = [d for d in recon["detail"] if d["type"]["coding"][0]["code"] == "payment"]
    assert sorted((d["identifier"]["value"], cents(d["amount"])) for d in payments) == sorted(
        (c.patient_control_number, c.paid_cents) for c in remit.claims
    )
    assert sorted(-cents(d["amount"]) for d in recon["detail"] if d not in payments) == sorted(
        a.amount_cents for a in remit.provider_adjustments
    )


def test_bundle_to_explanation_of_benefit_matches_the_835(
    api_client, session, factory, ids, folder_route, tmp_path
):
    integration = api_client("integration", scopes=["fhir:write"])
    created = post(integration, "/fhir/R4", transaction_bundle(ids))
    assert created.status_code == 200, created.get_data(as_text=True)
    assert created.mimetype == "application/fhir+json"
    entries = body(created)["entry"]
    assert [e["response"]["status"] for e in entries] == ["201 Created"] * 3
    claim_id = entries[2]["resource"]["id"]
    assert entries[2]["response"]["location"] == f"Claim/{claim_id}"
    assert entries[2]["resource"]["patient"]["reference"] == entries[0]["response"]["location"]
    claim = session.scalar(select(Claim).where(Claim.public_id == claim_id))
    assert claim.state is ClaimState.READY and claim.total_charge_cents == 22050
    pcn = claim.patient_control_number

    remits = _through_the_payer(session, factory, folder_route, tmp_path, claims=1)
    assert session.get(Claim, claim.id).state in (ClaimState.PAID, ClaimState.PARTIALLY_PAID)
    clp = next(c for r in remits for c in r.claims if c.patient_control_number == pcn)
    assert clp.charge_cents == 22050 and len(clp.lines) == 2

    biller = api_client("biller")
    _assert_eob_is_the_clp(biller, claim_id, clp)
    _assert_reconciliation_is_the_bpr(biller, next(r for r in remits if any(c is clp for c in r.claims)))


#: One day's visits, each a claim (procedure, charge), sent in one 837 so the simulator's deductible
#: (per member and year, within one 837: claims_server/simulator/rules.py, docs/simulator.md) carries
#: over from one visit of the ACME member to the next. ACME is on the commercial plan ($500 deductible,
#: 20% coinsurance), SUMMIT on the copay plan ($30 office copay), the Medicaid plan has no cost sharing.
VISITS: dict[str, tuple[str, list[list[tuple[str, str]]]]] = {
    "acme": (
        "DEMOACME",
        [
            [("99214", "175.00"), ("83036", "45.50")],  # every allowed dollar goes to the deductible
            [("99215", "250.00"), ("20610", "300.00")],  # meets the deductible: deductible + coinsurance
            [("99214", "175.00"), ("93000", "60.00"), ("93010", "30.00")],  # coinsurance; 93010 CO-97 M15
            [("J1100", "18.00")],  # a drug code without its NDC: the claim is denied, CO-16 + M119
        ],
    ),
    "summit": ("DEMOSUMMIT", [[("99213", "125.00")]]),  # the office copay, PR-3
    "medicaid": ("DEMOMCD", [[("99213", "125.00")]]),  # the allowed amount, paid in full
}


def _cas(clp: ClaimPayment835, group: str, reason: str) -> int:
    return sum(
        a.amount_cents
        for a in [*clp.adjustments, *(a for line in clp.lines for a in line.adjustments)]
        if (a.group, a.reason) == (group, reason)
    )


def test_paid_partly_paid_and_denied_claims_match_the_835_per_claim_and_line(
    api_client, session, factory, ids, folder_route, tmp_path
):
    """Several visits in one 837: paid, paid after patient responsibility, and denied claims all reach
    their ExplanationOfBenefit and PaymentReconciliation with the 835's amounts, to the cent."""
    integration = api_client("integration", scopes=["fhir:write"])
    claim_ids: dict[str, list[str]] = {}
    for member, (payer_id, visits) in VISITS.items():
        created = post(integration, "/fhir/R4", transaction_bundle(ids, payer_id=payer_id, claims=visits))
        assert created.status_code == 200, created.get_data(as_text=True)
        entries = body(created)["entry"]
        assert [e["response"]["status"] for e in entries] == ["201 Created"] * (2 + len(visits))
        claim_ids[member] = [e["resource"]["id"] for e in entries[2:]]
    claims = {
        public_id: session.scalar(select(Claim).where(Claim.public_id == public_id))
        for public_ids in claim_ids.values()
        for public_id in public_ids
    }
    assert all(c.state is ClaimState.READY for c in claims.values())
    pcns = {public_id: c.patient_control_number for public_id, c in claims.items()}

    remits = _through_the_payer(session, factory, folder_route, tmp_path, claims=len(claims))
    clps = {c.patient_control_number: c for r in remits for c in r.claims}
    assert sorted(clps) == sorted(pcns.values())
    clp = {member: [clps[pcns[i]] for i in public_ids] for member, public_ids in claim_ids.items()}

    # The payer's answers are the cases this test is about (checked on the 835 itself, so that a change
    # in the simulator cannot quietly turn them back into $0 claims).
    deductible_only, deductible_met, after_deductible, denied = clp["acme"]
    assert deductible_only.paid_cents == 0 and deductible_only.status == "1"
    assert _cas(deductible_only, "PR", "1") == deductible_only.patient_responsibility_cents > 0
    assert deductible_met.paid_cents > 0
    assert _cas(deductible_met, "PR", "1") > 0 and _cas(deductible_met, "PR", "2") > 0
    assert after_deductible.paid_cents > 0 and _cas(after_deductible, "PR", "1") == 0
    assert _cas(after_deductible, "PR", "2") > 0
    bundled = after_deductible.lines[2]
    assert [(a.group, a.reason) for a in bundled.adjustments] == [("CO", "97")]
    assert [r.code for r in bundled.remarks] == ["M15"] and bundled.paid_cents == 0
    assert denied.status == "4" and denied.paid_cents == 0
    assert _cas(denied, "CO", "16") == denied.charge_cents
    assert [r.code for line in denied.lines for r in line.remarks] == ["M119"]
    (copay,) = clp["summit"]
    assert copay.paid_cents > 0 and _cas(copay, "PR", "3") == copay.patient_responsibility_cents > 0
    (in_full,) = clp["medicaid"]
    assert in_full.paid_cents == in_full.lines[0].allowed_cents > 0
    assert not any(a.group == "PR" for line in in_full.lines for a in line.adjustments)

    biller = api_client("biller")
    eobs = {public_id: _assert_eob_is_the_clp(biller, public_id, clps[pcns[public_id]]) for public_id in pcns}

    # What a reader of the EOBs sees: the denial's CARC as the reason, its RARC as a processNote.
    denied_eob = eobs[claim_ids["acme"][3]]
    assert reasons(denied_eob["item"][0]["adjudication"]) == [("CO", "16", 1800)]
    assert notes(denied_eob) == ["M119"]
    assert categories(denied_eob["total"])["benefit"] == 0
    bundled_item = eobs[claim_ids["acme"][2]]["item"][2]
    assert reasons(bundled_item["adjudication"]) == [("CO", "97", 3000)]
    assert notes(eobs[claim_ids["acme"][2]], bundled_item) == ["M15"]
    assert categories(eobs[claim_ids["summit"][0]]["total"])["copay"] > 0

    # The claims' states follow the money: denied, paid.
    session.expire_all()
    assert session.get(Claim, claims[claim_ids["acme"][3]].id).state is ClaimState.DENIED
    assert session.get(Claim, claims[claim_ids["medicaid"][0]].id).state is ClaimState.PAID

    # One payment per payer (835 transaction set): the PaymentReconciliation's total and details.
    assert len(remits) == 3 and all(r.payment.amount_cents > 0 for r in remits)
    for remit in remits:
        assert remit.payment.amount_cents == sum(c.paid_cents for c in remit.claims)
        _assert_reconciliation_is_the_bpr(biller, remit)
