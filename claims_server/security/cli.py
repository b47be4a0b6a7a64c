"""CLI: ``keys rotate``, ``audit verify``, ``audit checkpoint``, ``users create``, ``tokens create``.

Each command reads the same settings as the server (DATABASE_URL, MASTER_KEY ...),
runs as a named system actor in the audit trail, and exits non-zero on failure.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click


def _setup() -> tuple[object, object]:
    from claims_server.cli import _checked_database_url, _settings
    from claims_server.db import make_engine

    settings = _settings()
    return settings, make_engine(_checked_database_url())


def _cipher(settings: object, engine: object) -> object:
    from claims_server.security.fields import build_cipher, register_cipher

    with engine.begin() as conn:  # type: ignore[attr-defined]
        cipher, _ = build_cipher(conn, settings)
    register_cipher(engine, cipher)  # type: ignore[arg-type]
    return cipher


@click.group("keys")
def keys_group() -> None:
    """Encryption keys: rotation."""


def seal_clear_values() -> int:
    """Encrypt values still in clear (written before their column was encrypted) under the
    active data key, with their blind indexes; no new key. Returns how many were sealed."""
    from claims_server.security.keys import master_key_provider
    from claims_server.security.rotation import rotate_data_key

    settings, engine = _setup()
    _cipher(settings, engine)
    try:
        report = rotate_data_key(engine, master_key_provider(settings), resume=True, seal_clear=True)
    finally:
        engine.dispose()  # type: ignore[attr-defined]
    return report.values_reencrypted


@keys_group.command("rotate")
@click.option("--resume", is_flag=True, help="continue an interrupted rotation; do not add a new key")
@click.option("--batch-size", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@click.option(
    "--seal-clear",
    is_flag=True,
    help="also encrypt values still in clear (written before their column was encrypted)",
)
def keys_rotate(resume: bool, batch_size: int, seal_clear: bool) -> None:
    """Add a new data key and re-encrypt every encrypted value under it (online, resumable)."""
    from claims_server.security.keys import master_key_provider
    from claims_server.security.rotation import rotate_data_key

    settings, engine = _setup()
    _cipher(settings, engine)

    def progress(table: str, done: int, total: int) -> None:
        click.echo(f"{table}: {done}/{total} rows", err=True)

    report = rotate_data_key(
        engine,
        master_key_provider(settings),
        resume=resume,
        batch_size=batch_size,
        progress=progress,  # type: ignore[arg-type]
        seal_clear=seal_clear,
    )
    click.echo(f"active data key {report.key_id}: re-encrypted {report.values_reencrypted} values")
    for table, rows in sorted(report.rows_updated.items()):
        click.echo(f"  {table}: {rows} rows")


@click.group("audit")
def audit_group() -> None:
    """The audit trail: verification and checkpoints."""


@audit_group.command("verify")
@click.option(
    "--checkpoints",
    "checkpoint_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="checkpoint folder (default: AUDIT_CHECKPOINT_DIR)",
)
def audit_verify(checkpoint_dir: str | None) -> None:
    """Check every event's HMAC and link and every signed checkpoint, here and in the mirror
    (AUDIT_CHECKPOINT_MIRROR: both sets must match); exit 1 on any problem."""
    from claims_server.clearinghouse.transport import TransportConfigError, TransportError
    from claims_server.security.checkpoints import CheckpointMirrorError, open_mirror, verify_audit_chain

    settings, engine = _setup()
    cipher = _cipher(settings, engine)
    directory = Path(checkpoint_dir or settings.audit_checkpoint_dir)  # type: ignore[attr-defined]
    try:
        mirror = open_mirror(settings)
    except (TransportError, TransportConfigError, CheckpointMirrorError, OSError) as exc:
        click.echo(f"FAIL mirror {settings.AUDIT_CHECKPOINT_MIRROR}: cannot be opened: {exc}", err=True)  # type: ignore[attr-defined]
        sys.exit(1)
    try:
        with engine.connect() as conn:  # type: ignore[attr-defined]
            report = verify_audit_chain(conn, cipher.ring, directory, mirror)  # type: ignore[attr-defined]
    finally:
        if mirror is not None:
            mirror.close()
    for problem in report.problems:
        click.echo(f"FAIL {problem}", err=True)
    for note in report.notes:
        click.echo(f"note: {note}", err=True)
    status = "ok" if report.ok else f"{len(report.problems)} problem(s)"
    mirrored = (
        f", {report.mirror_checkpoints} in the mirror" if mirror is not None and mirror.readable else ""
    )
    click.echo(f"audit chain: {report.events} events, {report.checkpoints} checkpoints{mirrored}: {status}")
    sys.exit(0 if report.ok else 1)


@audit_group.command("checkpoint")
def audit_checkpoint() -> None:
    """Write a signed checkpoint of the current chain head now."""
    from claims_server.security.checkpoints import CheckpointMirrorError, open_mirror, write_checkpoint
    from claims_server.security.clock import system_clock

    settings, engine = _setup()
    cipher = _cipher(settings, engine)
    try:
        with engine.connect() as conn:  # type: ignore[attr-defined]
            cp = write_checkpoint(
                conn,
                cipher.ring,  # type: ignore[attr-defined]
                Path(settings.audit_checkpoint_dir),  # type: ignore[attr-defined]
                system_clock(),
                mirror=lambda: open_mirror(settings),
            )
    except CheckpointMirrorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(
        "no events yet" if cp is None else f"checkpoint at event {cp.last_event_id} ({cp.event_count} events)"
    )


@click.group("users")
def users_group() -> None:
    """Staff users."""


@users_group.command("create")
@click.argument("username")
@click.option(
    "--role", required=True, type=click.Choice(["biller", "billing_supervisor", "auditor", "admin"])
)
@click.option("--display-name", default=None)
@click.password_option("--password", prompt=True, confirmation_prompt=True)
def users_create(username: str, role: str, display_name: str | None, password: str) -> None:
    """Create a staff user with an argon2id password (TOTP is enrolled after first sign-in)."""
    from claims_server.db import make_session_factory, unit_of_work
    from claims_server.models import Role
    from claims_server.security.authn import create_user
    from claims_server.security.principal import acting_as, system_principal

    settings, engine = _setup()
    _cipher(settings, engine)
    try:
        with (
            unit_of_work(make_session_factory(engine)) as session,
            acting_as(system_principal("cli:users-create")),
        ):  # type: ignore[arg-type]
            user = create_user(
                session,
                username=username,
                display_name=display_name or username,
                role=Role(role),
                password=password,
            )
            public_id = user.public_id
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"created {role} {username} ({public_id})")


@click.group("tokens")
def tokens_group() -> None:
    """Integration API tokens."""


@tokens_group.command("create")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    help="repeat for each scope, e.g. claims:write (an unknown scope is refused with the list of scopes)",
)
@click.option("--integration-name", default=None, help="the integration owning what the token creates")
@click.option(
    "--expires-at",
    default=None,
    help="ISO 8601 time in the future, e.g. 2027-01-01T00:00:00Z (UTC if no offset)",
)
def tokens_create(
    name: str, scopes: tuple[str, ...], integration_name: str | None, expires_at: str | None
) -> None:
    """Create an integration token; the secret is printed once and stored only as a hash."""
    from datetime import datetime

    from claims_server.db import make_session_factory, unit_of_work
    from claims_server.security.authn import TokenRequestError, check_token_request, create_api_token
    from claims_server.security.clock import system_clock
    from claims_server.security.principal import acting_as, system_principal

    expiry = None
    if expires_at is not None:
        try:
            expiry = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
        except ValueError:
            raise click.BadParameter("not an ISO 8601 time", param_hint="--expires-at") from None
    try:
        check_token_request(list(scopes), expiry, system_clock())  # before touching the database
    except TokenRequestError as exc:
        hint = "--scope" if exc.field == "scopes" else "--expires-at"
        raise click.BadParameter(exc.message, param_hint=hint) from None
    settings, engine = _setup()
    _cipher(settings, engine)
    with (
        unit_of_work(make_session_factory(engine)) as session,
        acting_as(system_principal("cli:tokens-create")),
    ):  # type: ignore[arg-type]
        token, _row = create_api_token(
            session, name=name, scopes=list(scopes), integration_name=integration_name, expires_at=expiry
        )
    click.echo(token)
