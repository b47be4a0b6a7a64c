"""The schema's own rules, checked against the real databases (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import Float, Numeric, delete, func, inspect, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from claims_server import migrate
from claims_server.db import make_engine
from claims_server.models import (
    RECEIVABLE_ACCOUNTS,
    AccountCode,
    Adjustment,
    AdjustmentGroup,
    Claim,
    ClaimFilingIndicator,
    ClaimState,
    ClearinghouseRoute,
    Coverage,
    EdiFile,
    EdiFileKind,
    FileDirection,
    Interchange,
    JournalEntry,
    JournalEventType,
    Patient,
    Payer,
    Posting,
    Practice,
    Remittance,
    ServiceLine,
    TransportKind,
    balance_select,
    ensure_standard_accounts,
)
from tests.services import fresh_postgres_database


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A migrated database of each backend, shared by the module's tests."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('models') / 'claims.sqlite3'}"
        migrate.upgrade(url)
        eng = make_engine(url)
        yield eng
        eng.dispose()
        return
    with fresh_postgres_database() as url:
        migrate.upgrade(url)
        eng = make_engine(url)
        yield eng
        eng.dispose()


@pytest.fixture
def db_session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test, leaving the database empty."""
    with Session(engine) as s:
        yield s
        s.rollback()


def _route(session: Session, name: str = "Test route") -> ClearinghouseRoute:
    route = ClearinghouseRoute(
        name=name,
        transport=TransportKind.FOLDER,
        sender_id="SUBMITTER01",
        receiver_id="RECEIVER01",
        application_sender_code="SUBMITTER01",
        application_receiver_code="RECEIVER01",
    )
    session.add(route)
    session.flush()
    return route


def _claim(session: Session, pcn: str = "PCN0001", *, lines: int = 2) -> Claim:
    """A minimal but complete claim graph: practice, patient, payer, coverage, claim, lines."""
    practice = session.scalar(select(Practice).where(Practice.npi == "1234567893"))
    if practice is None:
        practice = Practice(
            name="Test Practice",
            npi="1234567893",
            tax_id="930000017",
            address_line1="1 Test Street",
            city="Springfield",
            state="IL",
            zip_code="627010001",
            submitter_id="SUBMITTER01",
        )
        session.add(practice)
        session.flush()
    payer = Payer(
        name=f"Payer {pcn}", payer_id=f"P{pcn}", claim_filing_indicator=ClaimFilingIndicator.COMMERCIAL
    )
    patient = Patient(
        practice_id=practice.id,
        account_number=f"ACCT-{pcn}",
        last_name="Synthetic",
        first_name="Pat",
        birth_date=date(1980, 2, 29),
        sex="F",
    )
    session.add_all([payer, patient])
    session.flush()
    coverage = Coverage(
        patient_id=patient.id,
        payer_id=payer.id,
        coverage_order=1,
        member_id="M123456789",
        effective_start=date(2024, 1, 1),
    )
    session.add(coverage)
    session.flush()
    claim = Claim(
        practice_id=practice.id,
        patient_id=patient.id,
        coverage_id=coverage.id,
        patient_control_number=pcn,
        place_of_service="11",
        total_charge_cents=15000 * lines,
    )
    for n in range(1, lines + 1):
        claim.service_lines.append(
            ServiceLine(
                line_number=n,
                line_control_number=f"{pcn}-{n}",
                procedure_code="99213",
                charge_cents=15000,
                units="1",
                service_date_from=date(2025, 3, 3),
            )
        )
    session.add(claim)
    session.flush()
    return claim


def test_every_claim_state_passes_the_check_and_an_unknown_one_is_refused(db_session: Session) -> None:
    claim = _claim(db_session)
    for state in ClaimState:
        claim.state = state
        db_session.flush()
    with pytest.raises(IntegrityError), db_session.begin_nested():
        db_session.execute(update(Claim).where(Claim.id == claim.id).values(state="lost_in_the_mail"))
    with pytest.raises(IntegrityError), db_session.begin_nested():
        db_session.execute(text("UPDATE claims SET state = 'DRAFT' WHERE id = :id"), {"id": claim.id})


def test_enum_columns_load_as_enum_members(db_session: Session) -> None:
    claim = _claim(db_session)
    claim.state = ClaimState.READY
    db_session.flush()
    db_session.expire_all()
    reloaded = db_session.get(Claim, claim.id)
    assert reloaded is not None
    assert reloaded.state is ClaimState.READY
    assert db_session.scalar(text("SELECT state FROM claims WHERE id = :id"), {"id": claim.id}) == "ready"


def test_duplicate_patient_control_number_is_refused(db_session: Session) -> None:
    _claim(db_session, "PCN-DUP")
    with pytest.raises(IntegrityError), db_session.begin_nested():
        first = db_session.scalar(select(Claim).where(Claim.patient_control_number == "PCN-DUP"))
        assert first is not None
        db_session.add(
            Claim(
                practice_id=first.practice_id,
                patient_id=first.patient_id,
                coverage_id=first.coverage_id,
                patient_control_number="PCN-DUP",
            )
        )
        db_session.flush()


def test_duplicate_line_control_number_within_a_claim_is_refused(db_session: Session) -> None:
    claim = _claim(db_session, lines=1)
    with pytest.raises(IntegrityError), db_session.begin_nested():
        claim.service_lines.append(
            ServiceLine(
                line_number=2,
                line_control_number=claim.service_lines[0].line_control_number,
                procedure_code="36415",
                charge_cents=1000,
                service_date_from=date(2025, 3, 3),
            )
        )
        db_session.flush()


def test_duplicate_journal_idempotency_key_is_refused(db_session: Session) -> None:
    accounts = ensure_standard_accounts(db_session)
    claim = _claim(db_session)

    def entry() -> JournalEntry:
        return JournalEntry(
            event_type=JournalEventType.CHARGE,
            idempotency_key=f"charge:claim:{claim.id}",
            effective_date=date(2025, 3, 3),
            claim_id=claim.id,
            postings=[
                Posting(
                    account_id=accounts[AccountCode.AR_INSURANCE].id, amount_cents=30000, claim_id=claim.id
                ),
                Posting(
                    account_id=accounts[AccountCode.GROSS_CHARGES].id, amount_cents=-30000, claim_id=claim.id
                ),
            ],
        )

    db_session.add(entry())
    db_session.flush()
    with pytest.raises(IntegrityError), db_session.begin_nested():
        db_session.add(entry())
        db_session.flush()
    assert db_session.scalar(select(func.count()).select_from(JournalEntry)) == 1


def test_deleting_a_claim_deletes_its_service_lines(db_session: Session) -> None:
    orm_claim = _claim(db_session, "PCN-ORM", lines=3)
    sql_claim = _claim(db_session, "PCN-SQL", lines=2)
    kept = _claim(db_session, "PCN-KEEP", lines=1)

    db_session.delete(orm_claim)  # ORM cascade
    db_session.flush()
    db_session.execute(delete(Claim).where(Claim.id == sql_claim.id))  # ON DELETE CASCADE in the database
    db_session.expire_all()

    remaining = db_session.scalars(select(ServiceLine.claim_id)).all()
    assert remaining == [kept.id]


def test_service_line_needs_an_existing_claim(db_session: Session) -> None:
    with pytest.raises(IntegrityError), db_session.begin_nested():
        db_session.add(
            ServiceLine(
                claim_id=987654,
                line_number=1,
                line_control_number="X-1",
                procedure_code="99213",
                charge_cents=100,
                service_date_from=date(2025, 1, 2),
            )
        )
        db_session.flush()


def test_a_claim_with_ledger_postings_cannot_be_deleted(db_session: Session) -> None:
    accounts = ensure_standard_accounts(db_session)
    claim = _claim(db_session, lines=1)
    line = claim.service_lines[0]
    db_session.add(
        JournalEntry(
            event_type=JournalEventType.CHARGE,
            idempotency_key="charge:pinned",
            effective_date=date(2025, 3, 3),
            postings=[
                Posting(
                    account_id=accounts[AccountCode.AR_INSURANCE].id,
                    amount_cents=15000,
                    claim_id=claim.id,
                    service_line_id=line.id,
                ),
                Posting(
                    account_id=accounts[AccountCode.GROSS_CHARGES].id,
                    amount_cents=-15000,
                    claim_id=claim.id,
                    service_line_id=line.id,
                ),
            ],
        )
    )
    db_session.flush()
    with pytest.raises(IntegrityError), db_session.begin_nested():
        db_session.execute(delete(Claim).where(Claim.id == claim.id))


def test_receivable_balance_is_the_sum_of_postings(db_session: Session) -> None:
    accounts = ensure_standard_accounts(db_session)
    ar_ins = accounts[AccountCode.AR_INSURANCE].id
    ar_pat = accounts[AccountCode.AR_PATIENT].id
    claim = _claim(db_session, "PCN-BAL", lines=2)
    other = _claim(db_session, "PCN-OTHER", lines=1)
    payer_id = claim.coverage.payer_id

    def post(key: str, event: JournalEventType, *legs: tuple[int, int, int]) -> JournalEntry:
        entry = JournalEntry(
            event_type=event,
            idempotency_key=key,
            effective_date=date(2025, 4, 1),
            postings=[
                Posting(account_id=account, amount_cents=cents, claim_id=claim_id, payer_id=payer_id)
                for account, cents, claim_id in legs
            ],
        )
        db_session.add(entry)
        db_session.flush()
        return entry

    gross = accounts[AccountCode.GROSS_CHARGES].id
    cash = accounts[AccountCode.CASH_CLEARING].id
    contractual = accounts[AccountCode.CONTRACTUAL_ADJUSTMENTS].id
    entries = [
        post("charge:bal", JournalEventType.CHARGE, (ar_ins, 30000, claim.id), (gross, -30000, claim.id)),
        post("charge:other", JournalEventType.CHARGE, (ar_ins, 15000, other.id), (gross, -15000, other.id)),
        # 835: paid 180.00, CO-45 75.00, PR-2 (coinsurance) 45.00 moves to the patient.
        post(
            "835:TRACE1:1",
            JournalEventType.INSURANCE_PAYMENT,
            (cash, 18000, claim.id),
            (contractual, 7500, claim.id),
            (ar_pat, 4500, claim.id),
            (ar_ins, -30000, claim.id),
        ),
    ]
    assert all(e.is_balanced() for e in entries)

    def balance(accounts_: tuple[str, ...], **dims: int) -> int:
        return db_session.scalar(balance_select(accounts_, **dims)) or 0

    assert balance(RECEIVABLE_ACCOUNTS, claim_id=claim.id) == 4500
    assert balance((AccountCode.AR_INSURANCE,), claim_id=claim.id) == 0
    assert balance((AccountCode.AR_PATIENT,), claim_id=claim.id) == 4500
    assert balance(RECEIVABLE_ACCOUNTS, claim_id=other.id) == 15000
    assert balance((AccountCode.CASH_CLEARING,)) == 18000
    # The whole ledger nets to zero because every entry does.
    assert db_session.scalar(select(func.sum(Posting.amount_cents))) == 0
    with pytest.raises(ValueError, match="not a posting dimension"):
        balance_select(RECEIVABLE_ACCOUNTS, claim=claim.id)


def test_unbalanced_entry_is_detected_and_zero_postings_refused(db_session: Session) -> None:
    accounts = ensure_standard_accounts(db_session)
    lopsided = JournalEntry(
        event_type=JournalEventType.WRITE_OFF,
        idempotency_key="writeoff:lopsided",
        effective_date=date(2025, 5, 1),
        postings=[
            Posting(account_id=accounts[AccountCode.WRITE_OFFS].id, amount_cents=500),
            Posting(account_id=accounts[AccountCode.AR_PATIENT].id, amount_cents=-499),
        ],
    )
    assert not lopsided.is_balanced()
    assert lopsided.total_cents() == 1
    assert not JournalEntry(postings=[]).is_balanced()
    with pytest.raises(IntegrityError), db_session.begin_nested():
        db_session.add(
            JournalEntry(
                event_type=JournalEventType.WRITE_OFF,
                idempotency_key="writeoff:zero",
                effective_date=date(2025, 5, 1),
                postings=[Posting(account_id=accounts[AccountCode.WRITE_OFFS].id, amount_cents=0)],
            )
        )
        db_session.flush()


def test_same_payment_trace_cannot_be_recorded_twice(db_session: Session) -> None:
    def remittance(sha: str) -> Remittance:
        edi_file = EdiFile(
            direction=FileDirection.INBOUND,
            kind=EdiFileKind.REMITTANCE_835,
            sha256=sha * 64,
            size_bytes=1200,
            stored_name=f"{sha}.x12",
        )
        return Remittance(
            edi_file=edi_file,
            handling_code="I",
            payment_amount_cents=18000,
            payment_method="ACH",
            trace_number="EFT0001",
            payer_identifier="1930000017",
        )

    db_session.add(remittance("a"))
    db_session.flush()
    with pytest.raises(IntegrityError), db_session.begin_nested():
        db_session.add(remittance("b"))
        db_session.flush()


def test_same_file_bytes_cannot_be_stored_twice_in_one_direction(db_session: Session) -> None:
    def edi_file(direction: FileDirection) -> EdiFile:
        return EdiFile(
            direction=direction, kind=EdiFileKind.ACK_999, sha256="c" * 64, size_bytes=10, stored_name="f.x12"
        )

    db_session.add_all([edi_file(FileDirection.INBOUND), edi_file(FileDirection.OUTBOUND)])
    db_session.flush()
    with pytest.raises(IntegrityError), db_session.begin_nested():
        db_session.add(edi_file(FileDirection.INBOUND))
        db_session.flush()


def test_interchange_control_number_is_never_reused_on_a_route(db_session: Session) -> None:
    first, second = _route(db_session, "Route A"), _route(db_session, "Route B")
    db_session.add_all([Interchange(route_id=first.id, isa13=1), Interchange(route_id=second.id, isa13=1)])
    db_session.flush()
    with pytest.raises(IntegrityError), db_session.begin_nested():
        db_session.add(Interchange(route_id=first.id, isa13=1))
        db_session.flush()


def test_adjustment_belongs_to_exactly_one_level(db_session: Session) -> None:
    with pytest.raises(IntegrityError), db_session.begin_nested():
        db_session.add(Adjustment(group_code=AdjustmentGroup.CONTRACTUAL, reason_code="45", amount_cents=100))
        db_session.flush()


def test_timestamps_are_aware_utc_and_naive_ones_are_refused(db_session: Session) -> None:
    claim = _claim(db_session)
    eastern = timezone(timedelta(hours=-5))
    claim.submitted_at = datetime(2025, 3, 3, 18, 30, tzinfo=eastern)
    db_session.flush()
    db_session.expire_all()
    reloaded = db_session.get(Claim, claim.id)
    assert reloaded is not None
    assert reloaded.submitted_at == datetime(2025, 3, 3, 23, 30, tzinfo=UTC)
    assert reloaded.submitted_at.utcoffset() == timedelta(0)
    assert reloaded.created_at.tzinfo is not None
    reloaded.submitted_at = datetime(2025, 3, 3, 18, 30)
    with pytest.raises(StatementError, match="timezone-aware"), db_session.begin_nested():
        db_session.flush()


def test_birth_date_is_a_date_in_python_and_ciphertext_in_the_database(db_session: Session) -> None:
    claim = _claim(db_session)
    patient_id = claim.patient_id
    db_session.expire_all()
    patient = db_session.get(Patient, patient_id)
    assert patient is not None
    assert patient.birth_date == date(1980, 2, 29)
    stored = db_session.scalar(text("SELECT birth_date FROM patients WHERE id = :id"), {"id": patient_id})
    assert stored.startswith("enc1:") and "1980" not in stored  # encrypted field by field


def test_stale_claim_update_is_refused_by_the_version_counter(engine: Engine) -> None:
    with Session(engine) as setup:
        claim = _claim(setup, "PCN-VERSION")
        setup.commit()
        claim_id = claim.id
    try:
        with Session(engine) as first, Session(engine) as second:
            a = first.get(Claim, claim_id)
            b = second.get(Claim, claim_id)
            assert a is not None and b is not None and a.version == b.version == 1
            a.state = ClaimState.READY
            first.commit()
            b.state = ClaimState.VOIDED
            with pytest.raises(StaleDataError):
                second.commit()
        with Session(engine) as check:
            final = check.get(Claim, claim_id)
            assert final is not None
            assert final.state is ClaimState.READY and final.version == 2
    finally:
        with Session(engine) as cleanup:
            claim = cleanup.get(Claim, claim_id)
            assert claim is not None
            coverage, patient = claim.coverage, claim.patient
            payer = coverage.payer
            practice = claim.practice
            cleanup.delete(claim)
            cleanup.flush()
            # The audit trail pins the patient (its rows are append-only): lift that to clean up.
            from claims_server.security.immutability import ledger_maintenance

            with ledger_maintenance(cleanup.connection()) as conn:
                conn.execute(text("DELETE FROM audit_events"))
            for obj in (coverage, patient, payer, practice):
                cleanup.delete(obj)
            cleanup.commit()


def test_public_ids_are_random_hex_and_unique(db_session: Session) -> None:
    claims = [_claim(db_session, f"PCN-PUB{n}") for n in range(3)]
    ids = {c.public_id for c in claims}
    assert len(ids) == 3
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert not any(str(c.id) == c.public_id for c in claims)


def test_schema_has_no_float_or_numeric_columns(engine: Engine) -> None:
    inspector = inspect(engine)
    offenders = [
        f"{table}.{col['name']}"
        for table in inspector.get_table_names()
        for col in inspector.get_columns(table)
        if isinstance(col["type"], Float | Numeric)
    ]
    assert offenders == []
    money = [
        (table, col)
        for table in inspector.get_table_names()
        for col in inspector.get_columns(table)
        if col["name"].endswith("_cents")
    ]
    assert len(money) >= 20
    assert all("INT" in str(col["type"]).upper() for _, col in money)
