"""Import charges in the workspace: upload → the per-row preview with findings → Import, exactly once;
a refused file shows each line, column and rule and imports nothing."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from claims_server.models import ChargeImport, Claim
from tests.charge_files import HEADER, charge_csv_bytes, charge_rows
from tests.integration.claims.support import seed
from tests.integration.ui.support import csrf_token_of, linked_urls

PAGE = "/ui/charge-imports"


def _send(client, path: str, body: bytes, token: str | None = None):
    """POST the raw CSV as charge_import.js does."""
    csrf = token if token is not None else csrf_token_of(client, PAGE)
    return client.post(
        path, data=body, content_type="text/csv", headers={"X-CSRF-Token": csrf, "Accept": "text/html"}
    )


def _claims(session) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(Claim)) or 0


def test_upload_preview_then_import_once(app, session, api_client):
    seed(session)
    rows, facts = charge_rows(session, claims=5)
    body = charge_csv_bytes(rows)
    biller = api_client("biller")
    page = biller.get(PAGE)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="charge-upload"' in html and 'type="file"' in html and '<label for="f-file">' in html
    assert "/ui/static/charge_import.js" in linked_urls(html)
    assert "<script>" not in html  # CSP: scripts from files only
    assert all(f"<code>{name}</code>" in html for name in HEADER)  # the layout, on the page

    check = _send(biller, f"{PAGE}/check", body)
    assert check.status_code == 200
    preview = check.get_data(as_text=True)
    assert 'id="charge-preview-rows"' in preview and 'id="charge-import-button"' in preview
    assert len(re.findall(r"<tr>\s*<td class=\"num\">\d+</td>", preview)) == facts.lines
    cents = facts.total_charge_cents
    assert f"${cents // 100:,}.{cents % 100:02d}" in preview
    assert _claims(session) == 0  # a check imports nothing

    imported = _send(biller, f"{PAGE}/import", body)
    assert imported.status_code == 201
    location = imported.headers["X-Import-Location"]
    record = session.scalar(select(ChargeImport))
    assert location == f"{PAGE}/{record.public_id}"
    assert _claims(session) == 5

    again = _send(biller, f"{PAGE}/import", body)  # a double click
    assert again.status_code == 200 and "Already imported" in again.get_data(as_text=True)
    assert again.headers["X-Import-Location"] == location
    assert _claims(session) == 5

    shown = biller.get(location)
    assert shown.status_code == 200
    text = shown.get_data(as_text=True)
    claim_links = [u for u in linked_urls(text) if u.startswith("/ui/claims/")]
    assert len(claim_links) == 5
    assert all(ref in text for ref in facts.claim_refs)
    assert record.public_id in biller.get(PAGE).get_data(as_text=True)  # listed among recent imports


def test_a_refused_file_shows_each_line_and_column_and_imports_nothing(app, session, api_client):
    seed(session)
    rows, _ = charge_rows(session, claims=3)
    rows[2][HEADER.index("diagnoses")] = "E11"  # a category header
    rows[4][HEADER.index("charge")] = "12,50"
    biller = api_client("biller")
    for path in (f"{PAGE}/check", f"{PAGE}/import"):
        answer = _send(biller, path, charge_csv_bytes(rows))
        assert answer.status_code == 422
        html = answer.get_data(as_text=True)
        assert 'id="charge-errors"' in html and 'role="alert"' in html
        cells = re.findall(
            r'<tr><td class="num">(\d+)</td><td><code>(\w+)</code></td><td><code>(\w+)</code>', html
        )
        assert ("3", "diagnoses", "DX_VALID") in cells and ("5", "charge", "invalid") in cells
    assert _claims(session) == 0
    empty = _send(biller, f"{PAGE}/check", b"")
    assert empty.status_code == 422 and "the file is empty" in empty.get_data(as_text=True)


def test_auditors_see_imports_but_cannot_import_and_csrf_guards_the_posts(app, session, api_client):
    seed(session)
    rows, _ = charge_rows(session, claims=1)
    body = charge_csv_bytes(rows)
    biller = api_client("biller")
    assert _send(biller, f"{PAGE}/import", body, token="forged").status_code == 400
    assert _claims(session) == 0
    auditor = api_client("auditor")
    page = auditor.get(PAGE)
    assert page.status_code == 200 and 'id="charge-upload"' not in page.get_data(as_text=True)
    token = csrf_token_of(auditor, "/ui/dashboard")
    assert _send(auditor, f"{PAGE}/check", body, token=token).status_code == 403
    assert _send(auditor, f"{PAGE}/import", body, token=token).status_code == 403
    assert _claims(session) == 0


def test_the_claims_list_links_to_the_import_page(app, session, api_client):
    seed(session)
    html = api_client("biller").get("/ui/claims").get_data(as_text=True)
    assert PAGE in linked_urls(html)
