"""The command line: version, database commands, demo, and fail-fast configuration."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from claims_server import __version__
from claims_server.migrate import head as migrate_head


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "claims_server", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert __version__ in result.stdout


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"}, "DATABASE_URL"),
        ({"DATABASE_URL": "mysql://root@127.0.0.1/test"}, "DATABASE_URL"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"CLAIMS_ENV": "staging"}, "CLAIMS_ENV"),
        ({"MAX_UPLOAD_BYTES": "lots"}, "MAX_UPLOAD_BYTES"),
        ({"CELERY_BROKER_URL": "kafka://x"}, "CELERY_BROKER_URL"),
    ],
    ids=["unreachable-db", "unsupported-db", "log-level", "environment", "upload-limit", "broker"],
)
@pytest.mark.parametrize("command", [["serve"], ["db", "current"], ["demo"]], ids=["serve", "db", "demo"])
def test_bad_configuration_fails_fast_with_one_line(tmp_path, env, setting, command):
    result = run_cli(*command, env={"INSTANCE_PATH": str(tmp_path), **env}, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"configuration error: {setting}:")
    assert "Traceback" not in result.stderr


def test_worker_without_broker_says_so(tmp_path):
    result = run_cli("worker", env={"INSTANCE_PATH": str(tmp_path)})
    assert result.returncode == 2
    assert result.stderr.startswith("configuration error: CELERY_BROKER_URL:")


def test_db_upgrade_current_downgrade(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    env = {"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": url}
    assert run_cli("db", "current", env=env).stdout.strip() == "base (empty)"
    up = run_cli("db", "upgrade", env=env)
    assert up.returncode == 0, up.stderr
    head = run_cli("db", "current", env=env).stdout.strip()
    assert head == migrate_head(), head
    down = run_cli("db", "downgrade", "base", env=env)
    assert down.returncode == 0, down.stderr
    assert run_cli("db", "current", env=env).stdout.strip() == "base (empty)"


def test_demo_on_the_embedded_default_ends_by_saying_how_to_see_it(tmp_path):
    """README command one on a fresh folder: the day runs, the books balance, the workspace is next."""
    result = run_cli("demo", env={"INSTANCE_PATH": str(tmp_path / "instance")}, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ledger balances (trial balance sums to zero): yes" in result.stdout
    assert "claims-server serve --port 8000" in result.stdout
    assert "http://127.0.0.1:8000/" in result.stdout
    assert (tmp_path / "instance" / "claims.sqlite3").exists()
