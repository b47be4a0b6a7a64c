"""The schedule over HTTP: visits booked through the API feed the nightly eligibility job."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from claims_server.eligibility.services import coverages_to_check
from claims_server.models import Claim, Coverage, Encounter
from tests.integration.claims.support import claim_json


def test_a_visit_booked_through_the_api_is_on_the_schedule_and_checked_the_night_before(
    ids, api, session
) -> None:
    tomorrow = date.today() + timedelta(days=1)
    booked = api.post(
        f"/api/v1/patients/{ids['patient']}/encounters",
        json={"date_of_service": tomorrow.isoformat(), "rendering_provider": ids["rendering_npi"]},
    )
    assert booked.status_code == 201, booked.get_json()
    visit = booked.get_json()
    assert visit["patient"] == ids["patient"]
    assert visit["rendering_provider"] == ids["rendering_id"]
    assert visit["place_of_service"] == "11"

    day = api.get(f"/api/v1/encounters?date={tomorrow.isoformat()}&practice={ids['practice']}")
    assert day.status_code == 200
    assert [e["id"] for e in day.get_json()["items"]] == [visit["id"]]
    assert api.get(f"/api/v1/encounters?date={date.today().isoformat()}").get_json()["items"] == []
    assert [
        e["id"] for e in api.get(f"/api/v1/patients/{ids['patient']}/encounters").get_json()["items"]
    ] == [visit["id"]]
    # The nightly job's input: the booked patient's coverage, for tomorrow.
    coverage_id = session.scalar(select(Coverage.id).where(Coverage.public_id == ids["coverage"]))
    assert (coverage_id, tomorrow) in set(coverages_to_check(session, tomorrow))

    assert api.delete(f"/api/v1/encounters/{visit['id']}").status_code == 204
    assert api.get(f"/api/v1/encounters/{visit['id']}").status_code == 404


def test_bad_visits_are_422_naming_the_field_and_a_billed_visit_stays(ids, api, session) -> None:
    unknown = api.post(
        f"/api/v1/patients/{ids['patient']}/encounters",
        json={"date_of_service": "2026-12-08", "rendering_provider": "1234567893"},
    )
    assert unknown.status_code == 422
    assert unknown.get_json()["errors"][0]["field"] == "rendering_provider"
    bad = api.post(
        f"/api/v1/patients/{ids['patient']}/encounters",
        json={
            "date_of_service": "08/12/2026",
            "rendering_provider": ids["rendering_npi"],
            "place_of_service": "1",
        },
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.get_json()["errors"]} >= {"date_of_service", "place_of_service"}
    assert api.get("/api/v1/encounters").status_code == 422  # the day is required
    assert session.scalar(select(Encounter.id)) is None  # nothing half-made

    visit = api.post(
        f"/api/v1/patients/{ids['patient']}/encounters",
        json={"date_of_service": "2026-12-01", "rendering_provider": ids["rendering_id"]},
    ).get_json()
    created = api.post("/api/v1/claims", json=claim_json(ids))
    assert created.status_code == 201, created.get_json()
    claim = session.scalar(select(Claim).where(Claim.public_id == created.get_json()["id"]))
    claim.encounter_id = session.scalar(select(Encounter.id).where(Encounter.public_id == visit["id"]))
    session.commit()
    refused = api.delete(f"/api/v1/encounters/{visit['id']}")
    assert refused.status_code == 409
    assert api.get(f"/api/v1/encounters/{visit['id']}").status_code == 200


def test_auditors_read_the_schedule_but_cannot_book(ids, api_client) -> None:
    auditor = api_client("auditor")
    assert auditor.get("/api/v1/encounters?date=2026-12-08").status_code == 200
    refused = auditor.post(
        f"/api/v1/patients/{ids['patient']}/encounters",
        json={"date_of_service": "2026-12-08", "rendering_provider": ids["rendering_npi"]},
    )
    assert refused.status_code == 403
