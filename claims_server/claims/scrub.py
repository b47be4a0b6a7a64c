"""Scrubbing a stored (or about-to-be-stored) claim, with the payer's rules.

``scrub_claim(session, claim)`` converts the claim with ``build_edi_claim`` (the same
conversion the batcher sends), runs ``coding.scrubber`` with ``PayerRules`` derived from
the payer row and the coverage's last eligibility answer, and returns the findings. :func:`to_json_findings` renames the
scrubber's dataclass paths to the claim JSON's (``lines[0].charge_cents`` →
``lines[0].charge``; ``billing_provider.npi`` → ``practice.npi`` with ``source``
``practice``) so a client can put each finding next to the field it sent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from claims_server.claims.to_edi import ClaimDataError, Parties, build_billing_provider, build_edi_claim
from claims_server.models import Claim, ClaimFilingIndicator, Payer
from coding.scrubber import PayerRules, Scrubber, ScrubFinding
from edi import claims as edi
from edi.findings import Severity

_scrubber: Scrubber | None = None

# Medicare corrects a processed claim through a reopening, not a frequency-7 claim
# (Medicare Claims Processing Manual ch. 34); state Medicaid programs require the
# billing provider taxonomy (PRV*BI) on every 837P.
_MEDICARE = frozenset({ClaimFilingIndicator.MEDICARE_PART_A, ClaimFilingIndicator.MEDICARE_PART_B})
_TAXONOMY_REQUIRED = frozenset({ClaimFilingIndicator.MEDICAID})


def payer_rules(payer: Payer) -> PayerRules:
    """The scrubber switches for a payer row: its timely-filing limit and program quirks."""
    indicator = ClaimFilingIndicator(payer.claim_filing_indicator)
    return PayerRules(
        timely_filing_days=payer.timely_filing_days,
        require_taxonomy=indicator in _TAXONOMY_REQUIRED,
        accepts_replacement_claims=indicator not in _MEDICARE,
    )


def scrubber() -> Scrubber:
    """The process-wide scrubber (code sets load once, on first use)."""
    global _scrubber
    if _scrubber is None:
        _scrubber = Scrubber()
    return _scrubber


def scrub_claim(session: Session, claim: Claim, *, today: date | None = None) -> list[ScrubFinding]:
    """Every finding for ``claim`` (errors first); data the 837 cannot do without is an error too."""
    return scrub_claims(session, [claim], today=today)[0]


def scrub_claims(
    session: Session, claims: Sequence[Claim], *, today: date | None = None
) -> list[list[ScrubFinding]]:
    """:func:`scrub_claim` for many claims: the findings of each, in order.

    What every claim of a practice, payer or patient shares (the billing provider, the
    payer's rules, the subscriber, patient and payer loops) is built once, and the
    coverages' eligibility answers are read in one go.
    """
    # The coverage's last 270/271 answer turns on the eligibility rules (not active on
    # the date of service, another payer primary, member id mismatch).
    from claims_server.eligibility.services import eligibility_facts_for

    eligibility = eligibility_facts_for(session, {claim.coverage for claim in claims})
    billing: dict[int, edi.BillingProvider] = {}
    rules: dict[int, PayerRules] = {}
    parties: dict[tuple[int, int], Parties] = {}  # a patient's claims share their subscriber loops
    out: list[list[ScrubFinding]] = []
    for claim in claims:
        if claim.practice_id not in billing:
            billing[claim.practice_id] = build_billing_provider(claim.practice)
        try:
            edi_claim = build_edi_claim(
                session, claim, billing_provider=billing[claim.practice_id], parties=parties
            )
        except ClaimDataError as exc:
            out.append(exc.findings)
            continue
        payer = claim.coverage.payer
        if payer.id not in rules:
            rules[payer.id] = payer_rules(payer)
        out.append(
            scrubber().scrub(
                edi_claim, today=today, rules=rules[payer.id], eligibility=eligibility.get(claim.coverage_id)
            )
        )
    return out


def has_errors(findings: list[ScrubFinding]) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)


_PARTY_FIELDS = {
    "rendering": "rendering_provider",
    "referring": "referring_provider",
    "supervising": "supervising_provider",
    "service_facility": "facility_provider",
}
_CLAIM_FIELDS = {
    "total_charge_cents": "total_charge",
    "original_claim_number": "payer_claim_control_number",
    "related_causes_state": "accident_state",
}
_LINE = re.compile(r"^lines\[(\d+)\]\.(\w+)(.*)$")


def json_path(path: str) -> tuple[str, str]:
    """(path in the claim JSON, source record) for a scrubber path."""
    head, _, rest = path.partition(".")
    if head == "billing_provider":
        return "practice." + rest.removeprefix("address.") if rest else "practice", "practice"
    if head == "subscriber":
        return "coverage." + rest.removeprefix("address.") if rest else "coverage", "coverage"
    if head == "patient":
        return "patient." + rest.removeprefix("address.") if rest else "patient", "patient"
    if head in _PARTY_FIELDS:
        return _PARTY_FIELDS[head], "claim"
    if head in _CLAIM_FIELDS:
        return _CLAIM_FIELDS[head], "claim"
    line = _LINE.match(path)
    if line:
        index, field, tail = line.groups()
        if field == "rendering":
            return f"lines[{index}].rendering_provider", "claim"
        if field == "charge_cents":
            field = "charge"
        return f"lines[{index}].{field}{tail}", "claim"
    return path, "claim"


def to_json_findings(findings: list[ScrubFinding]) -> list[dict[str, Any]]:
    """Findings as the API shows them (values are never echoed: they may be PHI)."""
    out = []
    for finding in findings:
        path, source = json_path(finding.path)
        out.append(
            {
                "rule_id": finding.rule_id,
                "severity": finding.severity.value,
                "message": finding.message,
                "path": path,
                "hint": finding.hint,
                "source": source,
            }
        )
    return out


def summary(findings: list[dict[str, Any]]) -> dict[str, Any]:
    """The validate answer: valid (no errors), counts, and the findings."""
    errors = sum(1 for f in findings if f["severity"] == Severity.ERROR.value)
    warnings = sum(1 for f in findings if f["severity"] == Severity.WARNING.value)
    return {"valid": errors == 0, "errors": errors, "warnings": warnings, "findings": findings}
