"""Charge entry over the Flask test client: the new-claim screen, edits of draft and rejected
claims, copies, fee-schedule charges, findings beside their fields, the JSON check and code
lookups, the line buttons without JavaScript, and who may do what."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select

from claims_server.models import Claim, ClaimState, Patient, Practice
from claims_server.practice.fee_schedule import save_fees
from claims_server.security.principal import acting_as, system_principal
from tests.integration.claims.support import seed
from tests.integration.ui.support import csrf_token_of

FEES = [
    {"procedure": "99213", "modifier": "", "charge": 12500, "description": "Office visit, est., low"},
    {"procedure": "99214", "modifier": "", "charge": 17500, "description": None},
    {"procedure": "36415", "modifier": "", "charge": 1250, "description": "Blood draw"},
]


@pytest.fixture
def office(session):
    """The demo practice (no claims) with a small fee schedule."""
    ids = seed(session)
    with acting_as(system_principal("test:fees")):
        save_fees(session, session.scalars(select(Practice)).one(), FEES)
    session.commit()
    return ids


@pytest.fixture
def biller(api_client):
    return api_client("biller")


def _form(ids, **fields):
    """The screen's fields for a two-line claim (charges left to the fee schedule)."""
    data = {
        "patient": ids["patient"],
        "coverage": ids["coverage"],
        "rendering_provider": ids["rendering_id"],
        "place_of_service": "11",
        "service_date": date.today().isoformat(),
        "dx-0": "E11.9",
        "dx-1": "I10",
        "line-0-procedure": "99213",
        "line-0-diagnosis_pointers": "1 2",
        "line-1-procedure": "36415",
        "line-1-diagnosis_pointers": "1",
    }
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def _claims(session):
    session.rollback()
    return session.scalars(select(Claim).order_by(Claim.id)).all()


def _fx(html: str, name: str) -> str:
    """The text of the findings/errors box of field ``name``."""
    found = re.search(rf'<div class="fx" id="fx-{re.escape(name)}">(.*?)</div>', html, re.S)
    assert found, f"no findings box for {name}"
    return re.sub(r"<[^>]+>", "", found.group(1))


def test_the_new_claim_screen_is_linked_and_starts_from_the_patient(biller, office, session):
    assert 'href="/ui/claims/new"' in biller.get("/ui/claims").get_data(as_text=True)
    patient_page = biller.get(f"/ui/patients/{office['patient']}").get_data(as_text=True)
    assert f'href="/ui/claims/new?patient={office["patient"]}"' in patient_page
    answer = biller.get(f"/ui/claims/new?patient={office['patient']}")
    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert re.search(rf'<option value="{office["coverage"]}" selected>Primary: ', html)
    assert '<option value="11" selected>11 Office</option>' in html
    assert f'name="service_date" type="date" value="{date.today().isoformat()}"' in html
    assert re.search(r'id="f-dx-0"[^>]*autofocus', html)
    assert 'name="patient_control_number" value="C' in html
    assert answer.headers["Server-Timing"].startswith("app;dur=")
    assert "<script" not in html.split("</main>")[0]  # CSP: scripts are files, never inline


def test_one_search_match_opens_the_screen_and_the_search_stays_out_of_the_url(biller, office, session):
    token = csrf_token_of(biller, "/ui/claims/new")
    account = session.scalar(select(Patient).where(Patient.public_id == office["patient"])).account_number
    answer = biller.post("/ui/claims/new/patient", data={"csrf_token": token, "account_number": account})
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith(f"/ui/claims/new?patient={office['patient']}")
    none = biller.post("/ui/claims/new/patient", data={"csrf_token": token, "account_number": "NOPE-0"})
    assert none.status_code == 200 and "No patient matches" in none.get_data(as_text=True)
    # A last name alone is a search now (issue 18); a first name alone still matches too many.
    refused = biller.post("/ui/claims/new/patient", data={"csrf_token": token, "first_name": "Only"})
    assert refused.status_code == 422


def test_a_keyed_claim_saved_ready_takes_its_charges_from_the_fee_schedule(biller, office, session):
    token = csrf_token_of(biller, f"/ui/claims/new?patient={office['patient']}")
    answer = biller.post("/ui/claims/new", data={"csrf_token": token, "intent": "ready", **_form(office)})
    assert answer.status_code == 303, answer.get_data(as_text=True)[:3000]
    (claim,) = _claims(session)
    assert answer.headers["Location"].endswith(f"/ui/claims/{claim.public_id}")
    assert claim.state == ClaimState.READY
    assert [(ln.procedure_code, ln.charge_cents) for ln in claim.service_lines] == [
        ("99213", 12500),
        ("36415", 1250),
    ]
    assert claim.total_charge_cents == 13750
    assert [dx.code for dx in claim.diagnoses] == ["E119", "I10"]
    assert claim.service_lines[0].pointer_positions == [1, 2]
    page = biller.get(answer.headers["Location"]).get_data(as_text=True)
    assert "is ready: it goes out with the next batch" in page and "$137.50" in page
    # The same form sent again (a double click, Back and save): one claim.
    again = biller.post(
        "/ui/claims/new",
        data={
            "csrf_token": token,
            "intent": "ready",
            **_form(office, **{"patient_control_number": claim.patient_control_number}),
        },
    )
    assert again.status_code == 303 and len(_claims(session)) == 1


def test_a_keyed_charge_wins_and_a_code_without_fee_needs_one(biller, office, session):
    token = csrf_token_of(biller, f"/ui/claims/new?patient={office['patient']}")
    form = _form(office, **{"line-0-charge": "$1,130.5", "line-1-procedure": "93000"})
    answer = biller.post("/ui/claims/new", data={"csrf_token": token, "intent": "draft", **form})
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert "Key the charge: the fee schedule has none for 93000." in _fx(html, "line-1-charge")
    assert _claims(session) == []
    form["line-1-charge"] = "22.00"
    answer = biller.post("/ui/claims/new", data={"csrf_token": token, "intent": "draft", **form})
    assert answer.status_code == 303
    (claim,) = _claims(session)
    assert [ln.charge_cents for ln in claim.service_lines] == [113050, 2200]


def test_a_non_billable_diagnosis_for_the_dos_keeps_the_claim_draft_and_is_shown_beside_it(
    biller, office, session
):
    token = csrf_token_of(biller, f"/ui/claims/new?patient={office['patient']}")
    answer = biller.post(
        "/ui/claims/new", data={"csrf_token": token, "intent": "ready", **_form(office, **{"dx-0": "E11"})}
    )
    assert answer.status_code == 303
    (claim,) = _claims(session)
    assert claim.state == ClaimState.DRAFT
    assert answer.headers["Location"].endswith(f"/ui/claims/{claim.public_id}/charges")
    html = biller.get(answer.headers["Location"]).get_data(as_text=True)
    assert "not ready: the scrubber found 1 error(s)" in html
    assert "E11 is a category header, not a billable code" in _fx(html, "dx-0")
    assert re.search(r'id="f-dx-0"[^>]*aria-invalid="true"', html)
    assert 'value="E11"' in html and "Type 2 diabetes" not in _fx(html, "dx-1")


def test_bad_input_is_named_beside_its_field_and_nothing_is_saved(biller, office, session):
    token = csrf_token_of(biller, f"/ui/claims/new?patient={office['patient']}")
    form = _form(
        office,
        **{
            "line-0-charge": "twelve",
            "line-0-modifiers": "2",
            "line-1-diagnosis_pointers": "1 13",
            "dx-1": "",
            "dx-2": "I10",
            "line-1-ndc": "123",
        },
    )
    answer = biller.post("/ui/claims/new", data={"csrf_token": token, "intent": "ready", **form})
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert "Enter an amount in dollars and cents" in _fx(html, "line-0-charge")
    assert "modifier is 2 letters or digits" in _fx(html, "line-0-modifiers")
    assert "pointer is 1-12" in _fx(html, "line-1-diagnosis_pointers")
    assert "Fill this diagnosis" in _fx(html, "dx-1")
    assert "NDC is 11 digits" in _fx(html, "line-1-ndc")
    assert 'value="twelve"' in html  # what was typed comes back
    assert _claims(session) == []


def test_an_auditor_can_neither_open_nor_post_the_screen(api_client, office, session):
    auditor = api_client("auditor")
    token = csrf_token_of(auditor, "/ui/claims")
    assert auditor.get(f"/ui/claims/new?patient={office['patient']}").status_code == 403
    for path in ("/ui/claims/new", "/ui/claims/check", "/ui/claims/new/patient"):
        answer = auditor.post(path, data={"csrf_token": token, "intent": "ready", **_form(office)})
        assert answer.status_code == 403, path
    assert "New claim" not in auditor.get("/ui/claims").get_data(as_text=True)
    assert auditor.get("/ui/codes/diagnoses?q=E11.9").status_code == 200  # reference data only
    assert _claims(session) == []
    draft, _ = _saved(api_client("biller"), office, session)
    path = f"/ui/claims/{draft.public_id}/charges"
    assert auditor.get(path).status_code == 403
    answer = auditor.post(
        path, data={"csrf_token": token, "intent": "ready", **_form(office, **{"dx-0": "I10"})}
    )
    assert answer.status_code == 403
    session.rollback()
    assert session.get(Claim, draft.id).diagnoses[0].code == "E119"
    assert "Edit charges" not in auditor.get(f"/ui/claims/{draft.public_id}").get_data(as_text=True)


def test_csrf_is_required_for_saves_and_checks(biller, office, session):
    assert biller.post("/ui/claims/new", data={"intent": "ready", **_form(office)}).status_code == 400
    assert biller.post("/ui/claims/check", data=_form(office)).status_code == 400
    assert _claims(session) == []


def _saved(biller, office, session, **fields):
    token = csrf_token_of(biller, f"/ui/claims/new?patient={office['patient']}")
    answer = biller.post(
        "/ui/claims/new", data={"csrf_token": token, "intent": "draft", **_form(office, **fields)}
    )
    assert answer.status_code == 303, answer.get_data(as_text=True)[:2000]
    return _claims(session)[-1], token


def test_a_draft_is_edited_on_the_same_screen_lines_added_and_moved(biller, office, session):
    claim, token = _saved(biller, office, session)
    assert claim.state == ClaimState.DRAFT
    html = biller.get(f"/ui/claims/{claim.public_id}").get_data(as_text=True)
    assert f'href="/ui/claims/{claim.public_id}/charges"' in html
    screen = biller.get(f"/ui/claims/{claim.public_id}/charges")
    assert screen.status_code == 200
    html = screen.get_data(as_text=True)
    assert 'name="line-1-procedure" type="text" value="36415"' in html.replace("\n", "")
    version = re.search(r'name="version" value="(\d+)"', html).group(1)
    # Line 2 first, a third line, a keyed charge; ready.
    form = _form(
        office,
        **{
            "line-0-procedure": "36415",
            "line-0-diagnosis_pointers": "1",
            "line-0-source": "2",
            "line-1-procedure": "99214",
            "line-1-modifiers": "25",
            "line-1-diagnosis_pointers": "1 2",
            "line-1-source": "1",
            "line-2-procedure": "J1100",
            "line-2-diagnosis_pointers": "1",  # two diagnoses: a line must name its own
            "line-2-charge": "8.00",
            "line-2-units": "2",
            "line-2-ndc": "00009-0047-01",
            "line-2-drug_quantity": "2",
            "line-2-drug_unit": "ML",
        },
    )
    answer = biller.post(
        f"/ui/claims/{claim.public_id}/charges",
        data={"csrf_token": token, "intent": "ready", "version": version, **form},
    )
    assert answer.status_code == 303, answer.get_data(as_text=True)[:3000]
    session.rollback()
    claim = session.get(Claim, claim.id)
    assert [(ln.procedure_code, ln.modifiers, ln.charge_cents) for ln in claim.service_lines] == [
        ("36415", [], 1250),
        ("99214", ["25"], 17500),
        ("J1100", [], 800),
    ]
    assert claim.service_lines[2].ndc == "00009004701"
    assert claim.state == ClaimState.READY
    # The same version again: someone changed it since; nothing is saved.
    stale = biller.post(
        f"/ui/claims/{claim.public_id}/charges",
        data={"csrf_token": token, "intent": "draft", "version": version, **_form(office)},
    )
    assert stale.status_code == 409 and "changed since you read it" in stale.get_data(as_text=True)
    session.rollback()
    assert len(session.get(Claim, claim.id).service_lines) == 3


def test_line_buttons_work_without_javascript_and_save_nothing(biller, office, session):
    token = csrf_token_of(biller, f"/ui/claims/new?patient={office['patient']}")
    form = {"csrf_token": token, **_form(office)}
    moved = biller.post("/ui/claims/new", data={**form, "op": "up-1"})
    assert moved.status_code == 200
    html = moved.get_data(as_text=True).replace("\n", "")
    assert re.search(r'name="line-0-procedure" type="text" value="36415"', html)
    added = biller.post("/ui/claims/new", data={**form, "op": "add"}).get_data(as_text=True)
    assert 'id="line-2"' in added and 'id="line-3"' not in added
    removed = biller.post("/ui/claims/new", data={**form, "op": "remove-0"}).get_data(as_text=True)
    assert 'value="99213"' not in removed and 'id="line-1"' not in removed
    assert _claims(session) == []


def test_a_claim_copied_from_the_patients_last_one(biller, office, session):
    claim, _ = _saved(biller, office, session, **{"line-0-charge": "99.00", "line-0-modifiers": "25"})
    copy = biller.get(f"/ui/claims/new?patient={office['patient']}&copy={claim.public_id}")
    assert copy.status_code == 200
    html = copy.get_data(as_text=True).replace("\n", "")
    assert 'id="f-dx-0" name="dx-0" type="text" value="E11.9"' in html
    assert 'name="line-0-modifiers" type="text" value="25"' in html
    assert 'name="line-0-charge" type="text" value="125.00"' in html  # today's fee, not the old 99.00
    assert f'value="{date.today().isoformat()}"' in html
    assert f'value="{claim.patient_control_number}"' not in html  # a new claim control number
    assert "Start from claim" in biller.get(f"/ui/claims/new?patient={office['patient']}").get_data(
        as_text=True
    )
    other = session.scalar(select(Patient.public_id).where(Patient.public_id != office["patient"]))
    refused = biller.get(f"/ui/claims/new?patient={other}&copy={claim.public_id}")
    assert refused.status_code == 422


def test_the_check_answers_findings_by_field_descriptions_fees_and_total(biller, office, session):
    token = csrf_token_of(biller, f"/ui/claims/new?patient={office['patient']}")
    # Posted line indexes with a gap (charges.js renumbers, but the answer must name what was sent).
    form = _form(office, **{"dx-0": "E11", "line-1-procedure": None, "line-1-diagnosis_pointers": None})
    form.update({"line-3-procedure": "36415", "line-3-diagnosis_pointers": "1"})
    answer = biller.post("/ui/claims/check", data=form, headers={"X-CSRF-Token": token})
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    body = answer.get_json()
    assert body["findings"]["dx-0"][0]["severity"] == "error"
    assert body["counts"]["errors"] >= 1
    assert body["fees"] == {"line-0-charge": "125.00", "line-3-charge": "12.50"}
    assert body["descriptions"]["dx-1"] == "Essential (primary) hypertension"
    assert body["descriptions"]["line-0-procedure"] == "Office visit, est., low"  # the practice's label
    assert body["total"] == "$137.50"
    incomplete = biller.post(
        "/ui/claims/check", data={**form, "line-3-charge": "abc"}, headers={"X-CSRF-Token": token}
    ).get_json()
    assert "line-3-charge" in incomplete["errors"] and incomplete["findings"] == {}
    assert _claims(session) == []


def test_the_check_of_an_edited_claim_keeps_its_hidden_fields(biller, office, session):
    claim, token = _saved(biller, office, session)
    answer = biller.post(
        "/ui/claims/check", data={**_form(office), "claim": claim.public_id}, headers={"X-CSRF-Token": token}
    )
    assert answer.status_code == 200 and answer.get_json()["errors"] == {}


def test_code_lookups_by_code_and_words(biller, office):
    dx = biller.get("/ui/codes/diagnoses?q=diabetes%20without&dos=2026-03-02").get_json()
    assert "E11.9" in [i["code"] for i in dx["items"]] and dx["release"] == "ICD-10-CM FY2026"
    assert biller.get("/ui/codes/diagnoses?q=e11.9").get_json()["items"][0]["code"] == "E11.9"
    assert biller.get("/ui/codes/diagnoses?q=").get_json()["items"] == []
    practice = office["practice"]
    mine = biller.get(f"/ui/codes/procedures?q=office&practice={practice}").get_json()["items"]
    assert mine[0] == {
        "code": "99213",
        "description": "Office visit, est., low",
        "system": "fee schedule",
        "fee": "125.00",
    }
    hcpcs = biller.get("/ui/codes/procedures?q=J110").get_json()["items"]
    assert hcpcs[0]["code"] == "J1100" and hcpcs[0]["description"].startswith("Injection, dexamethasone")
    cpt = biller.get("/ui/codes/procedures?q=99215").get_json()["items"]
    assert cpt[0] == {"code": "99215", "description": None, "system": "CPT", "fee": None}
    assert biller.get("/ui/codes/nothing?q=a").status_code == 404
    assert biller.get("/ui/codes/procedures?q=J110&limit=x").status_code == 200


def test_a_rejected_claim_is_fixed_and_resubmitted_from_the_screen(biller, billing_day, session):
    rejected = session.scalars(
        select(Claim).where(Claim.state == ClaimState.REJECTED).order_by(Claim.id)
    ).first()
    path = f"/ui/claims/{rejected.public_id}/charges"
    assert f'href="{path}"' in biller.get(f"/ui/claims/{rejected.public_id}").get_data(as_text=True)
    html = biller.get(path).get_data(as_text=True)
    assert "Save and mark ready" in html and "rejected this claim" in html
    token = csrf_token_of(biller, path)
    fields = _fields_of(html)
    # A scrub error: the change is kept, the claim stays rejected, the finding is beside the field.
    answer = biller.post(path, data={**fields, "dx-0": "E11", "csrf_token": token, "intent": "ready"})
    assert answer.status_code == 303 and answer.headers["Location"].endswith(path)
    session.rollback()
    claim = session.get(Claim, rejected.id)
    assert (claim.state, claim.diagnoses[0].code) == (ClaimState.REJECTED, "E11")
    html = biller.get(path).get_data(as_text=True)
    assert "category header" in _fx(html, "dx-0")
    # Fixed: corrected in place and ready for the next batch.
    fields = _fields_of(html)
    answer = biller.post(
        path,
        data={
            **fields,
            "dx-0": "E11.9",
            "prior_authorization": "AUTH-1",
            "csrf_token": token,
            "intent": "ready",
        },
    )
    assert answer.status_code == 303 and answer.headers["Location"].endswith(
        f"/ui/claims/{rejected.public_id}"
    )
    session.rollback()
    claim = session.get(Claim, rejected.id)
    assert claim.state == ClaimState.READY and claim.prior_authorization == "AUTH-1"


def _fields_of(html: str) -> dict[str, str]:
    """The values a browser would post from the charge form (inputs and selected options)."""
    form = html.split('id="charge-form"', 1)[1].split("</form>", 1)[0]
    fields: dict[str, str] = {}
    for tag in re.findall(r"<input [^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if name and 'type="submit"' not in tag:
            fields[name.group(1)] = value.group(1) if value else ""
    for name, body in re.findall(r'<select id="[^"]+" name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', body)
        fields[name] = chosen.group(1) if chosen else ""
    fields.pop("csrf_token", None)
    return fields


def test_the_fee_schedule_page_reads_for_billers_and_edits_for_supervisors(api_client, office, session):
    biller, supervisor = api_client("biller"), api_client("billing_supervisor")
    html = biller.get("/ui/fee-schedule").get_data(as_text=True)
    assert "Office visit, est., low" in html and "$125.00" in html and "Save fee" not in html
    token = csrf_token_of(supervisor, "/ui/fee-schedule")
    answer = supervisor.post(
        "/ui/fee-schedule", data={"csrf_token": token, "procedure": "99214", "modifier": "", "charge": "$180"}
    )
    assert answer.status_code == 303
    assert "99214: $180.00 (changed)." in supervisor.get(answer.headers["Location"]).get_data(as_text=True)
    bad = supervisor.post("/ui/fee-schedule", data={"csrf_token": token, "procedure": "9921", "charge": "1"})
    assert bad.status_code == 422 and "5-character CPT or HCPCS" in bad.get_data(as_text=True)
    money = supervisor.post(
        "/ui/fee-schedule", data={"csrf_token": token, "procedure": "99215", "charge": "x"}
    )
    assert money.status_code == 422 and "Enter an amount" in money.get_data(as_text=True)
    deleted = supervisor.post(
        "/ui/fee-schedule/delete", data={"csrf_token": token, "procedure": "36415", "modifier": ""}
    )
    assert deleted.status_code == 303
    btoken = csrf_token_of(biller, "/ui/claims")
    refused = biller.post(
        "/ui/fee-schedule", data={"csrf_token": btoken, "procedure": "99215", "charge": "1"}
    )
    assert refused.status_code == 403
    session.rollback()
    from claims_server.models import FeeScheduleEntry

    assert {(e.procedure_code, e.charge_cents) for e in session.scalars(select(FeeScheduleEntry))} == {
        ("99213", 12500),
        ("99214", 18000),
    }


# -- review of issue 16: units, NOC descriptions, the office's date, pointers ---------------------


def test_an_empty_charge_is_the_fee_times_the_units_and_the_hint_says_so(biller, office, session):
    token = csrf_token_of(biller, f"/ui/claims/new?patient={office['patient']}")
    form = _form(office, **{"line-1-units": "3"})
    body = biller.post("/ui/claims/check", data=form, headers={"X-CSRF-Token": token}).get_json()
    assert body["fees"]["line-1-charge"] == "37.50"
    assert body["fee_texts"]["line-1-charge"] == "Fee schedule: $12.50 \N{MULTIPLICATION SIGN} 3 = $37.50"
    assert body["fee_texts"]["line-0-charge"] == "Fee schedule: $125.00"
    assert body["total"] == "$162.50"
    answer = biller.post("/ui/claims/new", data={"csrf_token": token, "intent": "ready", **form})
    assert answer.status_code == 303, answer.get_data(as_text=True)[:3000]
    (claim,) = _claims(session)
    assert [(ln.units, ln.charge_cents) for ln in claim.service_lines] == [("1", 12500), ("3", 3750)]
    assert claim.total_charge_cents == 16250 and claim.state == ClaimState.READY


def test_anesthesia_minutes_are_never_priced_from_the_fee_schedule(biller, office, session):
    token = csrf_token_of(biller, f"/ui/claims/new?patient={office['patient']}")
    form = _form(office, **{"line-1-units": "30", "line-1-unit_basis": "MJ"})
    answer = biller.post("/ui/claims/new", data={"csrf_token": token, "intent": "draft", **form})
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert "anesthesia minutes (MJ) are not priced from the fee schedule" in _fx(html, "line-1-charge")
    assert 'name="line-1-unit_basis" value="MJ"' in html  # the hidden basis comes back with the line
    assert _claims(session) == []


def test_a_copy_charges_fee_times_units_and_keeps_charges_the_schedule_lacks(biller, office, session):
    claim, _ = _saved(
        biller,
        office,
        session,
        **{
            "line-1-units": "3",
            "line-1-charge": "30.00",
            "line-2-procedure": "93000",  # not in the fee schedule
            "line-2-units": "2",
            "line-2-charge": "44.00",
            "line-2-diagnosis_pointers": "1",
        },
    )
    html = biller.get(f"/ui/claims/new?patient={office['patient']}&copy={claim.public_id}").get_data(
        as_text=True
    )
    html = html.replace("\n", "")
    assert 'name="line-0-charge" type="text" value="125.00"' in html
    assert 'name="line-1-charge" type="text" value="37.50"' in html  # $12.50 x 3, not one unit's fee
    assert 'name="line-2-charge" type="text" value="44.00"' in html  # the copied claim's own charge


def test_a_noc_code_gets_its_description_beside_it_and_is_made_ready(biller, office, session):
    token = csrf_token_of(biller, f"/ui/claims/new?patient={office['patient']}")
    form = _form(office, **{"line-1-procedure": "J3490", "line-1-charge": "40.00"})
    answer = biller.post("/ui/claims/new", data={"csrf_token": token, "intent": "ready", **form})
    assert answer.status_code == 303
    (claim,) = _claims(session)
    assert claim.state == ClaimState.DRAFT
    path = answer.headers["Location"]
    html = biller.get(path).get_data(as_text=True)
    assert '<label for="f-line-1-description">Description (SV101-7)</label>' in html
    assert "J3490 is a not-otherwise-classified code" in _fx(html, "line-1-description")
    assert re.search(r'id="f-line-1-description"[^>]*aria-invalid="true"', html)
    assert 'id="f-line-0-description"' in html  # every line has the field, keyboard reachable
    fields = {**_fields_of(html), "line-1-description": "Ondansetron 4 mg injection"}
    answer = biller.post(path, data={**fields, "csrf_token": token, "intent": "ready"})
    assert answer.status_code == 303, answer.get_data(as_text=True)[:3000]
    session.rollback()
    claim = session.get(Claim, claim.id)
    assert claim.state == ClaimState.READY
    assert claim.service_lines[1].description == "Ondansetron 4 mg injection"
    # Shown again on the edit screen (and kept when lines move).
    html = biller.get(f"/ui/claims/{claim.public_id}/charges").get_data(as_text=True)
    assert 'name="line-1-description" type="text" value="Ondansetron 4 mg injection"' in html


def test_today_is_the_offices_date_not_the_servers(app, biller, office, session, monkeypatch):
    import dataclasses
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from claims_server.app import state

    # Of UTC-12 and UTC+14 (26 hours apart), one is on another date than the server right now.
    zone = next(z for z in ("Etc/GMT+12", "Etc/GMT-14") if datetime.now(ZoneInfo(z)).date() != date.today())
    office_day = datetime.now(ZoneInfo(zone)).date().isoformat()
    monkeypatch.setattr(
        state(app), "settings", dataclasses.replace(state(app).settings, SCHEDULER_TIMEZONE=zone)
    )
    html = biller.get(f"/ui/claims/new?patient={office['patient']}").get_data(as_text=True)
    assert f'name="service_date" type="date" value="{office_day}"' in html
    claim, _ = _saved(biller, office, session, service_date=office_day)
    copy = biller.get(f"/ui/claims/new?patient={office['patient']}&copy={claim.public_id}")
    assert f'name="service_date" type="date" value="{office_day}"' in copy.get_data(as_text=True)


def test_a_line_without_pointers_needs_them_when_the_claim_has_several_diagnoses(biller, office, session):
    token = csrf_token_of(biller, f"/ui/claims/new?patient={office['patient']}")
    form = _form(office, **{"line-1-diagnosis_pointers": ""})
    answer = biller.post("/ui/claims/new", data={"csrf_token": token, "intent": "draft", **form})
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert "Enter the diagnoses this line treats (1 to 2" in _fx(html, "line-1-diagnosis_pointers")
    assert re.search(r'id="f-line-1-diagnosis_pointers"[^>]*aria-invalid="true"', html)
    assert _claims(session) == []
    checked = biller.post("/ui/claims/check", data=form, headers={"X-CSRF-Token": token}).get_json()
    assert "line-1-diagnosis_pointers" in checked["errors"]


def test_with_one_diagnosis_an_empty_pointer_points_at_it_with_a_warning(biller, office, session):
    token = csrf_token_of(biller, f"/ui/claims/new?patient={office['patient']}")
    form = _form(office, **{"dx-1": "", "line-0-diagnosis_pointers": "1", "line-1-diagnosis_pointers": ""})
    checked = biller.post("/ui/claims/check", data=form, headers={"X-CSRF-Token": token}).get_json()
    assert checked["errors"] == {}
    assert checked["findings"]["line-1-diagnosis_pointers"] == [
        {
            "severity": "warning",
            "message": "No pointer given: pointing at diagnosis 1.",
            "hint": None,
            "rule_id": "UI_POINTER_DEFAULT",
        }
    ]
    assert checked["counts"]["warnings"] >= 1
    answer = biller.post("/ui/claims/new", data={"csrf_token": token, "intent": "ready", **form})
    assert answer.status_code == 303
    (claim,) = _claims(session)
    assert claim.service_lines[1].pointer_positions == [1]
