"""Synthetic rows for the security tests (no real patient data)."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from claims_server.models import ClaimFilingIndicator, Coverage, Patient, Payer, Practice


def practice(session: Session) -> Practice:
    row = Practice(
        name="Canary Clinic",
        npi="1234567893",
        tax_id="123456789",
        address_line1="1 Main St",
        city="Springfield",
        state="IL",
        zip_code="627040000",
        submitter_id="SUBMITTER01",
    )
    session.add(row)
    session.flush()
    return row


def payer(session: Session, payer_id: str = "PAYER01") -> Payer:
    row = Payer(
        name="Test Health Plan", payer_id=payer_id, claim_filing_indicator=ClaimFilingIndicator.COMMERCIAL
    )
    session.add(row)
    session.flush()
    return row


def patient(session: Session, practice_id: int, n: int = 1, **overrides: object) -> Patient:
    values: dict[str, object] = {
        "practice_id": practice_id,
        "account_number": f"ACCT{n:06d}",
        "last_name": f"Lastname{n}",
        "first_name": f"Firstname{n}",
        "birth_date": date(1970, 1, 1 + n % 28),
        "sex": "F",
        "address_line1": f"{n} Elm Street",
        "city": "Springfield",
        "state": "IL",
        "zip_code": "627040000",
        "phone": "2175550100",
        "email": f"p{n}@example.org",
    }
    values.update(overrides)
    row = Patient(**values)
    session.add(row)
    session.flush()
    return row


def coverage(session: Session, patient_id: int, payer_id: int, member_id: str) -> Coverage:
    row = Coverage(
        patient_id=patient_id,
        payer_id=payer_id,
        coverage_order=1,
        member_id=member_id,
        effective_start=date(2024, 1, 1),
    )
    session.add(row)
    session.flush()
    return row
