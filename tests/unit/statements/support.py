"""Synthetic statement inputs (invented names and addresses; amounts in cents)."""

from __future__ import annotations

from datetime import date

from statements import Address, Guarantor, LedgerLine, Practice, ResponsibilityPart, StatementInput

AS_OF = date(2026, 3, 2)
PRACTICE = Practice(
    "Larkspur Family Medicine Demo",
    Address("400 Larkspur Lane", "Suite 200", "Springfield", "IL", "627010400"),
    "2175550100",
    pay_url="https://pay.example.org",
)
GUARANTOR = Guarantor("Alex Q Sample", Address("12 Example Street", "Apt 3", "Springfield", "IL", "62704"))


def line(
    ref: str,
    balance: int,
    since: date,
    *,
    code: str = "99213",
    billed: int = 15000,
    paid: int = 8000,
    adjusted: int = 3000,
    parts: tuple[tuple[str, str, int], ...] = (),
    pending: int = 0,
    dos: date | None = None,
    claim: str = "CLAIMA",
) -> LedgerLine:
    return LedgerLine(
        claim_ref=claim,
        line_ref=ref,
        service_date=dos or since,
        provider_name="Jordan Rivera, MD",
        procedure_code=code,
        billed_cents=billed,
        insurance_paid_cents=paid,
        adjustments_cents=adjusted,
        balance_cents=balance,
        responsible_since=since,
        responsibility=tuple(ResponsibilityPart(g, r, c) for g, r, c in parts),
        insurance_pending_cents=pending,
    )


def statement_input(*lines: LedgerLine, credit: int = 0, **extra: object) -> StatementInput:
    return StatementInput(
        statement_date=AS_OF,
        account_number="A000123",
        practice=PRACTICE,
        guarantor=GUARANTOR,
        patient_name="Alex Q Sample",
        lines=tuple(lines),
        account_credit_cents=credit,
        statement_ref="S-7F3A21",
        **extra,  # type: ignore[arg-type]
    )
