"""Key rotation: re-encrypt every encrypted value under the newest data key, online and resumable.

``rotate_data_key`` adds a new active data key (unless ``resume``), then walks each
table with encrypted columns in id order, in batches of ``batch_size`` rows, each
batch its own short transaction: decrypt with whichever key a value names, encrypt
under the active key, UPDATE. The application keeps running (old and new keys both
decrypt), a crash loses at most one batch of work, and running it again (``--resume``)
skips rows already under the active key. Progress goes to ``progress(table, done, total)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Engine

from claims_server.db import Base
from claims_server.models.encrypted import EncryptedAttr, Sealed, decode_plain, encrypted_attributes
from claims_server.models.security import AuditAction, KeyPurpose
from claims_server.security.audit import audit_event
from claims_server.security.fields import BLIND_INDEXES, FieldCipher, registered_cipher
from claims_server.security.keys import KeyProvider, add_key, load_keyring
from claims_server.security.principal import acting_as, system_principal

Progress = Callable[[str, int, int], None]


@dataclass
class RotationReport:
    key_id: str
    rows_updated: dict[str, int] = field(default_factory=dict)
    values_reencrypted: int = 0


def _encrypted_tables() -> list[tuple[type, tuple[EncryptedAttr, ...]]]:
    out = []
    for mapper in Base.registry.mappers:
        attrs = encrypted_attributes(mapper)
        if attrs:
            out.append((mapper.class_, attrs))
    return sorted(out, key=lambda item: item[0].__tablename__)


def _blind_indexes(
    cipher: FieldCipher,
    table: str,
    attrs: tuple[EncryptedAttr, ...],
    cols: list[Any],
    row: Any,
    clear: dict[str, object],
) -> dict[str, str | None]:
    """The blind indexes (``BLIND_INDEXES``) of a row whose ``clear`` values are being sealed.

    A column that became encrypted in a later revision (``0009_claim_notes``: the patient's
    account number) has no index for its clear values yet: ``--seal-clear`` fills it.
    """
    out: dict[str, str | None] = {}
    for index_attr, sources, compute in BLIND_INDEXES.get(table, ()):
        if not clear.keys() & set(sources):
            continue
        plains = []
        for source in sources:
            if source in clear:
                plains.append(clear[source])
                continue
            attr, col = next((a, c) for a, c in zip(attrs, cols, strict=True) if a.key == source)
            stored = row._mapping[col]
            raw = stored.stored if isinstance(stored, Sealed) else stored
            plains.append(None if raw is None else cipher.open(attr, row.public_id, raw))
        out[index_attr] = None if any(p is None for p in plains) else compute(cipher, *plains)
    return out


def rotate_data_key(
    engine: Engine,
    provider: KeyProvider,
    *,
    resume: bool = False,
    batch_size: int = 1000,
    progress: Progress | None = None,
    seal_clear: bool = False,
) -> RotationReport:
    """Rotate the data key (see module docstring); returns what was re-encrypted.

    ``seal_clear`` also encrypts values still in clear text: a column that became encrypted
    in a later revision (``0003_phi_gaps``, ``0009_claim_notes``) keeps its older values in
    clear until then, and the blind index of such a column (``BLIND_INDEXES``) is computed
    from the clear value as it is sealed. Without it a clear value is an error, as on every
    read.
    """
    with engine.begin() as conn:
        if not resume:
            add_key(conn, provider, KeyPurpose.DATA)
        ring, _ = load_keyring(conn, provider, create_missing=True)
    cipher = registered_cipher(engine)
    if cipher is None:
        cipher = FieldCipher(ring, provider=provider)
    else:
        cipher.reload(ring)
    active = cipher.active_key_id
    report = RotationReport(active)
    for model, attrs in _encrypted_tables():
        table = model.__table__
        cols = [table.c[a.column] for a in attrs]
        with engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(table)).scalar_one()
        done = 0
        updated = 0
        last_id = 0
        while True:
            with engine.begin() as conn:
                rows = conn.execute(
                    select(table.c.id, table.c.public_id, *cols)
                    .where(table.c.id > last_id)
                    .order_by(table.c.id)
                    .limit(batch_size)
                ).all()
                if not rows:
                    break
                params = []
                for row in rows:
                    values: dict[str, object] = {}
                    clear: dict[str, object] = {}
                    for attr, col in zip(attrs, cols, strict=True):
                        stored = row._mapping[col]
                        if stored is None:
                            continue
                        raw = stored.stored if isinstance(stored, Sealed) else stored
                        if cipher.key_id_of(raw) == active:
                            continue
                        if seal_clear and cipher.key_id_of(raw) is None:
                            plain = decode_plain(attr.codec, raw if isinstance(raw, bytes) else raw.encode())
                            clear[attr.key] = plain
                        else:
                            plain = cipher.open(attr, row.public_id, raw)
                        values[attr.column] = cipher.seal(attr, row.public_id, plain, key_id=active)
                    report.values_reencrypted += len(values)
                    if clear:
                        values.update(_blind_indexes(cipher, table.name, attrs, cols, row, clear))
                    if values:
                        params.append((row.id, values))
                # One executemany per set of columns: values of a row that are NULL or already
                # under the active key are left out of its UPDATE.
                groups: dict[tuple[str, ...], list[dict[str, object]]] = {}
                for row_id, values in params:
                    names = tuple(sorted(values))
                    groups.setdefault(names, []).append(
                        {"row_id_": row_id, **{f"v_{n}": values[n] for n in names}}
                    )
                for names, batch in groups.items():
                    stmt = (
                        update(table)
                        .where(table.c.id == bindparam("row_id_"))
                        .values({n: bindparam(f"v_{n}") for n in names})
                    )
                    conn.execute(stmt, batch)
                updated += len(params)
                last_id = rows[-1].id
                done += len(rows)
            if progress:
                progress(table.name, done, total)
        report.rows_updated[table.name] = updated
    from claims_server.db import make_session_factory

    with make_session_factory(engine)() as session, acting_as(system_principal("cli:keys-rotate")):
        audit_event(
            session,
            action=AuditAction.EXECUTE,
            event_type="key.rotate",
            entity_type="encryption_key",
            entity_id=active,
            details={"values": report.values_reencrypted, "resumed": resume},
        )
        session.commit()
    return report
