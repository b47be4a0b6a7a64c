"""``claims-server claims validate|create FILE.json`` use the API's claim JSON shape."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import func, select

from claims_server.cli import main
from claims_server.models import Claim
from tests.integration.claims.support import claim_json


def _run(monkeypatch, database_url, tmp_path, *args: str):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    return CliRunner().invoke(main, list(args))


def test_validate_then_create(monkeypatch, database_url, tmp_path, session, ids):
    good = tmp_path / "claim.json"
    good.write_text(json.dumps(claim_json(ids, ready=True)))
    checked = _run(monkeypatch, database_url, tmp_path, "claims", "validate", str(good))
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.stdout)["valid"] is True
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Claim)) == 0
    created = _run(monkeypatch, database_url, tmp_path, "claims", "create", str(good))
    assert created.exit_code == 0, created.output
    body = json.loads(created.stdout)
    assert body["state"] == "ready" and body["total_charge"] == "220.50"
    session.rollback()
    assert session.scalar(select(Claim.state).where(Claim.public_id == body["id"])) == "ready"


def test_bad_files_exit_2_or_1_without_traceback(monkeypatch, database_url, tmp_path, ids):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(claim_json(ids, lines=[{**claim_json(ids)["lines"][0], "charge": 12.5}])))
    answer = _run(monkeypatch, database_url, tmp_path, "claims", "create", str(bad))
    assert answer.exit_code == 2
    assert "lines[0].charge" in answer.stderr and "Traceback" not in answer.output
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert _run(monkeypatch, database_url, tmp_path, "claims", "validate", str(broken)).exit_code == 2
    dirty = tmp_path / "dirty.json"
    dirty.write_text(json.dumps(claim_json(ids, diagnoses=["Z99.999"])))
    result = _run(monkeypatch, database_url, tmp_path, "claims", "validate", str(dirty))
    assert result.exit_code == 1 and json.loads(result.stdout)["valid"] is False
