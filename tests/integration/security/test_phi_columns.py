"""Diagnosis codes, work-item comments and resolutions, appeal letters: encrypted and bound like
every other PHI column; a key rotated by another process is picked up; revision 0003 gives
existing diagnosis and comment rows a public id."""

from __future__ import annotations

import os
import sqlite3
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from claims_server import migrate
from claims_server.app import state
from claims_server.claims.services import create_claim_from_json
from claims_server.config import load_settings
from claims_server.db import make_engine, make_session_factory
from claims_server.models import (
    Appeal,
    Claim,
    ClaimDiagnosis,
    Coverage,
    Practice,
    WorkItem,
    WorkItemComment,
    WorkQueue,
)
from claims_server.models.common import phi_columns
from claims_server.security.fields import DecryptionError, FieldCipher
from claims_server.security.keys import load_keyring, master_key_provider
from claims_server.security.rotation import rotate_data_key
from tests.integration.claims.support import claim_json, seed


@pytest.fixture
def claim_id(session) -> int:
    ids = seed(session)
    claim = create_claim_from_json(session, claim_json(ids, diagnoses=["E11.9", "I10"])).claim
    session.commit()
    return claim.id


def _raw(session, sql: str, **params):
    return session.execute(text(sql), params).scalars().all()


def test_the_issue_s_phi_columns_are_all_encrypted():
    import claims_server.models as models

    encrypted = set(phi_columns(list(models.Base.metadata.sorted_tables)))
    for column in [
        ("patients", "last_name"),
        ("patients", "birth_date"),
        ("patients", "address_line1"),
        ("patients", "phone"),
        ("patients", "email"),
        ("coverages", "member_id"),
        ("coverages", "subscriber_last_name"),
        ("encounters", "notes"),
        ("claim_diagnoses", "code"),
        ("work_item_comments", "body"),
        ("work_items", "resolution"),
        ("appeals", "letter_text"),
        ("edi_files", "content"),
        ("claim_notes", "note"),
        ("patients", "account_number"),
    ]:
        assert column in encrypted, column
        table = models.Base.metadata.tables[column[0]]
        assert type(table.c[column[1]].type).__name__.startswith("Encrypted"), column


def test_diagnosis_codes_are_ciphertext_at_rest_and_plain_through_the_orm(session, claim_id):
    stored = _raw(
        session, "SELECT code FROM claim_diagnoses WHERE claim_id = :c ORDER BY position", c=claim_id
    )
    assert len(stored) == 2 and all(s.startswith("enc1:") for s in stored)
    assert not any("E119" in s or "I10" in s for s in stored)
    session.expire_all()
    assert [d.code for d in session.get(Claim, claim_id).diagnoses] == ["E119", "I10"]


def test_a_diagnosis_moved_to_another_row_is_refused(session, claim_id):
    rows = session.execute(
        text("SELECT id, code FROM claim_diagnoses WHERE claim_id = :c ORDER BY position"), {"c": claim_id}
    ).all()
    # Swap the principal and the secondary diagnosis: each now sits in another row.
    for (row_id, _), (_, code) in zip(rows, reversed(rows), strict=True):
        session.execute(text("UPDATE claim_diagnoses SET code = :v WHERE id = :i"), {"v": code, "i": row_id})
    session.commit()
    session.expire_all()
    with pytest.raises(DecryptionError, match=r"claim_diagnoses\.code"):
        session.scalars(select(ClaimDiagnosis).where(ClaimDiagnosis.claim_id == claim_id)).all()


def test_comments_resolutions_and_letters_are_ciphertext_at_rest(session, claim_id):
    item = WorkItem(queue=WorkQueue.DENIED, claim_id=claim_id, resolution="appealed: spoke to Ms Example")
    item.comments.append(WorkItemComment(body="Patient Example says the card changed"))
    appeal = Appeal(claim_id=claim_id, deadline=date(2027, 1, 1), letter_text="Re: Example, born 1970")
    session.add_all([item, appeal])
    session.commit()
    for sql in (
        "SELECT body FROM work_item_comments",
        "SELECT resolution FROM work_items",
        "SELECT letter_text FROM appeals",
    ):
        values = _raw(session, sql)
        assert values and all(v.startswith("enc1:") and "Example" not in v for v in values), sql
    session.expire_all()
    assert session.get(WorkItem, item.id).comments[0].body == "Patient Example says the card changed"
    assert session.get(Appeal, appeal.id).letter_text == "Re: Example, born 1970"


def test_a_key_rotated_by_another_process_is_loaded_on_first_use(app, session, claim_id):
    """Another process (the CLI) rotates; this process's cipher meets the new key id and reloads."""
    engine = state(app).engine
    provider = master_key_provider(state(app).settings)
    # The "other process": its own cipher, so this app's cipher is not told about the new key.
    with engine.begin() as conn:
        ring, _ = load_keyring(conn, provider, create_missing=False)
    other = FieldCipher(ring, provider=provider)
    from claims_server.security import fields

    mine = fields.registered_cipher(engine)
    fields.register_cipher(engine, other)
    try:
        report = rotate_data_key(engine, provider, batch_size=50)
    finally:
        fields.register_cipher(engine, mine)
    assert mine.active_key_id != report.key_id
    session.expire_all()
    assert [d.code for d in session.get(Claim, claim_id).diagnoses] == ["E119", "I10"]
    assert report.key_id in mine._aead


def _add_later_columns(engine) -> list[tuple[str, str]]:
    """Add (nullable, SQLite) each model column a later revision adds to a table that exists."""
    from sqlalchemy import inspect

    from claims_server.db import Base

    inspector = inspect(engine)
    added = []
    with engine.begin() as conn:
        for table in Base.metadata.sorted_tables:
            if not inspector.has_table(table.name):
                continue
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present:
                    kind = column.type.compile(engine.dialect)
                    conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")
                    added.append((table.name, column.name))
    return added


def test_revision_0003_gives_existing_rows_a_public_id(tmp_path: Path):
    path = tmp_path / "m.sqlite3"
    url = f"sqlite:///{path}"
    migrate.upgrade(url, "0002_security")
    # A claim and a work item as before the revision (their tables did not change), then a
    # diagnosis and a comment in the old shape, written raw.
    engine = make_engine(url)
    try:
        later_columns = _add_later_columns(engine)  # today's ORM seeds the 0002 tables...
        with make_session_factory(engine)() as session:
            seed(session)
            patient, coverage = session.execute(select(Coverage.patient_id, Coverage.id).limit(1)).one()
            practice = session.scalar(select(Practice.id))
        with engine.begin() as conn:
            for table, column in later_columns:  # ... which then lose what later revisions add
                conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
        with engine.begin() as conn:
            for n in (1, 2):
                conn.execute(
                    insert(Claim.__table__).values(
                        id=n,
                        practice_id=practice,
                        patient_id=patient,
                        coverage_id=coverage,
                        patient_control_number=f"PCN{n}",
                    )
                )
            conn.execute(insert(WorkItem.__table__).values(id=1, queue=WorkQueue.DENIED.value, claim_id=1))
    finally:
        engine.dispose()
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO claim_diagnoses (id, claim_id, position, code, qualifier) VALUES (?, 1, ?, ?, 'ABF')",
            [(1, 1, "I10"), (2, 2, "E119")],
        )
        conn.execute(
            "INSERT INTO work_item_comments (id, work_item_id, body, created_at) VALUES (1, 1, 'x', '2026-01-01')"
        )
    migrate.upgrade(url, "head")
    with sqlite3.connect(path) as conn:
        diagnosis_ids = [r[0] for r in conn.execute("SELECT public_id FROM claim_diagnoses")]
        comment_ids = [r[0] for r in conn.execute("SELECT public_id FROM work_item_comments")]
        columns = {r[1]: r for r in conn.execute("PRAGMA table_info(claim_diagnoses)")}
    assert len(set(diagnosis_ids)) == 2 and all(len(i) == 32 for i in diagnosis_ids + comment_ids)
    assert columns["public_id"][3] == 1  # NOT NULL
    assert columns["code"][2] == "VARCHAR(512)"
    with pytest.raises(sqlite3.IntegrityError), sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO claim_diagnoses (id, claim_id, position, code, qualifier, public_id) "
            "VALUES (3, 3, 1, 'I10', 'ABF', ?)",
            (diagnosis_ids[0],),
        )
    # Values written in clear before the revision are sealed by ``keys rotate --seal-clear``.
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session, pytest.raises(DecryptionError):
            session.scalars(select(ClaimDiagnosis)).all()
        rotate_data_key(engine, master_key_provider(load_settings()), seal_clear=True)
        with engine.connect() as conn:
            stored = [r[0] for r in conn.execute(text("SELECT code FROM claim_diagnoses"))]
        assert all(v.startswith("enc1:") for v in stored)
        with make_session_factory(engine)() as session:
            codes = sorted(d.code for d in session.scalars(select(ClaimDiagnosis)))
            assert codes == ["E119", "I10"]
            assert session.scalars(select(WorkItemComment)).one().body == "x"
    finally:
        engine.dispose()


def test_a_forked_child_never_reuses_the_parent_s_buffered_nonces():
    from claims_server.security import fields

    fields._refill()  # a full pool, as a busy parent has when it forks
    expected_next = fields._nonce_pool[-1]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its first nonce and leave at once
        os.write(write_end, fields._nonce())
        os._exit(0)
    os.close(write_end)
    child_nonce = os.read(read_end, 64)
    os.close(read_end)
    os.waitpid(pid, 0)
    assert len(child_nonce) == fields.NONCE
    assert child_nonce != expected_next
    assert fields._nonce() == expected_next
    assert len({fields._nonce() for _ in range(10_000)}) == 10_000
