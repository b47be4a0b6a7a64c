"""Field-level encryption: ciphertext at rest, binding to row and column, blind indexes, rotation."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import StatementError

from claims_server.app import state
from claims_server.models import EdiFile, EdiFileKind, FileDirection, Patient
from claims_server.models.encrypted import PlaintextWriteError
from claims_server.security.fields import DecryptionError
from claims_server.security.keys import master_key_provider
from claims_server.security.rotation import rotate_data_key
from claims_server.security.search import find_patients_by_member_id, find_patients_by_name_dob
from tests.integration.security import factories


@pytest.fixture
def two_patients(session):
    pr = factories.practice(session)
    a = factories.patient(
        session, pr.id, 1, last_name="Alvarez", first_name="Ana", birth_date=date(1980, 2, 29)
    )
    b = factories.patient(session, pr.id, 2, last_name="Brown", first_name="Bo")
    session.commit()
    return a.id, b.id


def _raw(session, column: str, patient_id: int):
    return session.execute(text(f"SELECT {column} FROM patients WHERE id = :id"), {"id": patient_id}).scalar()


def test_phi_is_ciphertext_in_the_database_and_plain_through_the_orm(session, two_patients):
    a_id, _ = two_patients
    stored = _raw(session, "last_name", a_id)
    assert stored.startswith("enc1:") and "Alvarez" not in stored
    assert _raw(session, "birth_date", a_id).startswith("enc1:")
    session.expire_all()
    patient = session.get(Patient, a_id)
    assert (patient.last_name, patient.first_name, patient.birth_date) == (
        "Alvarez",
        "Ana",
        date(1980, 2, 29),
    )


def test_same_value_encrypts_differently_each_time(session, two_patients):
    a_id, b_id = two_patients
    a, b = session.get(Patient, a_id), session.get(Patient, b_id)
    a.city = b.city = "Same City"
    session.commit()
    assert _raw(session, "city", a_id) != _raw(session, "city", b_id)


@pytest.mark.parametrize(
    ("source", "target"),
    [("last_name", "last_name"), ("first_name", "last_name"), ("last_name", "city")],
    ids=["other-row-same-column", "same-row-other-column", "other-row-other-column"],
)
def test_ciphertext_moved_to_another_row_or_column_is_refused(session, two_patients, source, target):
    a_id, b_id = two_patients
    moved_to = b_id if source == target else (a_id if target != "city" else b_id)
    stolen = _raw(session, source, a_id)
    session.execute(text(f"UPDATE patients SET {target} = :v WHERE id = :id"), {"v": stolen, "id": moved_to})
    session.commit()
    session.expire_all()
    with pytest.raises(DecryptionError, match=f"patients.{target}") as info:
        session.get(Patient, moved_to)
    assert "Alvarez" not in str(info.value)


def test_every_flipped_bit_of_a_ciphertext_is_detected(session, two_patients):
    a_id, _ = two_patients
    stored = _raw(session, "last_name", a_id)
    prefix, body = stored.rsplit(":", 1)
    import base64

    raw = bytearray(base64.urlsafe_b64decode(body))
    for position in range(0, len(raw) * 8, 7):
        flipped = bytearray(raw)
        flipped[position // 8] ^= 1 << (position % 8)
        value = prefix + ":" + base64.urlsafe_b64encode(bytes(flipped)).decode()
        session.execute(text("UPDATE patients SET last_name = :v WHERE id = :id"), {"v": value, "id": a_id})
        session.expire_all()
        with pytest.raises(DecryptionError):
            session.get(Patient, a_id)
        session.rollback()


def test_plain_values_cannot_reach_an_encrypted_column_through_core(session, two_patients):
    with pytest.raises(StatementError) as info:
        session.execute(update(Patient).where(Patient.id == two_patients[0]).values(last_name="Plain"))
    assert isinstance(info.value.orig, PlaintextWriteError)
    session.rollback()
    with pytest.raises(StatementError):
        session.execute(select(Patient).where(Patient.last_name == "Alvarez")).all()
    session.rollback()
    with pytest.raises(StatementError):
        session.execute(insert(Patient).values(practice_id=1, account_number="X", last_name="Plain"))


def test_raw_edi_files_are_encrypted_and_bound_to_their_row(session):
    content = b"ISA*00*          *00*          *ZZ*SENDER*ZZ*RECEIVER*PATIENT CANARY~"
    f = EdiFile(
        direction=FileDirection.INBOUND,
        kind=EdiFileKind.REMITTANCE_835,
        sha256="0" * 64,
        size_bytes=len(content),
        stored_name="x.x12",
        content=content,
    )
    session.add(f)
    session.commit()
    stored = session.execute(text("SELECT content FROM edi_files WHERE id = :id"), {"id": f.id}).scalar()
    assert bytes(stored).startswith(b"ENC1") and b"CANARY" not in bytes(stored)
    session.expire_all()
    assert session.get(EdiFile, f.id).content == content


def test_blind_index_finds_patients_by_member_id_and_by_name_and_birth_date(session, two_patients):
    a_id, _b_id = two_patients
    payer = factories.payer(session)
    factories.coverage(session, a_id, payer.id, "XYZ123-45")
    session.commit()
    assert [p.id for p in find_patients_by_member_id(session, " xyz 12345 ")] == [a_id]
    assert find_patients_by_member_id(session, "XYZ123-46") == []
    assert [p.id for p in find_patients_by_name_dob(session, "  ALVAREZ", "ana ", date(1980, 2, 29))] == [
        a_id
    ]
    assert find_patients_by_name_dob(session, "Alvarez", "Ana", date(1980, 3, 1)) == []
    # The index follows changes of its sources.
    patient = session.get(Patient, a_id)
    patient.last_name = "Alvarez-Diaz"
    session.commit()
    assert find_patients_by_name_dob(session, "Alvarez", "Ana", date(1980, 2, 29)) == []
    assert [p.id for p in find_patients_by_name_dob(session, "alvarez-diaz", "Ana", date(1980, 2, 29))] == [
        a_id
    ]
    stored = session.execute(
        text("SELECT name_dob_index FROM patients WHERE id = :id"), {"id": a_id}
    ).scalar()
    assert len(stored) == 64 and "alvarez" not in stored


def test_key_rotation_reencrypts_everything_and_old_data_stays_readable(app, session, two_patients):
    a_id, _b_id = two_patients
    before = _raw(session, "last_name", a_id)
    old_key = before.split(":")[1]
    session.close()
    engine = state(app).engine
    seen: list[tuple[str, int, int]] = []
    report = rotate_data_key(
        engine,
        master_key_provider(state(app).settings),
        batch_size=1,
        progress=lambda t, d, n: seen.append((t, d, n)),
    )
    assert report.key_id != old_key
    assert report.rows_updated["patients"] == 2
    assert ("patients", 2, 2) in seen
    after = _raw(session, "last_name", a_id)
    assert after.split(":")[1] == report.key_id
    session.expire_all()
    assert session.get(Patient, a_id).last_name == "Alvarez"
    # Resuming finds nothing left to do.
    again = rotate_data_key(engine, master_key_provider(state(app).settings), resume=True)
    assert again.key_id == report.key_id and again.values_reencrypted == 0
