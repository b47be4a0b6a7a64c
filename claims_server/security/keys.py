"""The key ring: data keys wrapped by a master key, behind an interface a KMS can implement.

HIPAA 164.312(a)(2)(iv) (encryption and decryption): every key that touches PHI is
random, 256-bit, stored only wrapped (``encryption_keys.wrapped_key``) and unwrapped
in memory by a ``KeyProvider``. The built-in provider is a local master key (from
``MASTER_KEY``, ``MASTER_KEY_FILE`` or, on the embedded default only, a file generated
under ``INSTANCE_PATH`` with mode 0600). A KMS or Vault transit provider implements the
same two methods (``wrap``/``unwrap``) and a ``name``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, insert, select

from claims_server.config import ConfigError, Settings
from claims_server.models.common import utcnow
from claims_server.models.security import EncryptionKey, KeyPurpose

log = logging.getLogger(__name__)

NONCE_BYTES = 12


class KeyRingError(RuntimeError):
    """The key ring cannot be read: wrong master key, missing key, corrupt record."""


class KeyProvider(Protocol):
    """Wraps and unwraps data keys. Implement this for a KMS or Vault."""

    name: str

    def wrap(self, key: bytes, context: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes: ...


class LocalMasterKeyProvider:
    """AES-256-GCM key wrapping under a 32-byte master key held by this process."""

    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("the master key must be 32 bytes")
        self._aead = AESGCM(master_key)
        # The fingerprint tells which master key wrapped a record, without revealing it.
        self.name = "local:" + hashlib.sha256(b"claims-server master key id" + master_key).hexdigest()[:16]

    def wrap(self, key: bytes, context: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, key, context)

    def unwrap(self, wrapped: bytes, context: bytes) -> bytes:
        try:
            return self._aead.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], context)
        except InvalidTag:
            raise KeyRingError("the master key does not unwrap this key (wrong MASTER_KEY?)") from None


_generated_logged: set[str] = set()


def master_key_provider(settings: Settings) -> LocalMasterKeyProvider:
    """The local provider for ``settings``: env key, key file, or a generated embedded key."""
    if settings.MASTER_KEY:
        return LocalMasterKeyProvider(base64.b64decode(settings.MASTER_KEY))
    if settings.MASTER_KEY_FILE:
        path = Path(settings.MASTER_KEY_FILE)
        try:
            raw = base64.b64decode(path.read_text().strip(), validate=True)
        except (OSError, ValueError):
            raise ConfigError("MASTER_KEY_FILE", f"cannot read a base64 key from {path}") from None
        if len(raw) != 32:
            raise ConfigError("MASTER_KEY_FILE", "must hold base64 of 32 bytes")
        return LocalMasterKeyProvider(raw)
    if settings.CLAIMS_ENV == "production":
        raise ConfigError(
            "MASTER_KEY", "MASTER_KEY or MASTER_KEY_FILE must be set when CLAIMS_ENV=production"
        )
    path = Path(settings.INSTANCE_PATH) / "master.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
        if str(path) not in _generated_logged:
            _generated_logged.add(str(path))
            log.warning(
                "generated a master key for the embedded default; set MASTER_KEY or MASTER_KEY_FILE "
                "in production",
                extra={"path": str(path)},
            )
    return LocalMasterKeyProvider(base64.b64decode(path.read_text().strip()))


def _context(key_id: str, purpose: str) -> bytes:
    return f"claims-server key ring\x1f{purpose}\x1f{key_id}".encode()


@dataclass
class KeyRing:
    """Unwrapped keys by id and purpose; the active key of each purpose is the newest."""

    keys: dict[str, bytes] = field(default_factory=dict)
    purposes: dict[str, str] = field(default_factory=dict)
    active: dict[str, str] = field(default_factory=dict)
    #: The blind-index key is the oldest one: every index in the table was built with it.
    blind_index_key_id: str | None = None

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise KeyRingError(f"unknown key id {key_id!r}") from None

    def active_key(self, purpose: KeyPurpose) -> tuple[str, bytes]:
        key_id = self.active[purpose.value]
        return key_id, self.keys[key_id]

    def signing_key(self) -> tuple[str, Ed25519PrivateKey]:
        key_id, raw = self.active_key(KeyPurpose.AUDIT_SIGNING)
        return key_id, Ed25519PrivateKey.from_private_bytes(raw)

    def verify_key(self, key_id: str) -> Ed25519PublicKey:
        if self.purposes.get(key_id) != KeyPurpose.AUDIT_SIGNING.value:
            raise KeyRingError(f"{key_id!r} is not an audit signing key")
        return Ed25519PrivateKey.from_private_bytes(self.keys[key_id]).public_key()


def new_key_id() -> str:
    return secrets.token_hex(4)


def _new_key_material(purpose: KeyPurpose) -> bytes:
    if purpose is KeyPurpose.AUDIT_SIGNING:
        from cryptography.hazmat.primitives import serialization

        return Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
    return secrets.token_bytes(32)


def add_key(connection: Connection, provider: KeyProvider, purpose: KeyPurpose) -> str:
    """Create, wrap and store a new key of ``purpose``; it becomes the active one."""
    key_id = new_key_id()
    wrapped = provider.wrap(_new_key_material(purpose), _context(key_id, purpose.value))
    connection.execute(
        insert(EncryptionKey.__table__).values(
            key_id=key_id,
            purpose=purpose.value,
            provider=provider.name,
            wrapped_key=base64.b64encode(wrapped).decode(),
            created_at=utcnow(),
        )
    )
    return key_id


def load_keyring(
    connection: Connection, provider: KeyProvider, *, create_missing: bool
) -> tuple[KeyRing, bool]:
    """Read and unwrap every key; create a first key for each purpose that has none.

    Returns the ring and whether keys were created (in ``connection``'s transaction).
    """
    table = EncryptionKey.__table__
    rows = connection.execute(
        select(table.c.key_id, table.c.purpose, table.c.wrapped_key, table.c.retired_at).order_by(table.c.id)
    ).all()
    created = False
    present = {r.purpose for r in rows}
    if create_missing and any(p.value not in present for p in KeyPurpose):
        for purpose in KeyPurpose:
            if purpose.value not in present:
                add_key(connection, provider, purpose)
                created = True
        rows = connection.execute(
            select(table.c.key_id, table.c.purpose, table.c.wrapped_key, table.c.retired_at).order_by(
                table.c.id
            )
        ).all()
    ring = KeyRing()
    for row in rows:
        ring.keys[row.key_id] = provider.unwrap(
            base64.b64decode(row.wrapped_key), _context(row.key_id, row.purpose)
        )
        ring.purposes[row.key_id] = row.purpose
        if row.retired_at is None:
            ring.active[row.purpose] = row.key_id
        if row.purpose == KeyPurpose.BLIND_INDEX.value and ring.blind_index_key_id is None:
            ring.blind_index_key_id = row.key_id
    missing = [p.value for p in KeyPurpose if p.value not in ring.active]
    if missing:
        raise KeyRingError(f"no active key for: {', '.join(missing)} (run the app once, or keys rotate)")
    return ring, created
