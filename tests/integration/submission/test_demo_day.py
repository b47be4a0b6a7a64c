"""``claims-server demo``'s billing day, and the simulator command."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from claims_server.cli import main
from claims_server.demo import run_demo
from edi.validate import validate
from tests.unit.edi.support_837 import pyx12_validate


def test_billing_day_end_to_end(app, database_url, tmp_path):
    report = run_demo(database_url, tmp_path / "out")
    day = report.day
    data = report.to_json_dict()["billing_day"]
    assert data["claims_created"] == 36
    # Scrubber-caught defects are held with their findings; the payer's rejection is queued.
    assert {h["stage"] for h in day.held} == {"scrub"} and len(day.held) == 2
    assert {f["rule_id"] for h in day.held for f in h["findings"]} == {"DX_VALID", "DATE_OF_SERVICE"}
    # The 835 is posted as it arrives: the three planted denials (CO-97 on one line,
    # CO-16 and CO-29) leave two claims partially paid and one denied; the rest are paid.
    assert day.claim_states == {"draft": 2, "rejected": 1, "paid": 30, "partially_paid": 2, "denied": 1}
    assert day.work_items == 1 + 3  # the 277CA rejection and the three denials
    assert [a["kind"] for a in day.acknowledgments] == ["999", "277CA"]
    (posting,) = day.remittances
    assert posting["status"] == "posted" and not posting["duplicate"]
    assert posting["claims_parsed"] == 33 == posting["claims_posted"] + posting["claims_queued"]
    assert posting["work_items_opened"] == 3
    sent = [Path(p) for p in day.files["sent_837"]]
    assert len(sent) == 1 and pyx12_validate(sent[0].read_text()).accepted
    received = [Path(p) for p in day.files["received"]]
    assert len(received) == 3 and all(validate(p).valid for p in received)
    remit = next(p for p in received if p.name.startswith("835")).read_text()
    assert {"CAS*CO*97", "CAS*CO*16", "CAS*CO*29"} <= {seg[:9] for seg in remit.split("~")}
    json.dumps(report.to_json_dict())  # the --json output is plain JSON


def test_simulator_command_answers_an_outbox(session, make_claims, folder_route, factory, tmp_path):
    from claims_server.clearinghouse import services as ch
    from claims_server.submission.services import build_batches

    make_claims(2)
    batch_id = build_batches(session).batch_ids[0]
    session.commit()
    ch.send_batch(factory, batch_id, transport_factory=lambda r: ch.route_transport(r, tmp_path))
    outbox, inbox = folder_route.settings["outbox"], folder_route.settings["inbox"]
    result = CliRunner().invoke(main, ["simulator", "run", "--once", "--outbox", outbox, "--inbox", inbox])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["answered"][0]["accepted"] == 2
    assert sorted(p.name.split("-")[0] for p in Path(inbox).iterdir()) == ["277CA", "999"]
