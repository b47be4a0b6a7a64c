"""Batch and file history: every interchange with its acknowledgments; raw downloads decrypted and audited."""

from __future__ import annotations

import re

from sqlalchemy import select

from claims_server.app import state
from claims_server.models import (
    Ack999Result,
    EdiFile,
    EdiFileKind,
    FileDirection,
    Remittance,
)
from claims_server.remittance.services import receive_and_post
from tests.integration.remittance.support import Clp, Svc, build_835, make_claim, seed_world
from tests.integration.ui.money_support import audit_events, with_request_id


def _row(html: str, public_id: str) -> str:
    start = html.index(f'id="file-{public_id}"')
    return html[start : html.index("</tr>", start)]


def test_every_file_with_what_answered_it(app, session, api_client, billing_day):
    biller = api_client("biller")
    answer, request_id = with_request_id(biller, "GET", "/ui/files")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    files = session.scalars(select(EdiFile).order_by(EdiFile.id)).all()
    assert {f.kind for f in files} >= {
        EdiFileKind.CLAIM_837P,
        EdiFileKind.ACK_999,
        EdiFileKind.CLAIM_ACK_277CA,
    }
    for f in files:
        assert f'id="file-{f.public_id}"' in html
    sent = next(f for f in files if f.kind is EdiFileKind.CLAIM_837P)
    row = _row(html, sent.public_id)
    group_ack = session.scalar(
        select(Ack999Result).where(
            Ack999Result.batch_id == sent.batch_id, Ack999Result.transaction_set_id.is_(None)
        )
    )
    assert f"<strong>999</strong> {group_ack.acknowledgment_code}:" in row
    assert "<strong>277CA</strong>" in row and re.search(r"claims: \d+ (accepted|rejected)", row)
    remitted = next(f for f in files if f.kind is EdiFileKind.REMITTANCE_835)
    payment = session.scalars(select(Remittance).where(Remittance.edi_file_id == remitted.id)).first()
    assert f'href="/ui/remittances/{payment.public_id}"' in _row(html, remitted.public_id)
    # Metadata only: listing files decrypts nothing and reads no PHI.
    assert audit_events(session, request_id, "R") == []

    only_sent = biller.get("/ui/files?direction=out&kind=837P").get_data(as_text=True)
    assert f'id="file-{sent.public_id}"' in only_sent and f'id="file-{remitted.public_id}"' not in only_sent
    one = biller.get(f"/ui/files?file={remitted.public_id}").get_data(as_text=True)
    assert one.count('<tr id="file-') == 1


def test_a_download_is_the_stored_file_and_is_audited(app, session, api_client):
    world = seed_world(session)
    make_claim(session, world, "PCNFILE01", [("99213", 12000)])
    content = build_835(
        [Clp("PCNFILE01", "1", 12000, 9000, 0, lines=[Svc("99213", 12000, 9000, [("CO", "45", 3000)])])],
        trace="FILETRACE1",
    )
    assert receive_and_post(state(app).session_factory, content).status == "posted"
    stored = session.scalars(select(EdiFile).where(EdiFile.direction == FileDirection.INBOUND)).one()

    auditor = api_client("auditor")
    answer, request_id = with_request_id(auditor, "GET", f"/ui/files/{stored.public_id}/raw")
    assert answer.status_code == 200
    assert answer.data == content  # decrypted, byte for byte
    assert answer.headers["Content-Disposition"] == f'attachment; filename="in-835-{stored.public_id}.x12"'
    assert answer.headers["Cache-Control"] == "no-store"
    events = audit_events(session, request_id)
    # The file, and each patient whose data it carries (the one claim's patient).
    assert [(e.event_type, e.entity_type, e.entity_id, e.patient_id) for e in events] == [
        ("edi_file.download", "edi_file", stored.public_id, None),
        ("edi_file.download", "patient", world.single.patient.public_id, world.single.patient_id),
    ]
    again, second = with_request_id(auditor, "GET", f"/ui/files/{stored.public_id}/raw")
    assert again.status_code == 200 and len(audit_events(session, second)) == 2  # audited per download

    assert auditor.get("/ui/files/00000000000000000000000000000000/raw").status_code == 404
    assert api_client("integration").get(f"/ui/files/{stored.public_id}/raw").status_code == 403


def test_bad_filters_get_a_message_next_to_the_field(app, api_client):
    biller = api_client("biller")
    answer = biller.get("/ui/files?kind=999X&received_from=2026-02-30")
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert 'id="f-kind-error">' in html and 'id="f-received_from-error">Enter a date' in html
    reversed_dates = biller.get("/ui/files?received_from=2026-03-01&received_to=2026-02-01")
    assert reversed_dates.status_code == 422 and 'id="f-received_to-error">' in reversed_dates.get_data(
        as_text=True
    )
    forged = biller.get("/ui/files?cursor=forged")
    assert forged.status_code == 422 and "cursor" in forged.get_data(as_text=True)
