"""The demo seed: idempotent, deterministic, and valid by the identifier rules claims need."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from claims_server import migrate
from claims_server.db import make_engine, make_session_factory, unit_of_work
from claims_server.demo import run_demo
from claims_server.demo_seed import SeedSummary, seed_practice
from claims_server.models import (
    STANDARD_CHART,
    Account,
    AccountCode,
    Claim,
    ClaimFilingIndicator,
    Coverage,
    Patient,
    Payer,
    Posting,
    Practice,
    Provider,
    RelationshipToSubscriber,
    WorkItem,
)
from claims_server.models.remittance import (
    AdjudicationKind,
    AdjudicationState,
    AdjustmentGroup,
    ClaimPayment,
    Remittance,
    RemittanceState,
)
from claims_server.models.workqueue import WorkItemStatus, WorkQueue
from edi.identifiers import is_valid_ein, is_valid_npi, is_valid_zip
from tests.services import fresh_postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def seed_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated database of each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'seed.sqlite3'}"
        migrate.upgrade(url)
        yield url
        return
    with fresh_postgres_database() as url:
        migrate.upgrade(url)
        yield url


def _seed(url: str) -> SeedSummary:
    engine = make_engine(url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            return seed_practice(session)
    finally:
        engine.dispose()


def test_seeding_twice_creates_nothing_the_second_time(seed_database_url: str) -> None:
    first = _seed(seed_database_url)
    second = _seed(seed_database_url)

    assert first.counts == second.counts
    assert first.counts == {
        "practices": 1,
        "providers": 4,
        "payers": 4,
        "clearinghouse_routes": 1,
        "patients": 12,
        "coverages": 17,
    }
    assert first.created == first.counts
    assert not second.created_anything
    assert first.provider_names == second.provider_names
    assert first.payer_names == second.payer_names


def test_every_seeded_identifier_is_valid(seed_database_url: str) -> None:
    summary = _seed(seed_database_url)
    engine = make_engine(seed_database_url)
    try:
        with Session(engine) as session:
            practice = session.scalars(select(Practice)).one()
            npis = [practice.npi, *session.scalars(select(Provider.npi))]
            assert len(npis) == 5 and len(set(npis)) == 5
            assert all(is_valid_npi(npi) for npi in npis)
            assert summary.practice_npi == practice.npi
            assert is_valid_ein(practice.tax_id)
            # 2010AA N403: the billing provider's ZIP must be the full nine digits.
            assert is_valid_zip(practice.zip_code, require_plus4=True)
            assert practice.pay_to_zip_code is None or is_valid_zip(
                practice.pay_to_zip_code, require_plus4=True
            )
            assert practice.submitter_id and practice.taxonomy_code
            providers = session.scalars(select(Provider)).all()
            assert sum(p.is_rendering for p in providers) == 3
            assert sum(p.is_referring for p in providers) == 1
            assert all(is_valid_zip(p.zip_code) for p in session.scalars(select(Patient)))
    finally:
        engine.dispose()


def test_payers_coverages_and_dependents_are_consistent(seed_database_url: str) -> None:
    _seed(seed_database_url)
    engine = make_engine(seed_database_url)
    try:
        with Session(engine) as session:
            payers = session.scalars(select(Payer)).all()
            indicators = sorted(p.claim_filing_indicator for p in payers)
            assert indicators == sorted(
                [
                    ClaimFilingIndicator.MEDICARE_PART_B,
                    ClaimFilingIndicator.MEDICAID,
                    ClaimFilingIndicator.COMMERCIAL,
                    ClaimFilingIndicator.COMMERCIAL,
                ]
            )
            assert all(p.route is not None and p.payer_id for p in payers)

            coverages = session.scalars(select(Coverage)).all()
            assert any(c.coverage_order == 2 for c in coverages)
            dependents = [c for c in coverages if not c.is_self]
            assert {c.relationship_code for c in dependents} == {
                RelationshipToSubscriber.CHILD,
                RelationshipToSubscriber.SPOUSE,
            }
            for dep in dependents:
                subscriber = dep.subscriber_patient
                assert subscriber is not None and subscriber.id != dep.patient_id
                assert dep.subscriber_last_name == subscriber.last_name
                assert dep.subscriber_birth_date == subscriber.birth_date
                # The subscriber holds the same policy in their own name (SBR02 = 18).
                own = [c for c in subscriber.coverages if c.is_self and c.payer_id == dep.payer_id]
                assert len(own) == 1 and own[0].member_id == dep.member_id
                if dep.relationship_code == RelationshipToSubscriber.CHILD:
                    assert dep.patient.birth_date > subscriber.birth_date
            for coverage in coverages:
                if coverage.payer.claim_filing_indicator == ClaimFilingIndicator.MEDICARE_PART_B:
                    assert len(coverage.member_id) == 11  # MBI-shaped
            assert not any(c.is_self and c.subscriber_patient_id for c in coverages)

            codes = set(session.scalars(select(Account.code)))
            assert codes == {code.value for code, _, _ in STANDARD_CHART}
    finally:
        engine.dispose()


def test_seed_is_deterministic_across_databases(tmp_path: Path) -> None:
    def snapshot(name: str) -> list[tuple[str, str, str, str]]:
        url = f"sqlite:///{tmp_path / name}"
        migrate.upgrade(url)
        _seed(url)
        engine = make_engine(url)
        try:
            with Session(engine) as session:
                # Sorted here: the account number is ciphertext in the database.
                return sorted(
                    (p.account_number, p.last_name, p.first_name, p.birth_date.isoformat())
                    for p in session.scalars(select(Patient))
                )
        finally:
            engine.dispose()

    first = snapshot("a.sqlite3")
    assert first == snapshot("b.sqlite3")
    assert len(first) == 12


def test_summary_lines_name_the_practice_but_no_patient(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'summary.sqlite3'}"
    migrate.upgrade(url)
    summary = _seed(url)
    text = "\n".join(summary.lines())
    assert summary.practice_name in text and "patients: 12 (12 new)" in text
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            surnames = {p.last_name for p in session.scalars(select(Patient))}  # decrypted via the ORM
    finally:
        engine.dispose()
    assert not any(name in text for name in surnames)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def demo_day_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of each backend after the whole demo day (``run_demo`` with its files), once per module."""
    folder = tmp_path_factory.mktemp(f"demo-{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{folder / 'demo.sqlite3'}"
        run_demo(url, folder / "demo")
        yield url
        return
    with fresh_postgres_database() as url:
        run_demo(url, folder / "demo")
        yield url


def test_the_demo_day_leaves_no_payer_receivable_below_zero(demo_day_url: str) -> None:
    """Issue 17: the demo's secondary (a restated CO-45) once left a payer's A/R at -95.00 and a
    replacement claim's answer one at -125.00; after the whole demo day no payer's A/R insurance
    of any claim is below zero, and the trial balance sums to zero."""
    engine = make_engine(demo_day_url)
    try:
        with Session(engine) as session:
            ar_insurance = session.scalar(
                select(Account.id).where(Account.code == AccountCode.AR_INSURANCE.value)
            )
            total = func.sum(Posting.amount_cents)
            negative = session.execute(
                select(Posting.claim_id, Posting.payer_id, total)
                .where(Posting.account_id == ar_insurance)
                .group_by(Posting.claim_id, Posting.payer_id)
                .having(total < 0)
            ).all()
            assert negative == []
            by_payer = session.execute(
                select(Posting.payer_id, total)
                .where(Posting.account_id == ar_insurance)
                .group_by(Posting.payer_id)
            ).all()
            assert by_payer and all(cents >= 0 for _, cents in by_payer)
            assert session.scalar(select(func.sum(Posting.amount_cents))) == 0
    finally:
        engine.dispose()


def _pr_cents(payment: ClaimPayment) -> int:
    """What an adjudication left to the patient: its CAS group PR, claim and line level."""
    adjustments = [*payment.adjustments, *(a for line in payment.line_payments for a in line.adjustments)]
    return sum(a.amount_cents for a in adjustments if a.group_code == AdjustmentGroup.PATIENT_RESPONSIBILITY)


def test_the_demo_day_holds_nothing_and_the_patient_owes_what_the_last_payer_left(demo_day_url: str) -> None:
    """Issue 17, the simulated payer answering like a real one: the replacement claim's answer
    reverses the original adjudication (CLP02 = 22) before the corrected one, and the secondary
    adjudicates from the primary's COB data (pays what the primary left to the patient, restates
    the rest). So the demo ends with no held adjudication, no possible-duplicate or overdraw item,
    and on every claim the patient owes what the last payer to adjudicate left as PR."""
    engine = make_engine(demo_day_url)
    try:
        with Session(engine) as session:
            assert (
                session.scalars(
                    select(ClaimPayment).where(
                        (ClaimPayment.adjudication_state == AdjudicationState.HELD)
                        | ClaimPayment.hold_reason.is_not(None)
                    )
                ).all()
                == []
            )
            hold_items = session.scalars(
                select(WorkItem).where(
                    (WorkItem.queue == WorkQueue.POSSIBLE_DUPLICATE)
                    | WorkItem.dedupe_key.like("possible_duplicate:%")
                    | WorkItem.dedupe_key.like("would_overdraw:%")
                    | WorkItem.dedupe_key.like("reversal_unmatched:%")
                )
            ).all()
            assert hold_items == []
            assert (
                session.scalars(select(Remittance).where(Remittance.state == RemittanceState.HELD)).all()
                == []
            )

            # The replacement: the original adjudication reversed, the corrected one current,
            # and the "reversed, awaiting its correction" item closed by the correction.
            (reversal,) = session.scalars(
                select(ClaimPayment).where(ClaimPayment.adjudication_kind == AdjudicationKind.REVERSAL)
            ).all()
            assert reversal.adjudication_state == AdjudicationState.APPLIED and reversal.status_code == "22"
            target = session.get(ClaimPayment, reversal.reverses_claim_payment_id)
            assert target.adjudication_state == AdjudicationState.REVERSED
            assert (reversal.paid_cents, reversal.charge_cents) == (-target.paid_cents, -target.charge_cents)
            (correction,) = session.scalars(
                select(ClaimPayment).where(ClaimPayment.adjudication_kind == AdjudicationKind.CORRECTION)
            ).all()
            assert correction.adjudication_state == AdjudicationState.CURRENT
            assert correction.ledger_claim_id == target.ledger_claim_id
            assert correction.payer_id == target.payer_id and correction.paid_cents > target.paid_cents
            reversal_items = session.scalars(
                select(WorkItem).where(WorkItem.dedupe_key.like("reversal:%"))
            ).all()
            assert reversal_items and all(i.status == WorkItemStatus.RESOLVED for i in reversal_items)

            # The secondary: it moved exactly what the primary left open on it, nothing more.
            (secondary,) = session.scalars(select(ClaimPayment).where(ClaimPayment.status_code == "2")).all()
            assert secondary.adjudication_state == AdjudicationState.CURRENT
            (primary,) = session.scalars(
                select(ClaimPayment).where(
                    ClaimPayment.ledger_claim_id == secondary.ledger_claim_id,
                    ClaimPayment.payer_id != secondary.payer_id,
                    ClaimPayment.adjudication_state == AdjudicationState.CURRENT,
                )
            ).all()
            assert _pr_cents(primary) > 0
            assert secondary.paid_cents + _pr_cents(secondary) == _pr_cents(primary)
            assert 0 <= _pr_cents(secondary) <= _pr_cents(primary)

            # Every claim: the patient owes what the last payer to adjudicate left as PR (or,
            # while the next payer is not billed yet, that payer holds it).
            accounts = {a.code: a.id for a in session.scalars(select(Account))}
            total = func.coalesce(func.sum(Posting.amount_cents), 0)
            current = session.scalars(
                select(ClaimPayment).where(ClaimPayment.adjudication_state == AdjudicationState.CURRENT)
            ).all()
            by_encounter: dict[int, list[ClaimPayment]] = {}
            for payment in current:
                by_encounter.setdefault(payment.ledger_claim_id, []).append(payment)
            assert len(by_encounter) > 20
            for encounter, payments in by_encounter.items():
                claim = session.get(Claim, encounter)
                order = {
                    c.payer_id: c.coverage_order
                    for c in session.scalars(select(Coverage).where(Coverage.patient_id == claim.patient_id))
                }
                last = max(payments, key=lambda p: order[p.payer_id])
                patient = session.scalar(
                    select(total).where(
                        Posting.account_id == accounts[AccountCode.AR_PATIENT.value],
                        Posting.claim_id == encounter,
                    )
                )
                adjudicated = {p.payer_id for p in payments}
                unbilled = sum(
                    cents
                    for payer_id, cents in session.execute(
                        select(Posting.payer_id, total)
                        .where(
                            Posting.account_id == accounts[AccountCode.AR_INSURANCE.value],
                            Posting.claim_id == encounter,
                        )
                        .group_by(Posting.payer_id)
                    )
                    if payer_id not in adjudicated
                )
                assert patient + unbilled == _pr_cents(last), claim.public_id
                if last is secondary:
                    assert unbilled == 0 and patient == _pr_cents(secondary)
    finally:
        engine.dispose()
