"""``claims-server batches send|list|show``: each batch printed, exit codes, nothing ready is no error."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import func, select

from claims_server.cli import main
from claims_server.models import Claim, ClaimState, SubmissionBatch
from tests.integration.test_cli import run_cli


def _run(monkeypatch, database_url, tmp_path, *args: str):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    return CliRunner().invoke(main, list(args))


def test_a_fresh_database_has_nothing_to_send(app, database_url, tmp_path):
    env = {"DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path / "instance")}
    sent = run_cli("batches", "send", env=env)
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.strip() == "nothing ready to send"
    as_json = run_cli("batches", "send", "--json", env=env)
    assert as_json.returncode == 0 and json.loads(as_json.stdout)["nothing_ready"] is True
    listed = run_cli("batches", "list", env=env)
    assert listed.returncode == 0 and listed.stdout.strip() == "no batches"


def test_send_prints_each_batch(monkeypatch, database_url, tmp_path, session, folder_route, make_claims):
    claims = make_claims(2)
    total = sum(c.total_charge_cents for c in claims)
    dollars = f"${total // 100:,}.{total % 100:02d}"
    dry = _run(monkeypatch, database_url, tmp_path, "batches", "send", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.splitlines()[0] == "dry run: nothing was changed"
    assert f"batch (dry run)  route {folder_route.name}  2 claims  {dollars}  dry_run" in dry.stdout
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(SubmissionBatch)) == 0

    sent = _run(monkeypatch, database_url, tmp_path, "batches", "send")
    assert sent.exit_code == 0, sent.output
    batch_id = session.scalar(select(SubmissionBatch.public_id))
    assert (
        sent.stdout.splitlines()[0]
        == f"batch {batch_id}  route {folder_route.name}  2 claims  {dollars}  sent"
    )
    assert f"total: 2 claims, {dollars}" in sent.stdout
    for claim in claims:  # ids and amounts only, never a patient
        assert claim.patient.last_name not in sent.stdout

    listed = _run(monkeypatch, database_url, tmp_path, "batches", "list", "--json")
    assert [b["id"] for b in json.loads(listed.stdout)["items"]] == [batch_id]
    shown = _run(monkeypatch, database_url, tmp_path, "batches", "show", batch_id)
    assert shown.exit_code == 0 and f"batch {batch_id}  837P  sent" in shown.stdout
    assert "837P out  processed" in shown.stdout
    again = _run(monkeypatch, database_url, tmp_path, "batches", "send")
    assert again.exit_code == 0 and again.stdout.strip() == "nothing ready to send"


def test_chosen_claims_on_a_route(monkeypatch, database_url, tmp_path, session, folder_route, make_claims):
    chosen, other = make_claims(2)
    result = _run(
        monkeypatch,
        database_url,
        tmp_path,
        "batches",
        "send",
        "--route",
        str(folder_route.id),
        "--claim",
        chosen.public_id,
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["claims_batched"] == 1
    session.expire_all()
    assert session.get(Claim, other.id).state is ClaimState.READY


def test_bad_input_exits_2_and_an_unknown_batch_1(monkeypatch, database_url, tmp_path, session, ids):
    unknown = _run(monkeypatch, database_url, tmp_path, "batches", "send", "--claim", "0" * 32)
    assert unknown.exit_code == 2
    assert json.loads(unknown.stderr)["errors"][0]["field"] == "claim_ids[0]"
    route = _run(monkeypatch, database_url, tmp_path, "batches", "send", "--route", "nowhere")
    assert route.exit_code == 2 and json.loads(route.stderr)["errors"][0]["field"] == "--route"
    missing = _run(monkeypatch, database_url, tmp_path, "batches", "show", "f" * 32)
    assert missing.exit_code == 1 and "no submission batch" in missing.stderr
    state = _run(monkeypatch, database_url, tmp_path, "batches", "list", "--state", "lost")
    assert state.exit_code == 2 and "--state" in state.stderr
    assert "Traceback" not in unknown.output + route.output + missing.output + state.output
