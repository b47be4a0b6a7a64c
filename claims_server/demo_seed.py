"""A synthetic demo practice: providers, payers, a clearinghouse route, patients, coverages.

Everything here is fictitious: NPIs are generated with a valid check digit but random
stems, phone numbers use the 555-01xx range reserved for fiction, e-mail addresses use
``example.org``, payer ids start with ``DEMO``. The data is drawn from a fixed-seed
``random.Random`` so every run plans the same rows, and each row is looked up by a
stable key (NPI, payer id, route name, account number, coverage order and start date)
before it is created, so seeding twice creates nothing the second time.

Rows are created the way an office creates them through the API: each document is loaded
by the API's request schema and passed to the service function the API route calls (the
same validation, the same audit events); the demo has no path of its own.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from marshmallow import Schema
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from claims_server.models import (
    ClaimFilingIndicator,
    ClearinghouseRoute,
    Coverage,
    Patient,
    Payer,
    Practice,
    Provider,
    ProviderEntityType,
    RelationshipToSubscriber,
    TransportKind,
    UsageIndicator,
    ensure_standard_accounts,
)
from claims_server.patients import services as patient_services
from claims_server.patients.schemas import CoverageSchema, PatientSchema
from claims_server.payers import services as payer_services
from claims_server.payers.schemas import PayerSchema, RouteSchema
from claims_server.practice import services as practices
from claims_server.practice.schemas import PracticeSchema, ProviderSchema
from claims_server.security.search import account_number_is
from edi.identifiers import npi_with_check_digit

SEED = 5010  # the X12 version the project speaks; any fixed value works
ROUTE_NAME = "Demo clearinghouse (folder drop)"
ACCOUNT_PREFIX = "DEMO-"
COVERAGE_START = date(2024, 1, 1)
TODAY_FOR_AGES = date(2025, 1, 1)  # fixed so ages, and therefore plans, never drift

_FIRST_NAMES_F = ("Avery", "Beatrix", "Celeste", "Dorothea", "Elowen", "Florence", "Greta", "Harriet")
_FIRST_NAMES_M = ("Ambrose", "Barnaby", "Cedric", "Dashiell", "Ellery", "Fitzgerald", "Gideon", "Horatio")
_LAST_NAMES = (
    "Quillfeather",
    "Marchbanks",
    "Brambleton",
    "Fairweather",
    "Oakenshaw",
    "Hollowell",
    "Brightwater",
)
_STREETS = (
    "Larkspur Lane",
    "Cobblestone Row",
    "Juniper Court",
    "Old Mill Road",
    "Heron Way",
    "Tamarack Drive",
)
_MBI_LETTERS = "ACDEFGHJKMNPQRTUVWXY"  # CMS MBI alphabet: no S, L, O, I, B, Z


@dataclass
class SeedSummary:
    """What the demo practice contains after seeding (printed by the CLI)."""

    practice_name: str
    practice_npi: str
    route_name: str
    provider_names: list[str] = field(default_factory=list)
    payer_names: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # rows of each kind that now exist
    created: dict[str, int] = field(default_factory=dict)  # rows of each kind this run added

    @property
    def created_anything(self) -> bool:
        return any(self.created.values())

    def lines(self) -> list[str]:
        """Human-readable summary, one fact per line (no PHI: patients are only counted)."""
        out = [
            f"practice: {self.practice_name} (NPI {self.practice_npi})",
            f"route: {self.route_name}",
            "providers: " + ", ".join(self.provider_names),
            "payers: " + ", ".join(self.payer_names),
        ]
        out += [f"{kind}: {n} ({self.created.get(kind, 0)} new)" for kind, n in self.counts.items()]
        return out


@dataclass
class _Counter:
    """Creates rows the way the API does: the request schema loads the document (so the same
    field rules apply), then the same service function the API route calls creates the row."""

    created: dict[str, int] = field(default_factory=dict)

    def add(
        self, kind: str, schema: Schema, create: Callable[[Mapping[str, Any]], Any], doc: dict[str, Any]
    ) -> Any:
        row = create(schema.load(doc))
        self.created[kind] = self.created.get(kind, 0) + 1
        return row


def _npi(rng: random.Random, first_digit: str) -> str:
    return npi_with_check_digit(first_digit + "".join(rng.choice("0123456789") for _ in range(8)))


def _phone(rng: random.Random) -> str:
    return f"217555{rng.randint(100, 199):04d}"  # 555-0100..0199: reserved for fiction


def _mbi(rng: random.Random) -> str:
    """A string shaped like a Medicare Beneficiary Identifier (not a real one)."""
    digits = "0123456789"
    alnum = _MBI_LETTERS + digits
    pattern = [
        "123456789",
        _MBI_LETTERS,
        alnum,
        digits,
        _MBI_LETTERS,
        alnum,
        digits,
        _MBI_LETTERS,
        _MBI_LETTERS,
        digits,
        digits,
    ]
    return "".join(rng.choice(chars) for chars in pattern)


def _plan(rng: random.Random) -> dict[str, Any]:
    """Draw every value from the seeded generator, in a fixed order."""
    plan: dict[str, Any] = {
        "practice_npi": _npi(rng, "1"),
        "providers": [
            ("Thistlewood", "Celeste", "MD", "207Q00000X", (True, False, True, False)),
            ("Ashcombe", "Gideon", "MD", "207R00000X", (True, False, True, False)),
            ("Penhallow", "Harriet", "NP", "363LF0000X", (True, False, False, False)),
            ("Wexley", "Barnaby", "DO", "208D00000X", (False, True, False, False)),
        ],
        "provider_npis": [_npi(rng, "1") for _ in range(4)],
        "patients": [],
    }
    for n in range(1, 13):
        female = rng.random() < 0.5
        first = rng.choice(_FIRST_NAMES_F if female else _FIRST_NAMES_M)
        # Patients 1-3 are on Medicare (65+); 9-10 are children of patients 7 and 8.
        if n <= 3:
            age = rng.randint(66, 88)
        elif n in (9, 10):
            age = rng.randint(4, 16)
        else:
            age = rng.randint(27, 60)
        born = TODAY_FOR_AGES - timedelta(days=age * 365 + rng.randint(0, 364))
        plan["patients"].append(
            {
                "account_number": f"{ACCOUNT_PREFIX}{n:04d}",
                "first_name": first,
                "last_name": rng.choice(_LAST_NAMES),
                "sex": "F" if female else "M",
                "birth_date": born,
                "address_line1": f"{rng.randint(10, 9899)} {rng.choice(_STREETS)}",
                "phone": _phone(rng),
                "member_ids": {
                    "mbi": _mbi(rng),
                    "medicaid": "".join(rng.choice("0123456789") for _ in range(9)) + "DM",
                    "acme": "ACM" + "".join(rng.choice("0123456789") for _ in range(9)),
                    "summit": "SMT" + "".join(rng.choice("0123456789") for _ in range(8)),
                },
            }
        )
    # A household shares a surname and an address.
    for member, head in _FAMILY:
        for key in ("last_name", "address_line1"):
            plan["patients"][member - 1][key] = plan["patients"][head - 1][key]
    return plan


# Which payers cover whom: (patient number, order, payer key, subscriber patient number or None).
_COVERAGE_PLAN: tuple[tuple[int, int, str, int | None], ...] = (
    (1, 1, "MB", None),
    (1, 2, "ACME", None),  # Medicare supplement as secondary
    (2, 1, "MB", None),
    (2, 2, "MC", None),  # dual eligible: Medicaid pays after Medicare
    (3, 1, "MB", None),
    (4, 1, "MC", None),
    (5, 1, "MC", None),
    (6, 1, "ACME", None),
    (7, 1, "SUMMIT", None),
    (7, 2, "ACME", 8),  # also covered as the spouse of patient 8
    (8, 1, "ACME", None),
    (8, 2, "SUMMIT", 7),  # and patient 8 as the spouse of patient 7
    (9, 1, "ACME", 8),  # child of patient 8
    (10, 1, "ACME", 8),
    (10, 2, "SUMMIT", 7),  # child of both: the birthday rule decides the order
    (11, 1, "SUMMIT", None),
    (12, 1, "ACME", None),
)
_SPOUSES = {(7, 8), (8, 7)}
_FAMILY = ((9, 8), (10, 8), (7, 8))  # (member, head of household) sharing surname and address


def seed_practice(session: Session) -> SeedSummary:
    """Create (or complete) the demo practice in ``session``; flushes, does not commit."""
    rng = random.Random(SEED)
    plan = _plan(rng)
    counter = _Counter()
    ensure_standard_accounts(session)

    practice = session.scalar(select(Practice).where(Practice.npi == plan["practice_npi"]))
    if practice is None:
        practice = counter.add(
            "practices",
            PracticeSchema(),
            lambda data: practices.create_practice(session, data),
            {
                "name": "Larkspur Family Medicine Demo",
                "npi": plan["practice_npi"],
                "tax_id": "930000017",
                "taxonomy_code": "207Q00000X",
                "address_line1": "400 Larkspur Lane",
                "address_line2": "Suite 200",
                "city": "Springfield",
                "state": "IL",
                "zip_code": "627010400",
                "phone": "2175550100",
                "contact_name": "Demo Billing Office",
                "contact_email": "billing@example.org",
                "submitter_id": "DEMOSUB01",
            },
        )

    route = session.scalar(select(ClearinghouseRoute).where(ClearinghouseRoute.name == ROUTE_NAME))
    if route is None:
        route = counter.add(
            "clearinghouse_routes",
            RouteSchema(),
            lambda data: payer_services.create_route(session, data),
            {
                "name": ROUTE_NAME,
                "transport": TransportKind.FOLDER.value,
                "settings": {"outbox": "edi/outbox", "inbox": "edi/inbox"},
                "sender_id_qualifier": "ZZ",
                "sender_id": "DEMOSUB01",
                "receiver_id_qualifier": "ZZ",
                "receiver_id": "DEMOCH",
                "application_sender_code": "DEMOSUB01",
                "application_receiver_code": "DEMOCH",
                "usage_indicator": UsageIndicator.TEST.value,
            },
        )

    providers: list[Provider] = []
    for (last, first, credential, taxonomy, roles), npi in zip(
        plan["providers"], plan["provider_npis"], strict=True
    ):
        provider = session.scalar(
            select(Provider).where(Provider.practice_id == practice.id, Provider.npi == npi)
        )
        if provider is None:
            rendering, referring, supervising, facility = roles
            provider = counter.add(
                "providers",
                ProviderSchema(),
                lambda data: practices.create_provider(session, data),
                {
                    "practice": practice.public_id,
                    "entity_type": ProviderEntityType.INDIVIDUAL.value,
                    "last_name": last,
                    "first_name": first,
                    "credential": credential,
                    "npi": npi,
                    "taxonomy_code": taxonomy,
                    "is_rendering": rendering,
                    "is_referring": referring,
                    "is_supervising": supervising,
                    "is_facility": facility,
                },
            )
        providers.append(provider)

    payer_specs = {
        "MB": ("Demo Medicare Part B", "DEMOMCRB", ClaimFilingIndicator.MEDICARE_PART_B, 365),
        "MC": ("Demo State Medicaid", "DEMOMCD", ClaimFilingIndicator.MEDICAID, 180),
        "ACME": ("Acme Health Plan (demo)", "DEMOACME", ClaimFilingIndicator.COMMERCIAL, 90),
        "SUMMIT": ("Summit Mutual Insurance (demo)", "DEMOSUMMIT", ClaimFilingIndicator.COMMERCIAL, 180),
    }
    payers: dict[str, Payer] = {}
    for key, (name, payer_id, indicator, timely_days) in payer_specs.items():
        payer = session.scalar(select(Payer).where(Payer.payer_id == payer_id))
        if payer is None:
            payer = counter.add(
                "payers",
                PayerSchema(),
                lambda data: payer_services.create_payer(session, data),
                {
                    "name": name,
                    "payer_id": payer_id,
                    "claim_filing_indicator": indicator.value,
                    "route": route.public_id,
                    "timely_filing_days": timely_days,
                },
            )
        payers[key] = payer

    patients: dict[int, Patient] = {}
    for n, spec in enumerate(plan["patients"], start=1):
        patient = session.scalar(
            select(Patient).where(
                Patient.practice_id == practice.id, account_number_is(session, spec["account_number"])
            )
        )
        if patient is None:
            patient = counter.add(
                "patients",
                PatientSchema(),
                lambda data: patient_services.create_patient(session, data),
                {
                    "practice": practice.public_id,
                    "account_number": spec["account_number"],
                    "last_name": spec["last_name"],
                    "first_name": spec["first_name"],
                    "birth_date": spec["birth_date"].isoformat(),
                    "sex": spec["sex"],
                    "address_line1": spec["address_line1"],
                    "city": "Springfield",
                    "state": "IL",
                    "zip_code": "627040000",
                    "phone": spec["phone"],
                    "email": f"patient{n:02d}@example.org",
                },
            )
        patients[n] = patient

    member_key = {"MB": "mbi", "MC": "medicaid", "ACME": "acme", "SUMMIT": "summit"}
    for n, order, payer_key, subscriber_n in _COVERAGE_PLAN:
        patient = patients[n]
        exists = session.scalar(
            select(Coverage.id).where(
                Coverage.patient_id == patient.id,
                Coverage.coverage_order == order,
                Coverage.effective_start == COVERAGE_START,
            )
        )
        if exists is not None:
            continue
        doc: dict[str, Any] = {
            "payer": payers[payer_key].public_id,
            "coverage_order": order,
            "effective_start": COVERAGE_START.isoformat(),
            "plan_name": payers[payer_key].name,
            "group_number": None if payer_key in ("MB", "MC") else f"GRP{1000 + n * 7}",
        }
        if subscriber_n is None:
            doc["relationship_code"] = RelationshipToSubscriber.SELF.value
            doc["member_id"] = plan["patients"][n - 1]["member_ids"][member_key[payer_key]]
        else:
            subscriber = patients[subscriber_n]
            spouse = (n, subscriber_n) in _SPOUSES
            doc["relationship_code"] = (
                RelationshipToSubscriber.SPOUSE if spouse else RelationshipToSubscriber.CHILD
            ).value
            doc["member_id"] = plan["patients"][subscriber_n - 1]["member_ids"][member_key[payer_key]]
            doc["subscriber_patient"] = subscriber.public_id
            doc |= {
                f"subscriber_{key}": value.isoformat() if isinstance(value, date) else value
                for key in (
                    "last_name",
                    "first_name",
                    "birth_date",
                    "sex",
                    "address_line1",
                    "city",
                    "state",
                    "zip_code",
                )
                if (value := getattr(subscriber, key)) is not None
            }
        counter.add(
            "coverages",
            CoverageSchema(),
            lambda data, patient=patient: patient_services.create_coverage(session, patient, data),
            doc,
        )

    counts = {
        kind: session.scalar(select(func.count()).select_from(model)) or 0
        for kind, model in (
            ("practices", Practice),
            ("providers", Provider),
            ("payers", Payer),
            ("clearinghouse_routes", ClearinghouseRoute),
            ("patients", Patient),
            ("coverages", Coverage),
        )
    }
    return SeedSummary(
        practice_name=practice.name,
        practice_npi=practice.npi,
        route_name=route.name,
        provider_names=[f"{p.display_name}, {p.credential} (NPI {p.npi})" for p in providers],
        payer_names=[f"{p.name} [{p.payer_id}, {p.claim_filing_indicator}]" for p in payers.values()],
        counts=counts,
        created={kind: counter.created.get(kind, 0) for kind in counts},
    )
