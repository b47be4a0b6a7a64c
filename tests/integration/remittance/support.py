"""Builders for the remittance tests: claims in the acknowledged state and 835s that pay them.

Every 835 here is written by hand from the amounts the test states, so each expected
posting is computed by the reader, not by the code under test. Money is integer cents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from claims_server.claims import services as claim_services
from claims_server.demo_seed import seed_practice
from claims_server.models import Claim, ClaimState, Coverage, Payer, Provider

DOS = date.today() - timedelta(days=20)
TRN03 = {
    "DEMOMCRB": "1000000001",
    "DEMOMCD": "1000000002",
    "DEMOACME": "1000000003",
    "DEMOSUMMIT": "1000000004",
}


def money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"


@dataclass
class World:
    """The seeded practice: payer ids by key and patients with one or two coverages."""

    payers: dict[str, int]
    single: Coverage  # a patient whose only coverage is ACME (primary)
    with_secondary: Coverage  # Medicare primary, ACME secondary
    rendering_npi: str


def seed_world(session: Session) -> World:
    seed_practice(session)
    for payer in session.scalars(select(Payer)):
        payer.remittance_payer_identifier = TRN03[payer.payer_id]
    session.commit()
    payers = {p.payer_id: p.id for p in session.scalars(select(Payer))}
    coverages = session.scalars(select(Coverage).order_by(Coverage.id)).all()
    by_patient: dict[int, list[Coverage]] = {}
    for c in coverages:
        by_patient.setdefault(c.patient_id, []).append(c)
    single = next(
        c
        for c in coverages
        if c.coverage_order == 1
        and c.payer_id == payers["DEMOACME"]
        and len(by_patient[c.patient_id]) == 1
        and c.relationship_code.value == "18"
    )
    with_secondary = next(
        c
        for c in coverages
        if c.coverage_order == 1
        and c.payer_id == payers["DEMOMCRB"]
        and any(o.coverage_order == 2 and o.payer_id == payers["DEMOACME"] for o in by_patient[c.patient_id])
    )
    rendering = session.scalar(select(Provider).where(Provider.is_rendering).order_by(Provider.id))
    return World(payers, single, with_secondary, rendering.npi)


def make_claim(
    session: Session,
    world: World,
    pcn: str,
    lines: list[tuple[str, int]],
    *,
    coverage: Coverage | None = None,
    modifiers: dict[int, list[str]] | None = None,
    claim_state: ClaimState = ClaimState.ACKNOWLEDGED,
) -> Claim:
    """A claim with ``lines`` [(procedure, charge cents)], put in ``claim_state`` (test setup)."""
    cov = coverage or world.single
    doc: dict[str, Any] = {
        "patient": cov.patient.public_id,
        "coverage": cov.public_id,
        "patient_control_number": pcn,
        "place_of_service": "11",
        "rendering_provider": world.rendering_npi,
        "diagnoses": ["E11.9", "I10"],
        "lines": [
            {
                "procedure": code,
                "charge": money(cents),
                "units": "1",
                "service_date": DOS.isoformat(),
                "diagnosis_pointers": [1],
                **({"modifiers": (modifiers or {})[i]} if i in (modifiers or {}) else {}),
            }
            for i, (code, cents) in enumerate(lines)
        ],
    }
    claim = claim_services.create_claim_from_json(session, doc).claim
    claim.state = claim_state
    session.commit()
    return claim


@dataclass
class Svc:
    code: str
    charge: int
    paid: int
    cas: list[tuple[str, str, int]] = field(default_factory=list)
    lcn: str | None = None  # REF*6R; None: no REF*6R (forces the fallback match)
    modifiers: tuple[str, ...] = ()
    service_date: date | None = DOS
    remarks: list[str] = field(default_factory=list)


@dataclass
class Clp:
    pcn: str
    status: str
    charge: int
    paid: int
    patient_resp: int | None = None
    lines: list[Svc] = field(default_factory=list)
    cas: list[tuple[str, str, int]] = field(default_factory=list)
    crossover: str | None = None  # NM1*TT name
    payer_claim_number: str = "PCCN0001"
    moa_remarks: list[str] = field(default_factory=list)


def _cas(items: list[tuple[str, str, int]]) -> list[str]:
    return [f"CAS*{g}*{r}*{money(a)}" for g, r, a in items]


def build_835(
    claims: list[Clp],
    *,
    trace: str = "TRACE0001",
    payer: str = "DEMOACME",
    plb: list[tuple[str, int]] | None = None,
    bpr02: int | None = None,
    control: int = 1,
    plb_references: list[str | None] | None = None,
) -> bytes:
    """One interchange with one 835; BPR02 = Σ CLP04 - Σ PLB unless ``bpr02`` says otherwise.

    ``plb_references``: PLB03-2 of each ``plb`` pair (None: the reason alone), instead of
    ``REF<n>``; more than six pairs then go in several PLB segments.
    """
    plb = plb or []
    total = sum(c.paid for c in claims) - sum(a for _, a in plb)
    payment = total if bpr02 is None else bpr02
    segs = [
        "ST*835*0001",
        f"BPR*I*{money(payment)}*C*ACH*CCP*01*999999992*DA*123456*1512345678**01*999988880*DA*98765*20260110",
        f"TRN*1*{trace}*{TRN03[payer]}",
        "DTM*405*20260110",
        "N1*PR*DEMO PAYER",
        "N3*100 EXAMPLE AVENUE",
        "N4*ANYTOWN*PA*191030000",
        "PER*BL*PROVIDER SERVICES*TE*8005550100",
        "N1*PE*DEMO PRACTICE*XX*1234567893",
        "LX*1",
    ]
    for c in claims:
        segs.append(
            f"CLP*{c.pcn}*{c.status}*{money(c.charge)}*{money(c.paid)}*"
            f"{money(c.patient_resp) if c.patient_resp is not None else ''}*12*{c.payer_claim_number}*11*1"
        )
        segs += _cas(c.cas)
        segs.append("NM1*QC*1*SYNTHETIC*PATIENT****MI*MBR000001")
        if c.crossover:
            segs.append(f"NM1*TT*2*{c.crossover}*****PI*99999")
        if c.moa_remarks:
            segs.append("MOA***" + "*".join(c.moa_remarks))
        segs.append(f"DTM*232*{DOS:%Y%m%d}")
        for s in c.lines:
            proc = ":".join(["HC", s.code, *s.modifiers])
            segs.append(f"SVC*{proc}*{money(s.charge)}*{money(s.paid)}**1")
            if s.service_date:
                segs.append(f"DTM*472*{s.service_date:%Y%m%d}")
            segs += _cas(s.cas)
            if s.lcn:
                segs.append(f"REF*6R*{s.lcn}")
            segs += [f"LQ*HE*{r}" for r in s.remarks]
    if plb and plb_references is not None:
        ids = [
            f"{reason}:{ref}" if ref is not None else reason
            for (reason, _), ref in zip(plb, plb_references, strict=True)
        ]
        for start in range(0, len(plb), 6):
            pairs = "*".join(
                f"{ident}*{money(amount)}"
                for ident, (_, amount) in zip(ids[start : start + 6], plb[start : start + 6], strict=True)
            )
            segs.append(f"PLB*1234567893*20261231*{pairs}")
    elif plb:
        pairs = "*".join(f"{reason}:REF{n}*{money(amount)}" for n, (reason, amount) in enumerate(plb, 1))
        segs.append(f"PLB*1234567893*20261231*{pairs}")
    segs.append(f"SE*{len(segs) + 1}*0001")
    isa = (
        "ISA*00*          *00*          *ZZ*DEMOPAYER      *ZZ*DEMOPRACTICE   *260110*1200*^*00501*"
        f"{control:09d}*0*T*:"
    )
    body = [
        isa,
        f"GS*HP*DEMOPAYER*DEMOPRACTICE*20260110*1200*{control}*X*005010X221A1",
        *segs,
        f"GE*1*{control}",
        f"IEA*1*{control:09d}",
    ]
    return ("~".join(body) + "~").encode("ascii")
