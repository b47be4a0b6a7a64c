"""Schema migrations from code: the CLI and tests call these, not the ``alembic`` command.

The script location is the installed ``migrations`` package, so running from any
working directory (or from a wheel) finds the same revisions.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

import migrations
from claims_server.db import make_engine


def script_location() -> str:
    """Folder of the ``migrations`` package (env.py, versions/)."""
    return str(Path(migrations.__file__).resolve().parent)


def alembic_config(url: str) -> Config:
    """An Alembic ``Config`` for ``url`` with no ini file."""
    cfg = Config()
    cfg.set_main_option("script_location", script_location())
    # ConfigParser interpolation treats % specially (URL-encoded passwords contain it).
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    """Migrate the database at ``url`` down to ``revision``."""
    command.downgrade(alembic_config(url), revision)


def current(url: str) -> str | None:
    """The revision the database at ``url`` is at; ``None`` when never migrated."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def head() -> str | None:
    """The newest revision shipped with this code."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
