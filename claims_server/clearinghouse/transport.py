"""How files reach and come from the clearinghouse: one small interface, three adapters.

``Transport`` is what the send and poll services need: upload one file (confirmed),
see whether a file is already there, list / fetch / remove inbox files. Adapters:

- :class:`FolderTransport`: a local (or mounted) folder pair, the embedded default
  and the demo's "clearinghouse";
- :class:`SftpTransport`: an SFTP mailbox, with paramiko, host key pinned;
- :class:`~claims_server.clearinghouse.http_transport.HttpTransport`: a clearinghouse's
  HTTPS file API (POST a file, GET the list, GET one, DELETE it), see docs/clearinghouse-http.md.

Folder and SFTP upload to a hidden temporary name (``.<name>.part``) and rename it only
once every byte is written, so the clearinghouse never picks up half a file; every
adapter confirms the upload (size and SHA-256 read back, or echoed by the HTTP API)
before the caller may mark anything sent. Errors are :class:`TransportError` with a
message naming the operation and the file name (our server-generated names hold no PHI).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

TEMP_PREFIX = "."
TEMP_SUFFIX = ".part"


class TransportError(RuntimeError):
    """An upload, listing or download failed; safe to retry."""


class TransportConfigError(ValueError):
    """The route's transport settings are incomplete or malformed (retrying will not help)."""


@dataclass(frozen=True, slots=True)
class UploadReceipt:
    """Proof of an upload: the name it has on the far side and what was read back."""

    name: str
    size: int
    sha256: str


def is_temporary(name: str) -> bool:
    """Upload temporaries (ours or another client's) are never picked up."""
    return name.startswith(TEMP_PREFIX) or name.endswith((TEMP_SUFFIX, ".tmp"))


def _digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def confirm_receipt(name: str, content: bytes, size: int, sha256: str) -> UploadReceipt:
    """The receipt when the far side holds ``size`` bytes with digest ``sha256``; else TransportError."""
    if size != len(content) or sha256 != _digest(content):
        raise TransportError(
            f"upload of {name} not confirmed: read back {size} bytes, "
            f"expected {len(content)} with the same SHA-256"
        )
    return UploadReceipt(name, size, sha256)


def _confirm(name: str, content: bytes, read_back: bytes) -> UploadReceipt:
    return confirm_receipt(name, content, len(read_back), _digest(read_back))


class Transport(Protocol):
    """What sending and polling need from a clearinghouse connection."""

    def upload(self, name: str, content: bytes) -> UploadReceipt:
        """Write ``content`` as ``name`` in the outbound folder; return only once confirmed."""

    def uploaded(self, name: str, content: bytes) -> UploadReceipt | None:
        """The receipt if ``name`` is already there with exactly ``content``, else None."""

    def list_inbox(self) -> list[str]:
        """Names of complete files waiting in the inbound folder, sorted."""

    def fetch(self, name: str) -> bytes:
        """The bytes of one inbox file."""

    def remove(self, name: str) -> None:
        """Delete one inbox file (after it has been stored)."""

    def close(self) -> None:
        """Release the connection."""


class FolderTransport:
    """A pair of local folders: ``outbox`` (we upload) and ``inbox`` (we poll)."""

    def __init__(self, outbox: str | os.PathLike[str], inbox: str | os.PathLike[str]) -> None:
        self.outbox = Path(outbox)
        self.inbox = Path(inbox)

    def upload(self, name: str, content: bytes) -> UploadReceipt:
        temp = self.outbox / f"{TEMP_PREFIX}{name}{TEMP_SUFFIX}"
        try:
            self.outbox.mkdir(parents=True, exist_ok=True)
            # The 837 is PHI in clear: readable by the owner only, and the staging copy never
            # outlives a failed upload (docs/security.md, files at rest).
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(fd, "wb") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temp, self.outbox / name)
            read_back = (self.outbox / name).read_bytes()
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
            raise TransportError(f"upload of {name} failed: {exc.strerror or type(exc).__name__}") from exc
        return _confirm(name, content, read_back)

    def uploaded(self, name: str, content: bytes) -> UploadReceipt | None:
        path = self.outbox / name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TransportError(f"cannot read {name}: {exc.strerror or type(exc).__name__}") from exc
        return UploadReceipt(name, len(data), _digest(data)) if data == content else None

    def list_inbox(self) -> list[str]:
        try:
            return sorted(p.name for p in self.inbox.iterdir() if p.is_file() and not is_temporary(p.name))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise TransportError(f"cannot list the inbox: {exc.strerror or type(exc).__name__}") from exc

    def fetch(self, name: str) -> bytes:
        try:
            return (self.inbox / name).read_bytes()
        except OSError as exc:
            raise TransportError(f"cannot read {name}: {exc.strerror or type(exc).__name__}") from exc

    def remove(self, name: str) -> None:
        try:
            (self.inbox / name).unlink(missing_ok=True)
        except OSError as exc:
            raise TransportError(f"cannot remove {name}: {exc.strerror or type(exc).__name__}") from exc

    def close(self) -> None:
        return None


class SftpTransport:
    """An SFTP mailbox (paramiko). The server's host key must match ``host_key`` (pinned).

    ``host_key`` is the public key as in ``known_hosts``: ``"ssh-ed25519 AAAA..."``.
    Authentication is a password or a private key file; neither is stored in the route
    settings, which only name where they come from.
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        host_key: str,
        outbound_dir: str,
        inbound_dir: str,
        password: str | None = None,
        private_key_file: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        import paramiko

        self.outbound_dir = outbound_dir.rstrip("/") or "."
        self.inbound_dir = inbound_dir.rstrip("/") or "."
        self._client = paramiko.SSHClient()
        try:
            key_type, _, key_data = host_key.strip().partition(" ")
            pinned = paramiko.PKey.from_type_string(key_type, base64.b64decode(key_data.split()[0]))
        except Exception as exc:
            raise TransportConfigError("host_key: not an OpenSSH public key line") from exc
        entry = host if port == 22 else f"[{host}]:{port}"
        self._client.get_host_keys().add(entry, pinned.get_name(), pinned)
        self._client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            self._client.connect(
                host,
                port=port,
                username=username,
                password=password,
                key_filename=private_key_file,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                allow_agent=False,
                look_for_keys=False,
            )
            self._sftp = self._client.open_sftp()
            channel = self._sftp.get_channel()
            if channel is not None:
                channel.settimeout(timeout)
        except (paramiko.SSHException, OSError) as exc:
            self._client.close()
            raise TransportError(f"cannot connect to the SFTP server: {type(exc).__name__}: {exc}") from exc

    def _path(self, folder: str, name: str) -> str:
        return f"{folder}/{name}"

    def upload(self, name: str, content: bytes) -> UploadReceipt:
        import paramiko

        final = self._path(self.outbound_dir, name)
        temp = self._path(self.outbound_dir, f"{TEMP_PREFIX}{name}{TEMP_SUFFIX}")
        try:
            with self._sftp.open(temp, "wb") as fh:
                fh.set_pipelined(True)
                fh.write(content)
            try:
                self._sftp.posix_rename(temp, final)
            except OSError:
                # Servers without the posix-rename extension: plain rename refuses to
                # overwrite, so clear a stale final file from an unconfirmed attempt first.
                with contextlib.suppress(OSError):
                    self._sftp.remove(final)
                self._sftp.rename(temp, final)
            with self._sftp.open(final, "rb") as fh:
                read_back = fh.read()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise TransportError(f"upload of {name} failed: {type(exc).__name__}: {exc}") from exc
        return _confirm(name, content, read_back)

    def uploaded(self, name: str, content: bytes) -> UploadReceipt | None:
        import paramiko

        final = self._path(self.outbound_dir, name)
        try:
            attrs = self._sftp.stat(final)
        except FileNotFoundError:
            return None
        except (paramiko.SSHException, OSError) as exc:
            raise TransportError(f"cannot stat {name}: {type(exc).__name__}: {exc}") from exc
        if attrs.st_size != len(content):
            return None
        try:
            with self._sftp.open(final, "rb") as fh:
                data = fh.read()
        except (paramiko.SSHException, OSError) as exc:
            raise TransportError(f"cannot read {name}: {type(exc).__name__}: {exc}") from exc
        return UploadReceipt(name, len(data), _digest(data)) if data == content else None

    def list_inbox(self) -> list[str]:
        import paramiko

        try:
            entries = self._sftp.listdir_attr(self.inbound_dir)
        except (paramiko.SSHException, OSError) as exc:
            raise TransportError(f"cannot list the inbox: {type(exc).__name__}: {exc}") from exc
        return sorted(
            e.filename
            for e in entries
            if e.st_mode is not None and stat.S_ISREG(e.st_mode) and not is_temporary(e.filename)
        )

    def fetch(self, name: str) -> bytes:
        import paramiko

        try:
            with self._sftp.open(self._path(self.inbound_dir, name), "rb") as fh:
                return fh.read()
        except (paramiko.SSHException, OSError) as exc:
            raise TransportError(f"cannot read {name}: {type(exc).__name__}: {exc}") from exc

    def remove(self, name: str) -> None:
        import paramiko

        try:
            self._sftp.remove(self._path(self.inbound_dir, name))
        except FileNotFoundError:
            return
        except (paramiko.SSHException, OSError) as exc:
            raise TransportError(f"cannot remove {name}: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self._client.close()


def _setting(settings: Mapping[str, Any], key: str) -> Any:
    value = settings.get(key)
    if value in (None, ""):
        raise TransportConfigError(f"the route's transport settings need {key!r}")
    return value


def secret_from_env(settings: Mapping[str, Any], key: str) -> str | None:
    """The secret held by the environment variable that setting ``key`` names (None if unnamed).

    Routes store where a secret lives, never the secret: a named but unset variable is a
    configuration error that says which variable, not what it should hold.
    """
    variable = settings.get(key)
    if not variable:
        return None
    value = os.environ.get(str(variable))
    if value is None:
        raise TransportConfigError(f"the environment variable {variable} ({key}) is not set")
    return value


def transport_for(
    transport: str,
    settings: Mapping[str, Any],
    *,
    base_dir: str | os.PathLike[str],
    route_name: str = "clearinghouse",
) -> Transport:
    """Open the adapter a route names (``folder``, ``sftp`` or ``http``) with its settings.

    Folder paths that are relative resolve against ``base_dir`` (the instance folder).
    Secrets are referenced, never stored: ``password_env`` / ``token_env`` name an
    environment variable holding the secret, ``private_key_file`` a key file on this host.
    ``route_name`` labels the HTTP adapter's errors and log lines.
    """
    if transport == "folder":
        base = Path(base_dir)
        return FolderTransport(
            base / str(_setting(settings, "outbox")), base / str(_setting(settings, "inbox"))
        )
    if transport == "sftp":
        password = secret_from_env(settings, "password_env")
        if password is None and not settings.get("private_key_file"):
            raise TransportConfigError("the route's SFTP settings need password_env or private_key_file")
        try:
            port = int(settings.get("port", 22))
        except (TypeError, ValueError):
            raise TransportConfigError("port: not a number") from None
        return SftpTransport(
            host=str(_setting(settings, "host")),
            port=port,
            username=str(_setting(settings, "username")),
            host_key=str(_setting(settings, "host_key")),
            outbound_dir=str(settings.get("outbound_dir", "outbound")),
            inbound_dir=str(settings.get("inbound_dir", "inbound")),
            password=password,
            private_key_file=settings.get("private_key_file") or None,
            timeout=float(settings.get("timeout_seconds", 30)),
        )
    if transport == "http":
        from claims_server.clearinghouse.http_transport import open_http_transport

        return open_http_transport(route_name, settings)
    raise TransportConfigError(f"no adapter for transport {transport!r} (use folder, sftp or http)")
