"""Reading a payer's 271 safely: validate against X279A1 first, then summarize.

A 271 that fails the guide is never trusted (a malformed answer must not become a
silent "active"): the summary is ``error`` with a retry plan, and the validation
report is returned so the caller can send our 999 (``edi.ack.acknowledge``) and store
the findings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from edi.validate import ValidationReport, validate
from edi.x271 import Document271, parse_271
from eligibility.summary import GENERAL_MEDICAL, BenefitsSummary, malformed_plan, summarize


@dataclass(frozen=True, slots=True)
class Answer:
    summary: BenefitsSummary
    report: ValidationReport
    document: Document271 | None

    @property
    def malformed(self) -> bool:
        return not self.report.valid


def read_271(
    content: bytes,
    *,
    trace_number: str | None = None,
    service_types: Sequence[str] = (GENERAL_MEDICAL,),
    service_date: date | None = None,
    member_id_sent: str | None = None,
) -> Answer:
    """Validate and summarize a 271 interchange; the response echoing ``trace_number`` wins."""
    report = validate(content, file="271")
    if not report.valid:
        summary = BenefitsSummary(status="error", service_date=service_date, retry=malformed_plan())
        summary.messages.append(f"the 271 fails the X279A1 guide ({len(report.errors)} errors)")
        return Answer(summary, report, None)
    document = parse_271(content)
    responses = document.responses
    if not responses or not any(ts.st01 == "271" for ts in report.transaction_sets):
        summary = BenefitsSummary(status="error", service_date=service_date, retry=malformed_plan())
        summary.messages.append("the answer holds no 271 transaction set")
        return Answer(summary, report, document)
    chosen = responses[0]
    if trace_number:
        for response in responses:
            if any(t.number == trace_number for m in response.members() for t in m.traces):
                chosen = response
                break
    summary = summarize(
        chosen,
        service_types=service_types,
        service_date=service_date,
        trace_number=trace_number,
        member_id_sent=member_id_sent,
    )
    return Answer(summary, report, document)
