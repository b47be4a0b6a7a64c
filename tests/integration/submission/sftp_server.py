"""A real SFTP server (asyncssh) on 127.0.0.1 for the transport tests, in a background thread.

It serves a local folder (chroot) with password and public-key authentication and a
freshly generated ed25519 host key. ``stall_writes`` makes every write after the first
block of a file hang (``stalled`` is set when one does), to kill a worker mid-upload.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

USERNAME = "claims"
PASSWORD = "synthetic-test-password"
STALL_AFTER_BYTES = 256


@dataclass
class SftpServer:
    host: str
    port: int
    root: Path
    host_key: str  # "ssh-ed25519 AAAA..."
    client_key_file: str
    stall_writes: threading.Event = field(default_factory=threading.Event)
    stalled: threading.Event = field(default_factory=threading.Event)
    refuse_logins: threading.Event = field(default_factory=threading.Event)

    def route_settings(self, *, password_env: str | None = None) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "username": USERNAME,
            "host_key": self.host_key,
            "outbound_dir": "outbound",
            "inbound_dir": "inbound",
            "timeout_seconds": 10,
            "retry_base_seconds": 1,
        }
        if password_env:
            settings["password_env"] = password_env
        else:
            settings["private_key_file"] = self.client_key_file
        return settings

    @property
    def outbound(self) -> Path:
        return self.root / "outbound"

    @property
    def inbound(self) -> Path:
        return self.root / "inbound"


def start_sftp_server(root: Path, key_dir: Path) -> tuple[SftpServer, asyncio.AbstractEventLoop, Any]:
    """Start the server; returns (server info, loop, listener). Stop with :func:`stop_sftp_server`."""
    (root / "outbound").mkdir(parents=True, exist_ok=True)
    (root / "inbound").mkdir(parents=True, exist_ok=True)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key_file = key_dir / "client_ed25519"
    client_key.write_private_key(str(client_key_file), format_name="openssh")
    client_key_file.chmod(0o600)
    authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())
    public_line = " ".join(host_key.export_public_key().decode().split()[:2])
    info = SftpServer("127.0.0.1", 0, root, public_line, str(client_key_file))

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            if info.refuse_logins.is_set():
                raise asyncssh.DisconnectError(asyncssh.DISC_NO_MORE_AUTH_METHODS_AVAILABLE, "maintenance")
            self._conn.set_authorized_keys(authorized)
            return True

        def connection_made(self, conn: Any) -> None:
            self._conn = conn

        def password_auth_supported(self) -> bool:
            return True

        def validate_password(self, username: str, password: str) -> bool:
            return username == USERNAME and password == PASSWORD

        def public_key_auth_supported(self) -> bool:
            return True

    class StallingSFTPServer(asyncssh.SFTPServer):
        def __init__(self, chan: Any) -> None:
            super().__init__(chan, chroot=str(root).encode())

        async def write(self, file_obj: Any, offset: int, data: bytes) -> Any:
            if info.stall_writes.is_set() and offset + len(data) > STALL_AFTER_BYTES:
                info.stalled.set()
                while info.stall_writes.is_set():
                    await asyncio.sleep(0.05)
            return super().write(file_obj, offset, data)

    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def go() -> None:
            listener = await asyncssh.listen(
                "127.0.0.1",
                0,
                server_host_keys=[host_key],
                server_factory=Server,
                sftp_factory=StallingSFTPServer,
                allow_scp=False,
            )
            holder["listener"] = listener
            info.port = listener.sockets[0].getsockname()[1]
            ready.set()

        loop.run_until_complete(go())
        loop.run_forever()

    thread = threading.Thread(target=run, name="sftp-server", daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the SFTP server did not start")
    return info, loop, holder["listener"]


def stop_sftp_server(loop: asyncio.AbstractEventLoop, listener: Any, info: SftpServer) -> None:
    info.stall_writes.clear()

    async def close() -> None:
        listener.close()
        await listener.wait_closed()

    asyncio.run_coroutine_threadsafe(close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)


def interchange_numbers(folder: Path) -> list[str]:
    """ISA13 of every complete (non-temporary) file in ``folder`` and its subfolders."""
    numbers = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith(".") and not path.name.endswith(".part"):
            text = path.read_text("ascii", errors="replace")
            if text.startswith("ISA"):
                numbers.append(text[90:99])
    return numbers
