"""The 270 from a coverage, and the summary of the simulator's realistic 271s (hand computed)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from claims_server.simulator.eligibility import answer_270, answer_inquiry, is_270
from edi.validate import validate
from edi.x270 import Envelope, generate_270, parse_270
from edi.x271 import EligibilityResponse, parse_271
from eligibility.answer import read_271
from eligibility.estimate import CostSharing, PlannedService, estimate_visit
from eligibility.request import CoverageFacts, PersonFacts, ProviderFacts, RequestError, build_inquiry
from eligibility.summary import from_json, retry_plan_for, scrub_facts, summarize, timeout_plan

DOS = date(2026, 3, 3)
PROVIDER = ProviderFacts("SYNTHETIC CLINIC", "1234567893")
ENVELOPE = Envelope("CLINIC01", "PAYER01", "CLINIC01", "PAYER01", 5, when=datetime(2026, 3, 2, 8, 0))


def coverage(member_id: str = "SMT00000001", payer_id: str = "DEMOSUMMIT", **kw: object) -> CoverageFacts:
    values: dict[str, object] = {
        "payer_name": "SUMMIT MUTUAL",
        "payer_id": payer_id,
        "member_id": member_id,
        "patient": PersonFacts("DOE", "JANE", date(1980, 1, 2), "F"),
        "group_number": "GRP1007",
    }
    values.update(kw)
    return CoverageFacts(**values)  # type: ignore[arg-type]


def inquiry(member_id: str = "SMT00000001", payer_id: str = "DEMOSUMMIT", **kw: object):
    return build_inquiry(
        coverage(member_id, payer_id),
        PROVIDER,
        trace_number="TRACE0001",
        trace_originator="1987654321",
        service_date=DOS,
        **kw,  # type: ignore[arg-type]
    )


def answer(member_id: str, payer_id: str = "DEMOSUMMIT", types: tuple[str, ...] = ("98",), procedures=()):
    text = generate_270([inquiry(member_id, payer_id, service_types=types, procedures=procedures)], ENVELOPE)
    kind, reply = answer_270(text.encode(), when=datetime(2026, 3, 2, 8, 0, 3))
    assert kind == "271"
    return read_271(
        reply.encode(),
        trace_number="TRACE0001",
        service_types=types,
        service_date=DOS,
        member_id_sent=member_id,
    )


def test_request_always_asks_general_medical_first() -> None:
    built = inquiry(service_types=["98", "30", "98"], procedures=["70551"])
    assert built.service_types == ("30", "98") and built.inquiries[-1].procedure_code == "70551"
    assert built.dependent is None and built.subscriber.group_number == "GRP1007"
    assert validate(generate_270([built], ENVELOPE).encode()).valid


def test_request_for_a_dependent_names_the_subscriber() -> None:
    child = build_inquiry(
        coverage(
            relationship="19",
            subscriber=PersonFacts("DOE", "JOHN"),
            patient=PersonFacts("DOE", "KID", date(2015, 6, 1)),
        ),
        PROVIDER,
        trace_number="T2",
        trace_originator="1987654321",
        service_date=DOS,
    )
    assert child.subscriber.first_name == "JOHN" and child.subscriber.member_id == "SMT00000001"
    assert child.dependent is not None and child.dependent.relationship == "19"
    with pytest.raises(RequestError, match="subscriber is required"):
        build_inquiry(
            coverage(relationship="19"),
            PROVIDER,
            trace_number="T",
            trace_originator="1987654321",
            service_date=DOS,
        )
    with pytest.raises(RequestError, match="member_id"):
        build_inquiry(
            coverage(member_id=" "),
            PROVIDER,
            trace_number="T",
            trace_originator="1987654321",
            service_date=DOS,
        )


def test_active_copay_plan_summary_and_estimate() -> None:
    result = answer("SMT00000001", types=("98", "62"), procedures=("70551",))
    s = result.summary
    assert not result.malformed and s.status == "active" and s.active_on(DOS)
    assert (s.plan, s.insurance_type, s.coverage_start) == (
        "COMMERCIAL, OFFICE COPAY",
        "HM",
        date(2026, 1, 1),
    )
    general = s.service("30")
    assert general is not None
    # Copay plan: $250.00 deductible, $150.00 met -> $100.00 left; family $500.00 / $350.00 left.
    ind = [
        (d.total_cents, d.met_cents, d.remaining_cents)
        for d in general.deductibles
        if d.level == "individual"
    ]
    fam = [
        (d.total_cents, d.met_cents, d.remaining_cents) for d in general.deductibles if d.level == "family"
    ]
    assert ind == [(25_000, 15_000, 10_000)] and fam == [(50_000, 15_000, 35_000)]
    assert [(c.fraction, c.network) for c in general.coinsurance] == [
        (Decimal("0.2"), "in"),
        (Decimal("0.4"), "out"),
    ]
    assert [(o.total_cents, o.remaining_cents) for o in general.out_of_pocket] == [(300_000, 285_000)]
    office = s.service("98")
    assert office is not None and [(c.cents, c.network) for c in office.copays] == [(3_000, "in")]
    assert s.service("62").prior_authorization_required is True  # type: ignore[union-attr]
    assert s.prior_authorization == ["62", "70551"]
    # Stored JSON -> summary -> estimate: office visit 99213 ($120.00) = copay $30.00;
    # lab 80053 ($35.47): $35.47 to the deductible ($100.00 left) -> patient $65.47 in all.
    terms = CostSharing.from_summary(from_json(s.to_json_dict()))
    estimate = estimate_visit(
        [PlannedService("99213", service_type="98"), PlannedService("80053", service_type="5")],
        {"99213": 12_000, "80053": 3_547},
        terms,
    )
    assert (estimate.patient_cents, estimate.payer_cents, estimate.deductible_remaining_after_cents) == (
        6_547,
        9_000,
        6_453,
    )


def test_commercial_plan_deductible_then_coinsurance() -> None:
    s = answer("ACM000000001", payer_id="DEMOACME").summary
    terms = CostSharing.from_summary(s)
    # Commercial: $500.00 deductible, $150.00 met -> $350.00; 20 % after; no copay.
    assert terms == CostSharing(35_000, Decimal("0.2"), {}, 285_000)
    # 99214 $200.00 + 99214 $200.00: $200.00 + $150.00 deductible, then 20 % of $50.00 = $10.00.
    estimate = estimate_visit([PlannedService("99214"), PlannedService("99214")], {"99214": 20_000}, terms)
    assert [line.patient_cents for line in estimate.lines] == [20_000, 16_000]


def test_medicaid_has_no_patient_share() -> None:
    s = answer("123456789DM", payer_id="DEMOMCD").summary
    assert s.status == "active" and s.insurance_type == "MC"
    assert CostSharing.from_summary(s) == CostSharing(0, Decimal(0), {}, None)


def test_inactive_coverage_ended_before_the_visit() -> None:
    s = answer("ELGIN0001").summary
    assert s.status == "inactive" and s.active_on(DOS) is False
    assert (s.coverage_start, s.coverage_end) == (date(2025, 1, 1), date(2026, 2, 28))
    facts = scrub_facts(s, payer_id="DEMOSUMMIT", checked_on=date(2026, 3, 2))
    assert facts.status == "inactive" and facts.coverage_end == date(2026, 2, 28)


def test_not_found_is_a_correction_not_a_retry() -> None:
    s = answer("ELGNF0001").summary
    assert s.status == "not_found" and not s.active
    assert [(r.reason, r.follow_up, r.loop) for r in s.rejections] == [("75", "C", "2100C")]
    assert s.retry is not None and not s.retry.retry and s.retry.needs_correction


def test_busy_payer_is_retried_in_half_an_hour() -> None:
    s = answer("ELGBUSY001").summary
    assert s.status == "rejected" and s.retry is not None and s.retry.retry
    assert s.retry.after == timedelta(minutes=30)


def test_other_payer_primary_is_named() -> None:
    s = answer("ELGCOB0001").summary
    assert s.status == "active" and s.other_payer_primary
    assert [(p.name, p.payer_id, p.primary) for p in s.other_payers] == [
        ("DEMO OTHER HEALTH PLAN", "DEMOOTHER", True)
    ]
    assert from_json(s.to_json_dict()).other_payer_primary


def test_member_id_correction_is_flagged_without_storing_the_id() -> None:
    s = answer("ELGFIX0001").summary
    assert s.member_id_corrected and s.demographics_corrected and s.member_id == "ELGFIX000101"
    assert "ELGFIX" not in str(s.to_json_dict())
    assert scrub_facts(s, payer_id="DEMOSUMMIT", checked_on=DOS).member_id == "ELGFIX000101"


def test_malformed_271_is_never_active() -> None:
    text = generate_270([inquiry("ELGBAD0001")], ENVELOPE)
    kind, reply = answer_270(text.encode())
    result = read_271(reply.encode(), trace_number="TRACE0001")
    assert kind == "271" and result.malformed and result.summary.status == "error"
    assert any(f.code == "X12.SEGMENT_UNEXPECTED" and f.segment == "EB" for f in result.report.errors)


def test_a_malformed_270_gets_our_999() -> None:
    text = generate_270([inquiry()], ENVELOPE).replace("EQ*30~", "EQ*30*HC:99213*XYZ~")
    assert is_270(text.encode())
    kind, reply = answer_270(text.encode())
    assert kind == "999" and "IK5*R" in reply and "AK9*R*1*1*0" in reply


def test_no_status_means_error_not_active() -> None:
    response = answer_inquiry(inquiry())
    patient = response.subscribers[0]
    patient.benefits = [b for b in patient.benefits if b.code not in ("1", "6")]
    summary = summarize(response, trace_number="TRACE0001")
    assert summary.status == "error" and summary.retry is not None
    assert summarize(EligibilityResponse("0001")).status == "error"


def test_retry_plans() -> None:
    assert [timeout_plan(n).after for n in (1, 2, 3, 4)] == [timedelta(minutes=m) for m in (1, 5, 15, 60)]
    assert not timeout_plan(5).retry
    doc = parse_271(answer_270(generate_270([inquiry("ELGBUSY1")], ENVELOPE).encode())[1].encode())
    plan = retry_plan_for(doc.responses[0].rejections())
    assert plan is not None and plan.retry and plan.after == timedelta(minutes=30)


def test_dependent_answer_is_read_at_the_dependent_level() -> None:
    child = build_inquiry(
        coverage(
            relationship="19",
            subscriber=PersonFacts("DOE", "JOHN"),
            patient=PersonFacts("DOE", "KID", date(2015, 6, 1), "M"),
        ),
        PROVIDER,
        trace_number="TRACE0009",
        trace_originator="1987654321",
        service_date=DOS,
    )
    kind, reply = answer_270(generate_270([child], ENVELOPE).encode())
    assert kind == "271" and validate(reply.encode()).valid
    parsed = parse_270(generate_270([child], ENVELOPE).encode()).inquiries[0]
    assert parsed.dependent is not None
    result = read_271(reply.encode(), trace_number="TRACE0009")
    assert result.summary.status == "active" and result.summary.trace_number == "TRACE0009"
    dependent = parse_271(reply.encode()).responses[0].subscribers[0].dependents[0]
    assert dependent.relationship == "19" and dependent.benefits
