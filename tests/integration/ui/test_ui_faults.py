"""Workspace faults (issue 18): a GET of a form's address, a stale save, a form sent after the
session ended, patient search by last name alone, claims shown by their number."""

from __future__ import annotations

from html.parser import HTMLParser

from sqlalchemy import select

from claims_server.models import Claim, ClaimState, Patient
from tests.integration.ui.support import csrf_token_of


class _Inputs(HTMLParser):
    """The named inputs of the form ``form_id`` (text, hidden, date) with their values."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id, self.inside, self.values = form_id, False, {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "form":
            self.inside = named.get("id") == self.form_id
        elif tag == "input" and self.inside and named.get("name") and named.get("type") != "checkbox":
            self.values[named["name"]] = named.get("value") or ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False


def form_values(html: str, form_id: str) -> dict[str, str]:
    parser = _Inputs(form_id)
    parser.feed(html)
    return parser.values


def _claim(session, state: ClaimState) -> Claim:
    session.rollback()
    return session.scalars(select(Claim).where(Claim.state == state).order_by(Claim.id)).first()


def test_a_get_of_a_form_address_is_an_html_page_and_the_api_keeps_problem_json(
    api_client, billing_day, session
):
    denied = _claim(session, ClaimState.DENIED)
    biller = api_client("biller")
    answer = biller.get(f"/ui/claims/{denied.public_id}/void")
    assert answer.status_code == 405 and answer.mimetype == "text/html"
    html = answer.get_data(as_text=True)
    assert "This address is a form" in html and "nothing was changed" in html
    assert f'href="/ui/claims/{denied.public_id}" id="error-back"' in html  # back to the claim
    assert "POST" in answer.headers["Allow"]
    assert answer.headers["Content-Security-Policy"]  # the workspace's headers, though no blueprint matched
    assert biller.get("/ui/queues/action").mimetype == "text/html"

    api = biller.get("/api/v1/auth/login")
    assert api.status_code == 405 and api.mimetype == "application/problem+json"
    assert "POST" in api.headers["Allow"]


def test_a_stale_save_says_so_and_changes_nothing(api_client, billing_day, session):
    rejected = _claim(session, ClaimState.REJECTED)
    biller = api_client("biller")
    page = biller.get(f"/ui/claims/{rejected.public_id}").get_data(as_text=True)
    assert 'name="version"' in page
    token = csrf_token_of(biller)
    version = rejected.version
    stale = version - 1 if version > 1 else version + 5
    form = form_values(page, "claim-form") | {
        "version": str(stale),
        "intent": "save",
        "referral_number": "REF123",
    }
    form["csrf_token"] = token
    answer = biller.post(f"/ui/claims/{rejected.public_id}/edit", data=form)
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert "This claim was changed by someone else since you opened it: reload to see the changes" in html
    assert 'role="alert"' in html
    assert f'name="version" value="{stale}"' in html  # saving again is refused again until a reload
    assert 'value="REF123"' in html  # what was typed stays in the form
    session.rollback()
    again = session.get(Claim, rejected.id)
    assert again.version == version and (again.referral_number or "") != "REF123"


def test_a_form_sent_after_the_session_ended_signs_in_back_to_its_page(client, billing_day, session):
    denied = _claim(session, ClaimState.DENIED)
    page = f"/ui/claims/{denied.public_id}"
    answer = client.post(
        f"{page}/appeal", data={"letter_text": "typed"}, headers={"Referer": f"http://localhost{page}"}
    )
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith(f"/ui/sign-in?next={page}")
    # Only our own pages: a referrer from elsewhere, or with PHI-shaped parts, is not kept.
    elsewhere = client.post(f"{page}/appeal", data={}, headers={"Referer": f"https://evil.example{page}"})
    assert elsewhere.headers["Location"].endswith("/ui/sign-in")
    odd = client.post(f"{page}/appeal", data={}, headers={"Referer": "http://localhost/ui/patients/a b?x=1"})
    assert odd.headers["Location"].endswith("/ui/sign-in")
    form = client.get(f"/ui/sign-in?next={page}").get_data(as_text=True)
    assert f'name="next" value="{page}"' in form and "data-sign-in" in form
    assert "/ui/static/drafts.js" in form


def test_patient_search_by_last_name_alone(app, api_client, billing_day, session):
    session.rollback()
    patient = session.scalars(select(Patient).order_by(Patient.id)).first()
    biller = api_client("biller")
    token = csrf_token_of(biller)
    found = biller.post(
        "/ui/patients/search", data={"csrf_token": token, "last_name": patient.last_name.upper()}
    )
    assert found.status_code == 200
    assert f'href="/ui/patients/{patient.public_id}"' in found.get_data(as_text=True)
    narrowed = biller.post(
        "/ui/patients/search",
        data={"csrf_token": token, "last_name": patient.last_name, "first_name": "Nobody-Of-That-Name"},
    )
    assert f'href="/ui/patients/{patient.public_id}"' not in narrowed.get_data(as_text=True)
    first_only = biller.post(
        "/ui/patients/search", data={"csrf_token": token, "first_name": patient.first_name}
    )
    assert first_only.status_code == 422 and 'id="f-last_name-error"' in first_only.get_data(as_text=True)

    api = biller.post("/api/v1/patients/search", json={"last_name": f"  {patient.last_name.lower()} "})
    assert api.status_code == 200, api.get_json()
    assert patient.public_id in {p["id"] for p in api.get_json()["items"]}
    refused = biller.post("/api/v1/patients/search", json={"birth_date": patient.birth_date.isoformat()})
    assert refused.status_code == 422
    assert any(e.get("field") == "last_name" for e in refused.get_json()["errors"])


def test_the_session_dialog_css_lets_hidden_win(client):
    css = client.get("/ui/static/ui.css").get_data(as_text=True)
    assert "[hidden] { display: none !important; }" in css
