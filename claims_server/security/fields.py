"""Field-level encryption (AES-256-GCM) and blind indexes (HMAC-SHA256).

HIPAA 164.312(a)(2)(iv) and 164.312(c)(1) (integrity): each PHI value is encrypted
under the active data key with a fresh 96-bit nonce; the associated data is
``table | column | row public_id | key id``, so the GCM tag fails when a ciphertext
is moved to another row or column, or a bit of it changes.

Stored forms: text columns hold ``enc1:<key id>:<base64url(nonce | ciphertext | tag)>``;
binary columns hold ``b"ENC1" + <key id, 8 ASCII bytes> + nonce + ciphertext + tag``.

The cipher for a session is found by ``cipher_for``: the one the app registered for
the engine (``register_cipher``), else one built from the environment's settings (CLI,
workers, scripts), creating the first keys in the caller's own transaction.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import unicodedata
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, object_session
from sqlalchemy.orm.attributes import instance_state

from claims_server.models.common import new_public_id
from claims_server.models.encrypted import EncryptedAttr, Sealed, decode_plain, encode_plain
from claims_server.models.security import KeyPurpose
from claims_server.security.keys import KeyProvider, KeyRing, KeyRingError, load_keyring

TEXT_PREFIX = "enc1:"
BINARY_PREFIX = b"ENC1"
NONCE = 12
KEY_ID_LENGTH = 8


_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")

# Nonces: 96 random bits each, taken from a buffer refilled from os.urandom (one system
# call per 4,096 nonces instead of one per value). A forked child must never reuse its
# parent's buffered bytes (two processes would then encrypt under the same key and nonce),
# so the buffer is discarded in the child right after fork.
_NONCE_BATCH = 4096
_nonce_pool: list[bytes] = []


def _refill() -> None:
    raw = os.urandom(NONCE * _NONCE_BATCH)
    _nonce_pool[:] = [raw[i : i + NONCE] for i in range(0, len(raw), NONCE)]


def _nonce() -> bytes:
    """A fresh random 96-bit GCM nonce."""
    try:
        return _nonce_pool.pop()
    except IndexError:
        _refill()
        return _nonce_pool.pop()


os.register_at_fork(after_in_child=_nonce_pool.clear)


class DecryptionError(ValueError):
    """A stored value does not decrypt under its binding: tampered, moved, or a wrong key.

    The message names the table and column, never the value.
    """


class UnknownKeyError(DecryptionError):
    """A value names a key this process has not loaded (another process rotated keys)."""


@dataclass(frozen=True)
class Binding:
    """What a ciphertext is bound to."""

    table: str
    column: str
    row_id: str

    def aad(self, key_id: str) -> bytes:
        return f"{self.table}\x1f{self.column}\x1f{self.row_id}\x1f{key_id}".encode()


class FieldCipher:
    """Encrypts and decrypts field values with a key ring; ``enabled=False`` stores clear text."""

    def __init__(self, ring: KeyRing, *, enabled: bool = True, provider: KeyProvider | None = None) -> None:
        self.ring = ring
        self.enabled = enabled
        self.provider = provider
        self._aead: dict[str, AESGCM] = {}
        self.reload(ring)

    def reload(self, ring: KeyRing) -> None:
        """Use a new ring (after rotation): new active key, old keys still decrypt."""
        self.ring = ring
        self._aead = {
            kid: AESGCM(raw) for kid, raw in ring.keys.items() if ring.purposes[kid] == KeyPurpose.DATA.value
        }
        # The tail of the associated data per key: "| key id" (see Binding.aad).
        self._aad_suffix = {kid: f"\x1f{kid}".encode() for kid in self._aead}
        self.active_key_id = ring.active[KeyPurpose.DATA.value]
        bi = ring.blind_index_key_id
        if bi is None:
            raise KeyRingError("no blind-index key")
        self._blind_key = ring.keys[bi]

    def refresh(self, connection: Connection) -> bool:
        """Reload the key ring from the database (keys added by ``keys rotate`` elsewhere).

        Returns whether a provider was there to unwrap them; without one nothing changes.
        """
        if self.provider is None:
            return False
        ring, _ = load_keyring(connection, self.provider, create_missing=False)
        self.reload(ring)
        return True

    # --- raw values -------------------------------------------------------------------

    def encrypt(
        self, plain: bytes, binding: Binding, *, binary: bool, key_id: str | None = None
    ) -> str | bytes:
        key_id = key_id or self.active_key_id
        nonce = _nonce()
        sealed = nonce + self._aead[key_id].encrypt(nonce, plain, binding.aad(key_id))
        if binary:
            return BINARY_PREFIX + key_id.encode() + sealed
        return TEXT_PREFIX + key_id + ":" + base64.urlsafe_b64encode(sealed).decode()

    def decrypt(self, stored: str | bytes, binding: Binding) -> bytes:
        key_id, sealed = self._split(stored, binding)
        aead = self._aead.get(key_id)
        if aead is None:
            raise UnknownKeyError(f"{binding.table}.{binding.column}: encrypted under an unknown key")
        try:
            return aead.decrypt(sealed[:NONCE], sealed[NONCE:], binding.aad(key_id))
        except InvalidTag:
            raise DecryptionError(
                f"{binding.table}.{binding.column}: ciphertext does not belong to this row and column "
                "or was altered"
            ) from None

    def key_id_of(self, stored: str | bytes) -> str | None:
        """The key id a stored value was encrypted under; None for clear text."""
        if isinstance(stored, bytes):
            return stored[4 : 4 + KEY_ID_LENGTH].decode() if stored.startswith(BINARY_PREFIX) else None
        return (
            stored[len(TEXT_PREFIX) : len(TEXT_PREFIX) + KEY_ID_LENGTH]
            if stored.startswith(TEXT_PREFIX)
            else None
        )

    @staticmethod
    def _split(stored: str | bytes, binding: Binding) -> tuple[str, bytes]:
        try:
            if isinstance(stored, bytes):
                if not stored.startswith(BINARY_PREFIX):
                    raise ValueError
                return stored[4 : 4 + KEY_ID_LENGTH].decode(), stored[4 + KEY_ID_LENGTH :]
            if not stored.startswith(TEXT_PREFIX):
                raise ValueError
            key_id, _, body = stored[len(TEXT_PREFIX) :].partition(":")
            return key_id, base64.urlsafe_b64decode(body.encode())
        except (ValueError, UnicodeDecodeError):
            raise DecryptionError(f"{binding.table}.{binding.column}: not an encrypted value") from None

    # --- column values ----------------------------------------------------------------

    def seal(self, attr: EncryptedAttr, row_id: str, value: Any, *, key_id: str | None = None) -> Sealed:
        """The ``Sealed`` stored form of a plain column value."""
        codec = attr.codec
        if codec == "text" and type(value) is str:
            plain = value.encode("utf-8")
        else:
            plain = encode_plain(codec, value)
        if not self.enabled:
            return Sealed(plain if codec == "bytes" else plain.decode("utf-8"), value)
        key_id = key_id or self.active_key_id
        nonce = _nonce()
        aad = attr.aad_prefix + row_id.encode() + self._aad_suffix[key_id]
        sealed = nonce + self._aead[key_id].encrypt(nonce, plain, aad)
        if codec == "bytes":
            return Sealed(BINARY_PREFIX + key_id.encode() + sealed, value)
        body = binascii.b2a_base64(sealed, newline=False).translate(_TO_URLSAFE).decode("ascii")
        return Sealed(f"{TEXT_PREFIX}{key_id}:{body}", value)

    def open(self, attr: EncryptedAttr, row_id: str, stored: str | bytes) -> Any:
        """The plain value of a stored column value (clear text passes only when disabled)."""
        if type(stored) is str and stored.startswith(TEXT_PREFIX) and stored[13:14] == ":":
            # Fast path for text columns; the general path below names the failure.
            key_id = stored[5:13]
            aead = self._aead.get(key_id)
            if aead is not None and attr.codec != "bytes":
                try:
                    sealed = binascii.a2b_base64(stored[14:].encode("ascii").translate(_FROM_URLSAFE))
                    aad = attr.aad_prefix + row_id.encode() + self._aad_suffix[key_id]
                    plain = aead.decrypt(sealed[:NONCE], sealed[NONCE:], aad)
                    return plain.decode("utf-8") if attr.codec == "text" else decode_plain(attr.codec, plain)
                except (InvalidTag, ValueError):
                    pass
        binding = Binding(attr.table, attr.column, row_id)
        if not self.enabled and self.key_id_of(stored) is None:
            return decode_plain(attr.codec, stored if isinstance(stored, bytes) else stored.encode("utf-8"))
        return decode_plain(attr.codec, self.decrypt(stored, binding))

    # --- blind indexes ----------------------------------------------------------------

    def blind_index(self, purpose: str, normalized: str) -> str:
        """HMAC-SHA256 hex of a normalised search value, domain-separated by ``purpose``."""
        return hmac.new(self._blind_key, f"{purpose}\x1f{normalized}".encode(), hashlib.sha256).hexdigest()


# --- normalisation ----------------------------------------------------------------------


def normalize_text(value: str) -> str:
    """Case- and whitespace-insensitive form: NFKC, casefolded, inner runs of space collapsed."""
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


def normalize_member_id(value: str) -> str:
    """Member ids compare without case, spaces or hyphens (cards print 'XYZ 123-45')."""
    return "".join(ch for ch in normalize_text(value) if ch not in " -")


def member_id_index(cipher: FieldCipher, member_id: str) -> str:
    return cipher.blind_index("member_id", normalize_member_id(member_id))


def name_dob_index(cipher: FieldCipher, last: str, first: str, dob: date) -> str:
    return cipher.blind_index("name_dob", f"{normalize_text(last)}|{normalize_text(first)}|{dob.isoformat()}")


def normalize_account_number(value: str) -> str:
    """Account numbers compare exactly (case kept: the practice's system may tell 'a1' from 'A1'),
    only Unicode forms and surrounding space folded."""
    return unicodedata.normalize("NFKC", value).strip()


def account_number_index(cipher: FieldCipher, account_number: str) -> str:
    return cipher.blind_index("account_number", normalize_account_number(account_number))


#: table -> [(index attribute, source attributes, function(cipher, *sources) -> hex)].
BLIND_INDEXES: dict[str, list[tuple[str, tuple[str, ...], Callable[..., str]]]] = {
    "patients": [
        ("name_dob_index", ("last_name", "first_name", "birth_date"), name_dob_index),
        ("account_number_index", ("account_number",), account_number_index),
    ],
    "coverages": [("member_id_index", ("member_id",), member_id_index)],
}


# --- finding the cipher of a session ------------------------------------------------------

_ENGINE_CIPHERS: weakref.WeakKeyDictionary[Engine, FieldCipher] = weakref.WeakKeyDictionary()


def register_cipher(engine: Engine, cipher: FieldCipher) -> None:
    """Make ``cipher`` the one every session on ``engine`` uses (the app does this at start)."""
    _ENGINE_CIPHERS[engine] = cipher


def registered_cipher(engine: Engine) -> FieldCipher | None:
    return _ENGINE_CIPHERS.get(engine)


def build_cipher(connection: Connection, settings: Any) -> tuple[FieldCipher, bool]:
    """Load (creating if needed) the key ring through ``connection`` for ``settings``."""
    from claims_server.security.keys import master_key_provider

    provider = master_key_provider(settings)
    ring, created = load_keyring(connection, provider, create_missing=True)
    return FieldCipher(ring, enabled=settings.FIELD_ENCRYPTION == "on", provider=provider), created


def cipher_for(session: Session | None, connection: Connection | None = None) -> FieldCipher:
    """The cipher for ``session``/``connection``; bootstraps one from the environment if none."""
    if session is not None and "field_cipher" in session.info:
        return session.info["field_cipher"]
    if connection is None:
        if session is None:
            raise KeyRingError("no session or connection to find the key ring through")
        connection = session.connection()
    engine = connection.engine
    cipher = _ENGINE_CIPHERS.get(engine)
    if cipher is not None:
        return cipher
    from claims_server.config import load_settings

    cipher, created = build_cipher(connection, load_settings())
    _ENGINE_CIPHERS[engine] = cipher
    if created and session is not None:
        # The new keys commit with this transaction; forget them if it rolls back.
        session.info["keyring_created_for"] = engine
    return cipher


@event.listens_for(Session, "after_rollback")
def _forget_uncommitted_keys(session: Session) -> None:
    engine = session.info.pop("keyring_created_for", None)
    if engine is not None:
        _ENGINE_CIPHERS.pop(engine, None)


@event.listens_for(Session, "after_commit")
def _keys_committed(session: Session) -> None:
    session.info.pop("keyring_created_for", None)


# --- ORM hooks (called from claims_server.models.encrypted) ----------------------------------


def _row_id(target: Any) -> str:
    row_id = target.__dict__.get("public_id")
    if row_id is None:
        row_id = new_public_id()
        target.public_id = row_id
    return row_id


def seal_instance(
    target: Any, attrs: Iterable[EncryptedAttr], connection: Connection, *, changed: set[str] | None
) -> None:
    """Replace the plain values of ``target``'s encrypted attributes by their ``Sealed`` form."""
    cipher = cipher_for(object_session(target), connection)
    row_id = _row_id(target)
    rekey = target.__dict__.get("_reencrypt_key_id")
    for attr in attrs:
        if changed is not None and attr.key not in changed:
            continue
        if attr.key not in target.__dict__:
            continue
        value = target.__dict__[attr.key]
        if isinstance(value, Sealed):
            value = value.plain
        if value is None:
            continue
        target.__dict__[attr.key] = cipher.seal(attr, row_id, value, key_id=rekey)


def open_instance(target: Any, attrs: Iterable[EncryptedAttr], session: Session) -> None:
    """Decrypt ``target``'s loaded encrypted attributes in place (ORM load and refresh)."""
    cipher = cipher_for(session)
    row_id = target.__dict__.get("public_id") or target.public_id
    for attr in attrs:
        value = target.__dict__.get(attr.key)
        if isinstance(value, Sealed):
            try:
                target.__dict__[attr.key] = cipher.open(attr, row_id, value.stored)
            except UnknownKeyError:
                # A key rotated by another process (CLI, another worker): load it once, retry.
                if not cipher.refresh(session.connection()):
                    raise
                target.__dict__[attr.key] = cipher.open(attr, row_id, value.stored)


def update_blind_indexes(target: Any, connection: Connection, *, insert: bool) -> None:
    """Recompute the blind indexes of ``target`` whose source attributes changed."""
    specs = BLIND_INDEXES.get(instance_state(target).mapper.local_table.name)
    if not specs:
        return
    committed = instance_state(target).committed_state
    cipher: FieldCipher | None = None
    for index_attr, sources, func in specs:
        if not insert and not any(s in committed for s in sources):
            continue
        values = []
        for source in sources:
            value = getattr(target, source)
            values.append(value.plain if isinstance(value, Sealed) else value)
        if any(v is None for v in values):
            setattr(target, index_attr, None)
            continue
        cipher = cipher or cipher_for(object_session(target), connection)
        setattr(target, index_attr, func(cipher, *values))
