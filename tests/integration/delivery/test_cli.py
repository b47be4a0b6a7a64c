"""The delivery and payment-plan commands against the test database."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from pypdf import PdfReader

from claims_server.cli import main


def test_print_batch_then_nothing_left_and_the_plan_check(database_url, issued, tmp_path):
    env = {
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(tmp_path / "i"),
        "STATEMENT_OUTBOX": str(tmp_path),
    }
    runner = CliRunner()
    first = runner.invoke(main, ["statements", "print-batch", "--simplex", "--json"], env=env)
    assert first.exit_code == 0, first.output
    batch = json.loads(first.output)
    assert (batch["statements"], batch["pages"], batch["sheets"]) == (2, 2, 2)  # simplex: no blank backs
    assert len(PdfReader(Path(batch["pdf"])).pages) == 2
    again = runner.invoke(main, ["statements", "print-batch"], env=env)
    assert again.exit_code == 0 and "no issued statements" in again.output
    plans = runner.invoke(main, ["payments", "check-plans", "--as-of", "2026-05-01"], env=env)
    assert plans.exit_code == 0 and "0 active plans checked as of 2026-05-01" in plans.output
    missing = runner.invoke(main, ["statements", "email", "0" * 32], env=env)
    assert missing.exit_code != 0 and "no statement" in missing.output
