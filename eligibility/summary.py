"""A 271 answer as a benefits summary a billing specialist can read, plus the retry plan.

What the summary says, for the patient the 270 asked about:

- ``status``: ``active`` (EB*1), ``inactive`` (EB*6, or coverage dates that end before
  the date of service), ``not_found`` (AAA 67/72/73/75/76/77: the payer does not know
  the member), ``rejected`` (any other AAA: the payer refused to answer) or ``error``
  (nothing usable: no subscriber loop, no EB). Never "active" without an EB*1.
- coverage dates (DTP 346/347 plan begin/end, 291 plan, 356/357 eligibility), plan
  and group (EB05, REF*18/6P);
- per service type (30 general medical first, then each one asked): copay (EB*B),
  coinsurance (EB*A, a fraction), deductible (EB*C) and out-of-pocket (EB*G), each by
  coverage level (individual/family) and network (in/out/both/unknown from EB12), as
  total (EB06 21/22/23/25), met (24 year to date) and remaining (29); met or remaining
  is derived from the other when only one is sent;
- prior-authorization flags (EB11 = Y) with their service types or procedures;
- other payers (EB*R with a 2120 NM1, or any 2120 entity PR): coordination of
  benefits, including "another payer is primary" (EB*R with insurance type or MSG
  saying primary, or a 2120 NM1*PRP);
- corrections: the member id, name or birth date the payer changed (INS03 001 / 04 25,
  or simply an NM109 different from the one we asked with).

Amounts are integer cents; percentages are Decimals (0.2 = 20 %). Nothing here logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from coding.scrubber import EligibilityFacts
from edi.writer import format_decimal
from edi.x271 import Benefit, BenefitDate, EligibilityResponse, MemberResponse, RequestValidation

GENERAL_MEDICAL = "30"
NOT_FOUND_REASONS = frozenset({"67", "72", "73", "75", "76", "77"})
TOTAL_PERIODS = frozenset({"21", "22", "23", "25", "32"})
MET_PERIODS = frozenset({"24"})
REMAINING_PERIODS = frozenset({"29", "33"})
PRIMARY_PAYER_CODES = frozenset({"PRP"})  # 2120 NM101: primary payer

# Service type codes (X12 1365) we show by name; others are shown by code.
SERVICE_TYPES: dict[str, str] = {
    "1": "medical care",
    "30": "health benefit plan coverage",
    "33": "chiropractic",
    "35": "dental care",
    "47": "hospital",
    "48": "hospital - inpatient",
    "50": "hospital - outpatient",
    "51": "hospital - emergency accident",
    "52": "hospital - emergency medical",
    "62": "MRI/CAT scan",
    "86": "emergency services",
    "88": "pharmacy",
    "98": "professional (physician) visit - office",
    "A4": "psychiatric",
    "AL": "vision (optometry)",
    "BZ": "physician visit - office: sick",
    "MH": "mental health",
    "UC": "urgent care",
    "4": "diagnostic X-ray",
    "5": "diagnostic lab",
    "81": "routine physical",
}


def service_type_name(code: str) -> str:
    return SERVICE_TYPES.get(code, f"service type {code}")


def _network(indicator: str) -> str:
    return {"Y": "in", "N": "out", "W": "both"}.get(indicator, "unknown")


def _level(code: str) -> str:
    return "family" if code in ("FAM", "ECH", "ESP", "SPC", "DEP", "CHD") else "individual"


@dataclass(slots=True)
class Accumulator:
    """A deductible or out-of-pocket limit for one coverage level and network."""

    level: str  # individual / family
    network: str  # in / out / both / unknown
    total_cents: int | None = None
    met_cents: int | None = None
    remaining_cents: int | None = None

    def settle(self) -> None:
        """Derive met or remaining from the other when the payer sent only one of them."""
        if self.total_cents is None:
            return
        if self.remaining_cents is None and self.met_cents is not None:
            self.remaining_cents = max(self.total_cents - self.met_cents, 0)
        elif self.met_cents is None and self.remaining_cents is not None:
            self.met_cents = max(self.total_cents - self.remaining_cents, 0)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "network": self.network,
            "total": _money(self.total_cents),
            "met": _money(self.met_cents),
            "remaining": _money(self.remaining_cents),
        }


@dataclass(frozen=True, slots=True)
class Copay:
    cents: int
    level: str
    network: str
    per: str  # EB06 text: visit, day, ...

    def to_json_dict(self) -> dict[str, Any]:
        return {"amount": _money(self.cents), "level": self.level, "network": self.network, "per": self.per}


@dataclass(frozen=True, slots=True)
class Coinsurance:
    fraction: Decimal
    level: str
    network: str

    def to_json_dict(self) -> dict[str, Any]:
        return {"percent": format_decimal(self.fraction * 100), "level": self.level, "network": self.network}


@dataclass(slots=True)
class ServiceBenefits:
    """The financials the payer returned for one service type."""

    service_type: str
    active: bool | None = None
    copays: list[Copay] = field(default_factory=list)
    coinsurance: list[Coinsurance] = field(default_factory=list)
    deductibles: list[Accumulator] = field(default_factory=list)
    out_of_pocket: list[Accumulator] = field(default_factory=list)
    prior_authorization_required: bool | None = None
    not_covered: bool = False
    messages: list[str] = field(default_factory=list)

    def accumulator(self, kind: str, level: str, network: str) -> Accumulator:
        items = self.deductibles if kind == "deductible" else self.out_of_pocket
        for item in items:
            if item.level == level and item.network == network:
                return item
        item = Accumulator(level, network)
        items.append(item)
        return item

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "service_type": self.service_type,
            "description": service_type_name(self.service_type),
            "active": self.active,
            "not_covered": self.not_covered,
            "copays": [c.to_json_dict() for c in self.copays],
            "coinsurance": [c.to_json_dict() for c in self.coinsurance],
            "deductibles": [d.to_json_dict() for d in self.deductibles],
            "out_of_pocket": [d.to_json_dict() for d in self.out_of_pocket],
            "prior_authorization_required": self.prior_authorization_required,
            "messages": self.messages,
        }


@dataclass(frozen=True, slots=True)
class OtherPayer:
    """A payer the 271 names besides itself (coordination of benefits)."""

    name: str
    payer_id: str
    primary: bool  # the 271 says this other payer pays first
    member_id: str = ""
    insurance_type: str = ""

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "payer_id": self.payer_id or None,
            "primary": self.primary,
            "insurance_type": self.insurance_type or None,
        }


@dataclass(frozen=True, slots=True)
class RetryPlan:
    """When and whether to ask again: from AAA04, a timeout, or a malformed answer."""

    retry: bool
    after: timedelta | None
    reason: str  # why, in words (no PHI)
    needs_correction: bool = False  # a person must fix the request first

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "retry": self.retry,
            "after_seconds": int(self.after.total_seconds()) if self.after is not None else None,
            "reason": self.reason,
            "needs_correction": self.needs_correction,
        }


@dataclass(slots=True)
class BenefitsSummary:
    status: str  # active / inactive / not_found / rejected / error
    service_date: date | None = None
    coverage_start: date | None = None
    coverage_end: date | None = None
    plan: str = ""
    group_number: str = ""
    insurance_type: str = ""
    member_id: str = ""  # NM109 the payer answered with
    member_id_corrected: bool = False
    demographics_corrected: bool = False
    services: list[ServiceBenefits] = field(default_factory=list)
    prior_authorization: list[str] = field(default_factory=list)  # service types / procedures needing it
    other_payers: list[OtherPayer] = field(default_factory=list)
    rejections: list[RequestValidation] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    retry: RetryPlan | None = None
    trace_number: str = ""

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def other_payer_primary(self) -> bool:
        return any(p.primary for p in self.other_payers)

    def service(self, code: str) -> ServiceBenefits | None:
        for s in self.services:
            if s.service_type == code:
                return s
        return None

    def active_on(self, day: date) -> bool | None:
        """Coverage in force on ``day``: None when the answer cannot tell."""
        if self.status not in ("active", "inactive"):
            return None
        if self.status == "inactive":
            return False
        if self.coverage_start is not None and day < self.coverage_start:
            return False
        return not (self.coverage_end is not None and day > self.coverage_end)

    def to_json_dict(self) -> dict[str, Any]:
        """The stored and served form; holds no member id (PHI): only whether it changed."""
        return {
            "status": self.status,
            "service_date": _iso(self.service_date),
            "coverage_start": _iso(self.coverage_start),
            "coverage_end": _iso(self.coverage_end),
            "plan": self.plan or None,
            "group_number": self.group_number or None,
            "insurance_type": self.insurance_type or None,
            "member_id_corrected": self.member_id_corrected,
            "demographics_corrected": self.demographics_corrected,
            "services": [s.to_json_dict() for s in self.services],
            "prior_authorization": self.prior_authorization,
            "other_payers": [p.to_json_dict() for p in self.other_payers],
            "other_payer_primary": self.other_payer_primary,
            "rejections": [r.to_json_dict() for r in self.rejections],
            "messages": self.messages,
            "retry": self.retry.to_json_dict() if self.retry else None,
            "trace_number": self.trace_number or None,
        }


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def _money(cents: int | None) -> str | None:
    if cents is None:
        return None
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"


def retry_plan_for(rejections: Sequence[RequestValidation]) -> RetryPlan | None:
    """The plan for the first blocking AAA (AAA01 N, or a not-found reason), None when none."""
    for r in rejections:
        if r.follow_up == "C" or r.reason in NOT_FOUND_REASONS:
            return RetryPlan(False, None, f"correct the request: {r.reason_text}", needs_correction=True)
        days = r.retry_after_days
        if days is None:
            return RetryPlan(False, None, f"the payer says {r.follow_up_text}: {r.reason_text}")
        # AAA 42 "unable to respond at current time" with R/P: the payer's system is down;
        # ask again within the hour rather than at once.
        wait = timedelta(days=days) if days else timedelta(minutes=30 if r.reason == "42" else 5)
        return RetryPlan(True, wait, f"{r.reason_text}; {r.follow_up_text}")
    return None


def timeout_plan(attempt: int) -> RetryPlan:
    """Backoff after a timed-out or failed exchange: 1, 5, 15, 60 minutes, then give up."""
    steps = (1, 5, 15, 60)
    if attempt > len(steps):
        return RetryPlan(False, None, f"no answer after {attempt} attempts; check the payer's connection")
    return RetryPlan(True, timedelta(minutes=steps[attempt - 1]), "no answer from the payer in time")


def malformed_plan() -> RetryPlan:
    """A 271 that fails the X279A1 guide: ask again later; our 999 tells the sender why."""
    return RetryPlan(True, timedelta(minutes=15), "the payer's answer was malformed (rejected with a 999)")


def _patient(response: EligibilityResponse, trace_number: str | None) -> MemberResponse | None:
    """The member the answer is about: a dependent when one is present, else the subscriber;
    when several subscribers come back, the one echoing our trace number."""
    candidates = response.subscribers
    if trace_number:
        traced = [m for m in response.members() if any(t.number == trace_number for t in m.traces)]
        if traced:
            return traced[0]
    if not candidates:
        return None
    subscriber = candidates[0]
    return subscriber.dependents[0] if subscriber.dependents else subscriber


def _dates(summary: BenefitsSummary, dates: Sequence[BenefitDate]) -> None:
    for d in dates:
        if d.qualifier in ("346", "356", "307") and d.start is not None:
            summary.coverage_start = d.start
            if d.end is not None:
                summary.coverage_end = d.end
        elif d.qualifier in ("347", "357") and d.start is not None:
            summary.coverage_end = d.start
        elif d.qualifier == "291" and d.start is not None:
            summary.coverage_start = d.start
            if d.end is not None:
                summary.coverage_end = d.end


def _apply(summary: BenefitsSummary, benefit: Benefit, service: ServiceBenefits) -> None:
    level = _level(benefit.coverage_level)
    network = _network(benefit.in_network)
    code = benefit.code
    if code == "1":
        service.active = True
    elif code == "6":
        service.active = False
    elif code == "I":
        service.not_covered = True
    elif code == "B" and benefit.amount_cents is not None:
        per = {"27": "visit", "7": "day", "26": "episode"}.get(benefit.time_period, "service")
        service.copays.append(Copay(benefit.amount_cents, level, network, per))
    elif code == "A" and benefit.percent is not None:
        service.coinsurance.append(Coinsurance(benefit.percent, level, network))
    elif code in ("C", "G") and benefit.amount_cents is not None:
        item = service.accumulator("deductible" if code == "C" else "out_of_pocket", level, network)
        if benefit.time_period in REMAINING_PERIODS:
            item.remaining_cents = benefit.amount_cents
        elif benefit.time_period in MET_PERIODS:
            item.met_cents = benefit.amount_cents
        else:
            item.total_cents = benefit.amount_cents
    if benefit.authorization_required == "Y":
        service.prior_authorization_required = True
        what = list(benefit.service_types)
        if len(benefit.procedure) > 1:
            what = [benefit.procedure[1]]
        for item in what:
            if item not in summary.prior_authorization:
                summary.prior_authorization.append(item)
    elif benefit.authorization_required == "N" and service.prior_authorization_required is None:
        service.prior_authorization_required = False
    service.messages.extend(m for m in benefit.messages if m not in service.messages)


def _other_payers(summary: BenefitsSummary, own_payer_id: str, benefit: Benefit) -> None:
    """EB*R (other or additional payer) and 2120 payer entities: who else covers the patient."""
    text = " ".join(benefit.messages).upper()
    for entity in benefit.entities:
        if entity.entity_code not in ("PR", "PRP", "SEP", "TTP") or entity.identifier == own_payer_id:
            continue
        primary = entity.entity_code in PRIMARY_PAYER_CODES or (
            benefit.code == "R"
            and (
                "PRIMARY" in text
                or benefit.insurance_type in ("12", "13", "14", "15", "16", "41", "42", "43", "47")
            )
        )
        member_id = next((v for q, v in entity.references if q in ("18", "1L", "IG", "SY")), "")
        summary.other_payers.append(
            OtherPayer(entity.name, entity.identifier, primary, member_id, benefit.insurance_type)
        )
    if benefit.code == "R" and not benefit.entities and benefit.plan_description:
        summary.other_payers.append(
            OtherPayer(benefit.plan_description, "", "PRIMARY" in text, "", benefit.insurance_type)
        )


def summarize(
    response: EligibilityResponse,
    *,
    service_types: Sequence[str] = (GENERAL_MEDICAL,),
    service_date: date | None = None,
    trace_number: str | None = None,
    member_id_sent: str | None = None,
) -> BenefitsSummary:
    """Read one 271 transaction set into a :class:`BenefitsSummary` (see module doc)."""
    rejections = response.rejections()
    patient = _patient(response, trace_number)
    summary = BenefitsSummary(status="error", service_date=service_date, rejections=rejections)
    summary.trace_number = trace_number or ""
    # An AAA on a level (payer, provider, subscriber, dependent) means the payer did not
    # answer the question; one inside a benefit loop only qualifies that benefit.
    blocking = [r for r in rejections if not r.loop.startswith("2110")]
    if blocking:
        summary.status = "not_found" if any(r.reason in NOT_FOUND_REASONS for r in blocking) else "rejected"
        summary.retry = retry_plan_for(blocking)
        return summary
    if patient is None:
        summary.retry = malformed_plan()
        summary.messages.append("the answer names no subscriber or dependent")
        return summary
    subscriber = next((s for s in response.subscribers if patient is s or patient in s.dependents), patient)
    summary.member_id = subscriber.person.identifier
    if member_id_sent is not None and summary.member_id and summary.member_id != member_id_sent:
        summary.member_id_corrected = True
    summary.demographics_corrected = patient.corrected or subscriber.corrected
    for ref_qualifier, value in subscriber.person.references:
        if ref_qualifier in ("6P", "18", "IG") and not summary.group_number:
            summary.group_number = value
    _dates(summary, subscriber.dates)
    _dates(summary, patient.dates)
    wanted = list(dict.fromkeys([GENERAL_MEDICAL, *service_types]))
    by_type: dict[str, ServiceBenefits] = {code: ServiceBenefits(code) for code in wanted}
    own_payer = response.source.identifier if response.source is not None else ""
    statuses: list[str] = []
    for benefit in patient.benefits:
        if benefit.code in ("1", "6", "7", "8"):
            statuses.append(benefit.code)
            if benefit.code == "1":
                summary.plan = summary.plan or benefit.plan_description
                summary.insurance_type = summary.insurance_type or benefit.insurance_type
            _dates(summary, benefit.dates)
        if benefit.code == "R" or any(e.entity_code in ("PR", "PRP") for e in benefit.entities):
            _other_payers(summary, own_payer, benefit)
        types = benefit.service_types or (GENERAL_MEDICAL,)
        for code in types:
            if code in by_type:
                _apply(summary, benefit, by_type[code])
        if not benefit.service_types and benefit.procedure and benefit.authorization_required == "Y":
            _apply(
                summary, benefit, ServiceBenefits(benefit.procedure[1] if len(benefit.procedure) > 1 else "")
            )
        summary.messages.extend(m for m in benefit.messages if m not in summary.messages)
    for service in by_type.values():
        for item in (*service.deductibles, *service.out_of_pocket):
            item.settle()
    summary.services = list(by_type.values())
    if "1" in statuses:
        summary.status = "active"
        if service_date is not None and summary.active_on(service_date) is False:
            summary.status = "inactive"
            summary.messages.append("coverage dates do not include the date of service")
    elif statuses:
        summary.status = "inactive"
    else:
        summary.messages.append("the answer carries no coverage status (EB01 1 or 6)")
        summary.retry = malformed_plan()
    return summary


def scrub_facts(
    summary: BenefitsSummary, *, payer_id: str, checked_on: date | None, member_id: str = ""
) -> EligibilityFacts:
    """What the claim scrubber's eligibility rules need from a summary (``member_id``: the
    payer's, from the stored 271; the summary itself never holds it)."""
    return EligibilityFacts(
        status=summary.status,
        payer_id=payer_id,
        checked_on=checked_on,
        coverage_start=summary.coverage_start,
        coverage_end=summary.coverage_end,
        member_id=member_id or summary.member_id,
        other_payer_primary=summary.other_payer_primary,
        other_payers=tuple(p.name for p in summary.other_payers if p.primary),
    )


def from_json(data: dict[str, Any]) -> BenefitsSummary:
    """A stored summary (``to_json_dict`` output) back as a :class:`BenefitsSummary`: status,
    dates, other payers and each service type's financials (for the scrubber and estimates)."""
    other = [
        OtherPayer(
            p.get("name") or "",
            p.get("payer_id") or "",
            bool(p.get("primary")),
            "",
            p.get("insurance_type") or "",
        )
        for p in data.get("other_payers") or []
    ]
    services = [_service_from_json(item) for item in data.get("services") or [] if isinstance(item, dict)]
    return BenefitsSummary(
        services=services,
        prior_authorization=[str(x) for x in data.get("prior_authorization") or []],
        status=str(data.get("status") or "error"),
        service_date=_day(data.get("service_date")),
        coverage_start=_day(data.get("coverage_start")),
        coverage_end=_day(data.get("coverage_end")),
        plan=data.get("plan") or "",
        group_number=data.get("group_number") or "",
        member_id_corrected=bool(data.get("member_id_corrected")),
        other_payers=other,
        trace_number=data.get("trace_number") or "",
    )


def _day(text: Any) -> date | None:
    try:
        return date.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _cents_of(text: Any) -> int | None:
    if not isinstance(text, str) or not text:
        return None
    value = Decimal(text) * 100
    return int(value) if value == value.to_integral_value() else None


def _service_from_json(item: dict[str, Any]) -> ServiceBenefits:
    service = ServiceBenefits(str(item.get("service_type") or ""))
    service.active = item.get("active")
    service.not_covered = bool(item.get("not_covered"))
    service.prior_authorization_required = item.get("prior_authorization_required")
    service.messages = [str(m) for m in item.get("messages") or []]
    for copay in item.get("copays") or []:
        cents = _cents_of(copay.get("amount"))
        if cents is not None:
            service.copays.append(
                Copay(
                    cents,
                    copay.get("level", "individual"),
                    copay.get("network", "unknown"),
                    copay.get("per", ""),
                )
            )
    for share in item.get("coinsurance") or []:
        service.coinsurance.append(
            Coinsurance(
                Decimal(share["percent"]) / 100,
                share.get("level", "individual"),
                share.get("network", "unknown"),
            )
        )
    for kind, target in (("deductibles", service.deductibles), ("out_of_pocket", service.out_of_pocket)):
        for acc in item.get(kind) or []:
            target.append(
                Accumulator(
                    acc.get("level", "individual"),
                    acc.get("network", "unknown"),
                    _cents_of(acc.get("total")),
                    _cents_of(acc.get("met")),
                    _cents_of(acc.get("remaining")),
                )
            )
    return service
