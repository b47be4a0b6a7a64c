"""The statement's inputs (what the ledger knows) and the statement itself (what the patient reads).

Plain dataclasses: ``claims_server.statements.services`` fills a :class:`StatementInput`
from the ledger; :func:`statements.build.build_statement` turns it into a
:class:`Statement`; the renderers draw that. Money is integer cents everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import IntEnum, StrEnum


class StatementInputError(ValueError):
    """An input the statement cannot be built from; names the field and rule, never a value."""

    def __init__(self, field_name: str, rule: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.rule = rule
        self.message = message

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "message": self.message}


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address as printed (USPS: name line, street lines, city/state/ZIP line)."""

    line1: str
    line2: str | None
    city: str
    state: str
    zip_code: str

    @property
    def is_complete(self) -> bool:
        """Street, city, state and ZIP present: the minimum a mail house accepts."""
        return bool(self.line1 and self.city and self.state and self.zip_code)

    def zip_text(self) -> str:
        """ZIP or ZIP+4 with the hyphen (``627010400`` -> ``62701-0400``)."""
        z = self.zip_code.strip()
        return f"{z[:5]}-{z[5:]}" if len(z) == 9 and z.isdigit() else z

    def lines(self) -> list[str]:
        """Street lines then ``CITY ST 12345-6789`` (USPS Publication 28 last line)."""
        out = [self.line1]
        if self.line2:
            out.append(self.line2)
        out.append(f"{self.city} {self.state} {self.zip_text()}")
        return out


@dataclass(frozen=True, slots=True)
class Practice:
    """Who sends the statement and where payments go."""

    name: str
    address: Address
    phone: str | None = None
    remit_to: Address | None = None  # pay-to address (837 2010AB) when it differs
    pay_url: str | None = None  # where a patient pays online (no token: the link is delivered separately)

    def phone_text(self) -> str:
        p = (self.phone or "").strip()
        return f"({p[:3]}) {p[3:6]}-{p[6:]}" if len(p) == 10 and p.isdigit() else p


@dataclass(frozen=True, slots=True)
class Guarantor:
    """The person the statement is addressed to (the patient, or who pays for them)."""

    name: str
    address: Address | None
    email: str | None = None


@dataclass(frozen=True, slots=True)
class ResponsibilityPart:
    """One reason the patient owes part of a line: a CAS adjustment with group PR (or self-pay)."""

    group: str  # CAS01: PR for patient responsibility
    reason: str  # CAS02 CARC ("1" deductible, "2" coinsurance, "3" copay, "96" not covered...)
    amount_cents: int


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """One service line as the ledger and the remittances see it, for one patient.

    ``balance_cents`` is the line's A/R-patient balance (the ledger's truth); the other
    amounts explain it, and together they add up: ``billed - insurance_paid - adjustments
    - patient_paid - patient_adjusted - insurance_open = balance`` (the row of the
    statement is drawn from that identity). ``insurance_pending_cents`` is what the claim
    still has open with an insurer: while it is not zero, the patient's part is not billed
    yet. ``insurance_open_cents`` is this line's own part of it. Without ``balance_billing``
    a PR-45 part of the balance must not be billed: ``statements.build.held_cents`` keeps it
    off the statement until a person resolves it.
    """

    claim_ref: str  # claim public id (never a patient identifier)
    line_ref: str  # service line reference (claim public id + line number)
    service_date: date
    provider_name: str
    procedure_code: str
    billed_cents: int
    insurance_paid_cents: int
    adjustments_cents: int  # contractual and other insurer adjustments (CO, OA, PI)
    balance_cents: int
    responsible_since: date  # when this line first became the patient's to pay (aging starts)
    modifiers: tuple[str, ...] = ()
    description: str | None = None  # SV101-7 text for unlisted codes
    responsibility: tuple[ResponsibilityPart, ...] = ()
    patient_paid_cents: int = 0
    patient_adjusted_cents: int = 0  # write-offs and courtesy discounts on the patient's part
    insurance_pending_cents: int = 0
    insurance_open_cents: int = 0  # this line's own A/R insurance (any payer), part of the identity
    balance_billing: bool = False  # the plan lets the provider bill above the allowed amount (PR-45)


@dataclass(frozen=True, slots=True)
class PreviousStatement:
    """The last statement sent (not void): when, how much, and where it stood in dunning."""

    statement_date: date
    balance_cents: int
    dunning_step: int  # 1 for the first statement of a cycle, rising


@dataclass(frozen=True, slots=True)
class StatementInput:
    """Everything a statement needs, read from the ledger for one patient as of a date."""

    statement_date: date
    account_number: str
    practice: Practice
    guarantor: Guarantor
    patient_name: str
    lines: tuple[LedgerLine, ...]
    account_credit_cents: int = 0  # A/R-patient postings on no line (payments on account): <= 0
    previous: PreviousStatement | None = None
    previous_balance_cents: int = 0  # A/R patient as of the previous statement's date
    payments_since_previous_cents: int = 0  # patient payments received after it (positive)
    adjustments_since_previous_cents: int = 0  # write-offs after it (positive)
    statement_ref: str | None = None  # printed reference (statement public id, short form)


class Bucket(StrEnum):
    """Aging buckets printed on the statement (days since the amount became the patient's)."""

    CURRENT = "current"  # 0-30
    DAYS_31_60 = "31-60"
    DAYS_61_90 = "61-90"
    OVER_90 = "over 90"


@dataclass(frozen=True, slots=True)
class Aging:
    """Amount owed by age; the four buckets sum to the balance aged. ``over_90`` splits for storage."""

    current_cents: int = 0
    days_31_60_cents: int = 0
    days_61_90_cents: int = 0
    days_91_120_cents: int = 0
    over_120_cents: int = 0

    @property
    def over_90_cents(self) -> int:
        return self.days_91_120_cents + self.over_120_cents

    @property
    def total_cents(self) -> int:
        return self.current_cents + self.days_31_60_cents + self.days_61_90_cents + self.over_90_cents

    def buckets(self) -> list[tuple[Bucket, int]]:
        return [
            (Bucket.CURRENT, self.current_cents),
            (Bucket.DAYS_31_60, self.days_31_60_cents),
            (Bucket.DAYS_61_90, self.days_61_90_cents),
            (Bucket.OVER_90, self.over_90_cents),
        ]


class DunningStage(IntEnum):
    """Where an account stands in the follow-up cadence (stored as the number)."""

    FIRST = 0  # first statement for this balance
    REMINDER = 1  # a later statement, balance still open
    FINAL_NOTICE = 2  # the last statement before a person reviews the account
    COLLECTIONS_HOLD = 3  # no more statements: a person decides (never sent automatically)


@dataclass(frozen=True, slots=True)
class Reason:
    """Why the patient owes part of a line, in plain language."""

    label: str  # "Deductible", "Coinsurance", "Copay", "Not covered", ...
    explanation: str
    amount_cents: int
    code: str  # "PR-1": for the billing office, printed small


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One service as printed: what it was, what insurance did, what the patient owes and why.

    The row adds up: ``billed - insurance_paid - adjustments - patient_paid - not_due =
    balance`` (``balance`` is "You owe"; ``not_due`` is what waits on insurance), and the
    rows of a statement plus its unapplied credit sum to its amount due.
    """

    line_ref: str
    claim_ref: str
    service_date: date
    procedure_code: str
    description: str
    billed_cents: int
    insurance_paid_cents: int
    adjustments_cents: int
    patient_paid_cents: int
    balance_cents: int
    reasons: tuple[Reason, ...]
    pending_insurance: bool
    not_due_cents: int = 0  # waiting on insurance: the insurer's open part and the patient's part held for it

    def reason_text(self) -> str:
        """The reasons as one sentence block (stored on ``StatementLine.reason_text``)."""
        return " ".join(f"{r.label}: {r.explanation}" for r in self.reasons)


@dataclass(frozen=True, slots=True)
class Visit:
    """The lines of one visit: same claim, same date of service, same provider."""

    service_date: date
    provider_name: str
    lines: tuple[StatementLine, ...]

    @property
    def balance_cents(self) -> int:
        return sum(line.balance_cents for line in self.lines)


@dataclass(frozen=True, slots=True)
class Statement:
    """A finished statement, ready to render (PDF for mail, HTML for email and the browser)."""

    statement_date: date
    due_date: date
    account_number: str
    statement_ref: str | None
    practice: Practice
    guarantor: Guarantor
    patient_name: str
    visits: tuple[Visit, ...]
    previous_balance_cents: int
    new_charges_cents: int
    payments_cents: int
    adjustments_cents: int
    balance_cents: int  # everything the patient owes now, including what waits on insurance
    pending_insurance_cents: int  # part of the balance on claims an insurer has not finished
    account_credit_cents: int
    amount_due_cents: int
    aging: Aging
    dunning_stage: DunningStage
    dunning_step: int
    dunning_message: str
    unapplied_credit_cents: int = 0  # account credit left after paying the rows (<= 0), printed as a row
    held_cents: int = 0  # owed in the ledger but not billable (kept off; a person reviews it)

    def lines(self) -> list[StatementLine]:
        return [line for visit in self.visits for line in visit.lines]
