"""The fee schedule over the API and the CLI: read, upsert, replace, delete; refusals name the entry
(or CSV row) and field and change nothing; billers read, supervisors write."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from claims_server.models import AuditEvent, FeeScheduleEntry
from tests.integration.api.test_resources_api import PRACTICE

ENTRIES = [
    {"procedure": "99213", "modifier": "", "charge": "125.00", "description": "Office visit, est., low"},
    {"procedure": "93000", "modifier": "", "charge": "60.00", "description": None},
    {"procedure": "93000", "modifier": "26", "charge": "20.00", "description": "ECG interpretation"},
]


def _practice(admin) -> str:
    answer = admin.post("/api/v1/practices", json=PRACTICE)
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["id"]


def test_a_supervisor_sets_prices_and_a_biller_reads_them(api_client, session):
    practice = _practice(api_client("admin"))
    supervisor, biller = api_client("billing_supervisor"), api_client("biller")
    put = supervisor.put("/api/v1/fee-schedule", json={"entries": ENTRIES})
    assert put.status_code == 200, put.get_json()
    body = put.get_json()
    assert (body["created"], body["updated"], body["deleted"]) == (3, 0, 0)
    assert body["practice"] == practice
    read = biller.get(f"/api/v1/fee-schedule?practice={practice}")
    assert read.status_code == 200
    assert read.get_json()["items"] == [
        {"procedure": "93000", "modifier": "", "charge": "60.00", "description": None},
        {"procedure": "93000", "modifier": "26", "charge": "20.00", "description": "ECG interpretation"},
        {"procedure": "99213", "modifier": "", "charge": "125.00", "description": "Office visit, est., low"},
    ]
    assert session.scalars(select(FeeScheduleEntry.charge_cents).order_by(FeeScheduleEntry.id)).all() == [
        12500,
        6000,
        2000,
    ]
    # Upsert: one changed, one new, the rest kept.
    again = supervisor.put(
        "/api/v1/fee-schedule",
        json={"entries": [{"procedure": "99213", "charge": "130"}, {"procedure": "36415", "charge": "12.5"}]},
    )
    assert (again.get_json()["created"], again.get_json()["updated"], again.get_json()["deleted"]) == (
        1,
        1,
        0,
    )
    assert len(again.get_json()["items"]) == 4
    # Replace: exactly the list.
    replaced = supervisor.put(
        "/api/v1/fee-schedule",
        json={"replace": True, "entries": [{"procedure": "99214", "charge": "175.00"}]},
    )
    assert replaced.get_json()["deleted"] == 4
    assert [i["procedure"] for i in replaced.get_json()["items"]] == ["99214"]
    assert biller.put("/api/v1/fee-schedule", json={"entries": ENTRIES}).status_code == 403
    assert biller.delete("/api/v1/fee-schedule/99214").status_code == 403
    session.rollback()
    events = session.scalars(select(AuditEvent.event_type).where(AuditEvent.entity_id == practice)).all()
    assert events.count("fee_schedule.update") == 3


def test_a_bad_entry_is_named_by_index_and_field_and_nothing_changes(api_client, session):
    _practice(api_client("admin"))
    supervisor = api_client("billing_supervisor")
    assert supervisor.put("/api/v1/fee-schedule", json={"entries": ENTRIES}).status_code == 200
    cases = [
        ([ENTRIES[0], {"procedure": "9921", "charge": "1.00"}], "entries.1.procedure"),
        ([ENTRIES[0], {"procedure": "99214", "charge": 175}], "entries.1.charge"),
        ([{"procedure": "99214", "charge": "-5.00"}], "entries.0.charge"),
        ([{"procedure": "99214", "modifier": "2", "charge": "5.00"}], "entries.0.modifier"),
        ([ENTRIES[0], ENTRIES[0]], "entries.1.procedure"),
        ([{"procedure": "99214", "charge": "5.00", "description": "a*b"}], "entries.0.description"),
    ]
    for entries, field in cases:
        answer = supervisor.put("/api/v1/fee-schedule", json={"replace": True, "entries": entries})
        assert answer.status_code == 422, (entries, answer.get_json())
        assert answer.content_type == "application/problem+json"
        assert field in [e["field"] for e in answer.get_json()["errors"]], answer.get_json()
    session.rollback()
    assert len(session.scalars(select(FeeScheduleEntry)).all()) == 3


def test_delete_one_entry_by_code_and_modifier(api_client):
    practice = _practice(api_client("admin"))
    supervisor = api_client("billing_supervisor")
    supervisor.put("/api/v1/fee-schedule", json={"entries": ENTRIES})
    assert supervisor.delete(f"/api/v1/fee-schedule/93000?practice={practice}&modifier=26").status_code == 204
    assert supervisor.delete("/api/v1/fee-schedule/93000?modifier=26").status_code == 404
    assert supervisor.delete("/api/v1/fee-schedule/93000").status_code == 204
    items = supervisor.get("/api/v1/fee-schedule").get_json()["items"]
    assert [(i["procedure"], i["modifier"]) for i in items] == [("99213", "")]


def test_the_practice_must_be_named_when_there_are_several(api_client):
    admin = api_client("admin")
    none_yet = admin.get("/api/v1/fee-schedule")
    assert none_yet.status_code == 422 and none_yet.get_json()["errors"][0]["field"] == "practice"
    first = _practice(admin)
    admin.post("/api/v1/practices", json={**PRACTICE, "name": "Second Clinic"})
    several = admin.get("/api/v1/fee-schedule")
    assert several.status_code == 422 and several.get_json()["errors"][0]["field"] == "practice"
    assert admin.get(f"/api/v1/fee-schedule?practice={first}").status_code == 200
    assert admin.get("/api/v1/fee-schedule?practice=" + "0" * 32).status_code == 404


def test_the_routes_are_in_the_openapi_document(client):
    doc = client.get("/openapi.json").get_json()
    assert {"get", "put"} <= set(doc["paths"]["/api/v1/fee-schedule"])
    assert "delete" in doc["paths"]["/api/v1/fee-schedule/{procedure}"]
    body = doc["paths"]["/api/v1/fee-schedule"]["put"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"].endswith("/FeeSchedulePut")


# -- the CLI ------------------------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch, database_url, tmp_path):
    from click.testing import CliRunner

    from claims_server.cli import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    return lambda *args: CliRunner().invoke(main, list(args))


def test_cli_imports_a_csv_and_lists_it(api_client, cli, tmp_path):
    _practice(api_client("admin"))
    good = tmp_path / "fees.csv"
    good.write_text(
        "procedure,modifier,charge,description\n"
        "99213,,125.00,Office visit\n"
        '93000,26,20.00,"ECG, interpretation"\n'
        "\n"
        "j1100,,3.5,\n",
        encoding="utf-8",
    )
    result = cli("fee-schedule", "import", str(good))
    assert result.exit_code == 0, result.output
    assert "3 created, 0 updated, 0 deleted" in result.output
    listed = cli("fee-schedule", "list")
    assert listed.exit_code == 0
    assert listed.output.splitlines() == [
        "procedure,modifier,charge,description",
        '93000,26,20.00,"ECG, interpretation"',
        "99213,,125.00,Office visit",
        "J1100,,3.50,",
    ]
    # Re-importing the same file changes nothing.
    assert "0 created, 0 updated, 0 deleted" in cli("fee-schedule", "import", str(good)).output


def test_cli_refuses_the_whole_file_naming_row_and_field(api_client, cli, tmp_path, session):
    _practice(api_client("admin"))
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "procedure,modifier,charge,description\n99213,,125.00,ok\n99214,,12.345,too precise\n9921,,1.00,x\n",
        encoding="utf-8",
    )
    result = cli("fee-schedule", "import", str(bad))
    assert result.exit_code == 2
    assert "row 3, charge:" in result.output and "row 4, procedure:" in result.output
    session.rollback()
    assert session.scalars(select(FeeScheduleEntry)).all() == []
    wrong_columns = tmp_path / "columns.csv"
    wrong_columns.write_text("code,price\n99213,1.00\n", encoding="utf-8")
    result = cli("fee-schedule", "import", str(wrong_columns))
    assert result.exit_code == 2 and "row 1 (header): unknown column(s) code, price" in result.output
    short_row = tmp_path / "short.csv"
    short_row.write_text("procedure,charge\n99213\n", encoding="utf-8")
    result = cli("fee-schedule", "import", str(short_row))
    assert result.exit_code == 2 and "row 2: has 1 fields, the header 2" in result.output
    binary = tmp_path / "latin1.csv"
    binary.write_bytes(b"procedure,charge\n99213,1.00\n99214,\xe9\n")
    result = cli("fee-schedule", "import", str(binary))
    assert result.exit_code == 2 and "row 3" in result.output
