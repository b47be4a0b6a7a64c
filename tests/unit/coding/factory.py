"""Synthetic claims for the scrubber tests: one clean claim, and variations of it.

All people, providers and numbers are made up; NPIs are built with valid check digits.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path

from coding import hcpcs, icd10cm, ncci
from coding.scrubber import CodeSets
from edi.claims import Address, BillingProvider, Claim, Diagnosis, Payer, Provider, ServiceLine, Subscriber
from edi.identifiers import npi_with_check_digit

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TODAY = date(2026, 7, 1)
DOS = date(2026, 6, 15)
BILLING_NPI = npi_with_check_digit("123456789")
RENDERING_NPI = npi_with_check_digit("198765432")
REFERRING_NPI = npi_with_check_digit("155555555")


@cache
def code_sets() -> CodeSets:
    """Shipped ICD-10-CM and HCPCS, fixture PTP/MUE tables, starter add-on table, no CPT file."""
    return CodeSets(
        icd10cm.load(),
        hcpcs.load(),
        cpt=None,
        ptp=ncci.read_ptp([FIXTURES / "ptp_practitioner_sample.txt"]),
        mue=ncci.read_mue(FIXTURES / "mue_practitioner_sample.csv"),
    )


def line(
    procedure: str,
    charge_cents: int,
    *,
    units: str = "1",
    modifiers: tuple[str, ...] = (),
    pointers: tuple[int, ...] = (1,),
    service_date: date | None = DOS,
    **extra: object,
) -> ServiceLine:
    return ServiceLine(
        procedure=procedure,
        charge_cents=charge_cents,
        units=Decimal(units),
        modifiers=modifiers,
        diagnosis_pointers=pointers,
        service_date=service_date,
        **extra,  # type: ignore[arg-type]
    )


def clean_claim(**overrides: object) -> Claim:
    """A claim that passes every rule: 3 diagnoses, 3 lines, office visit on 2026-06-15."""
    lines = [
        line("99214", 15000, modifiers=("25",), pointers=(1, 2)),
        line("93000", 4500, pointers=(2,)),
        line("36415", 1200, pointers=(1, 3)),
    ]
    fields: dict[str, object] = {
        "patient_control_number": "PCN0001",
        "billing_provider": BillingProvider(
            npi=BILLING_NPI,
            address=Address("100 Main St", "Austin", "TX", "787011234"),
            tax_id="123456789",
            organization_name="Synthetic Family Clinic",
            taxonomy="207Q00000X",
        ),
        "subscriber": Subscriber(
            last_name="Testperson",
            first_name="Alex",
            member_id="MEMBER001",
            birth_date=date(1980, 3, 2),
            sex="F",
            address=Address("1 Elm St", "Austin", "TX", "78701"),
        ),
        "payer": Payer("Synthetic Health Plan", "SYN01"),
        "lines": lines,
        "diagnoses": [Diagnosis("E119"), Diagnosis("I10"), Diagnosis("Z794")],
        "rendering": Provider(npi=RENDERING_NPI, last_name="Doe", first_name="Pat", taxonomy="207Q00000X"),
    }
    fields.update(overrides)
    return Claim(**fields)  # type: ignore[arg-type]


def with_line(claim: Claim, index: int, **changes: object) -> Claim:
    """A copy of the claim with one service line changed (lines are frozen dataclasses)."""
    lines = list(claim.lines)
    lines[index] = dataclasses.replace(lines[index], **changes)  # type: ignore[arg-type]
    total = sum(item.charge_cents for item in lines)
    return dataclasses.replace(claim, lines=lines, total_charge_cents=total)
