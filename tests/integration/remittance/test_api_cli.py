"""The remittance API and CLI: upload (posted or dry run), list, detail; access by role."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from sqlalchemy import func, select

from claims_server.models import JournalEntry
from tests.integration.remittance.support import Clp, Svc, build_835, make_claim

X12 = {"Content-Type": "application/edi-x12"}


def _content(claim) -> bytes:
    l1, l2 = (line.line_control_number for line in claim.service_lines)
    return build_835(
        [
            Clp(
                "PCN-API1",
                "1",
                15000,
                9000,
                1000,
                lines=[
                    Svc("99213", 10000, 6000, [("CO", "45", 3000), ("PR", "2", 1000)], lcn=l1),
                    Svc("85025", 5000, 3000, [("CO", "45", 2000)], lcn=l2),
                ],
            ),
            Clp("PCN-UNKNOWN", "4", 5000, 0, 0, lines=[Svc("99212", 5000, 0, [("CO", "16", 5000)])]),
        ],
        trace="API-1",
    )


def test_upload_list_and_detail(session, world, api_client):
    claim = make_claim(session, world, "PCN-API1", [("99213", 10000), ("85025", 5000)])
    biller = api_client("biller")
    dry = biller.post("/api/v1/remittances?dry_run=true", data=_content(claim), headers=X12)
    assert dry.status_code == 200, dry.get_json()
    assert dry.get_json()["status"] == "dry_run"
    assert session.scalar(select(func.count()).select_from(JournalEntry)) == 0

    posted = biller.post("/api/v1/remittances", data=_content(claim), headers=X12)
    assert posted.status_code == 201, posted.get_json()
    body = posted.get_json()
    assert body["summary"]["claims_parsed"] == 2 and body["summary"]["claims_queued"] == 1
    remittance_id = body["remittances"][0]["remittance"]

    again = biller.post("/api/v1/remittances", data=_content(claim), headers=X12)
    assert again.status_code == 200 and again.get_json()["status"] == "duplicate"

    listed = biller.get("/api/v1/remittances").get_json()
    assert [r["id"] for r in listed["items"]] == [remittance_id]
    assert listed["items"][0]["payment"] == "90.00" and listed["items"][0]["unmatched_claims"] == 1

    detail = biller.get(f"/api/v1/remittances/{remittance_id}").get_json()
    first, second = detail["claim_payments"]
    assert first["claim"] == claim.public_id and first["matched"]
    co45 = first["lines"][0]["adjustments"][0]
    assert co45["group"] == "CO" and co45["reason"] == "45" and co45["amount"] == "30.00" and co45["meaning"]
    (entry,) = first["posted"]
    assert entry["event_type"] == "insurance_payment"
    assert sorted(p["amount"] for p in entry["postings"] if p["account"] == "cash_clearing") == ["90.00"]
    assert second["matched"] is False and second["work_items"][0]["queue"] == "unmatched"
    assert [u["patient_control_number"] for u in detail["unmatched"]] == ["PCN-UNKNOWN"]
    assert biller.get("/api/v1/remittances/nope").status_code == 404


def test_access_by_role(session, world, api_client):
    claim = make_claim(session, world, "PCN-API1", [("99213", 10000), ("85025", 5000)])
    auditor = api_client("auditor")
    assert auditor.post("/api/v1/remittances", data=_content(claim), headers=X12).status_code == 403
    assert auditor.get("/api/v1/remittances").status_code == 200
    reader = api_client("integration", scopes=["remittances:read"])
    assert reader.post("/api/v1/remittances", data=_content(claim), headers=X12).status_code == 403
    writer = api_client("integration", scopes=["remittances:write"])
    assert writer.post("/api/v1/remittances", data=_content(claim), headers=X12).status_code == 201
    json_body = api_client("biller").post("/api/v1/remittances", json={"x": 1})
    assert json_body.status_code == 415


def _cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "claims_server", "remittance", "post", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_post_dry_run_and_duplicate(session, world, database_url, tmp_path):
    claim = make_claim(session, world, "PCN-API1", [("99213", 10000), ("85025", 5000)])
    path = tmp_path / "era.835"
    path.write_bytes(_content(claim))
    dry = _cli(database_url, str(path), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["status"] == "dry_run"
    posted = _cli(database_url, str(path))
    assert posted.returncode == 0, posted.stderr
    assert "posted" in posted.stdout and "claims_parsed: 2" in posted.stdout
    assert "PCN" not in posted.stdout  # the summary names counts, not claims
    dup = _cli(database_url, str(path), "--json")
    assert dup.returncode == 3 and json.loads(dup.stdout)["duplicate"] is True
    bad = tmp_path / "bad.835"
    bad.write_bytes(b"hello")
    refused = _cli(database_url, str(bad))
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
