"""The fee schedule over the API and the CLI: read, upsert, replace, delete; refusals name the entry
(or CSV row) and field and change nothing; billers read, supervisors write."""

from __future__ import annotations

import time

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


def test_a_field_over_the_csv_limit_is_refused_naming_its_row_not_a_traceback(
    api_client, cli, tmp_path, session
):
    from claims_server.errors import Unprocessable
    from claims_server.practice.fee_schedule import read_fee_csv

    _practice(api_client("admin"))
    huge = tmp_path / "huge.csv"
    huge.write_bytes(b"procedure,charge,description\n99213,1.00,ok\n99214,2.00," + b"x" * 200_000 + b"\n")
    with pytest.raises(Unprocessable) as refused:
        read_fee_csv(huge.read_bytes())
    assert refused.value.errors == [
        {
            "row": 3,
            "field": None,
            "message": "cannot be read as CSV: a field is longer than the csv limit (128 KiB)",
        }
    ]
    result = cli("fee-schedule", "import", str(huge))
    assert result.exit_code == 2, result.output
    assert "row 3: cannot be read as CSV" in result.output and "Traceback" not in result.output
    session.rollback()
    assert session.scalars(select(FeeScheduleEntry)).all() == []


@pytest.mark.parametrize("command", [["fee-schedule", "list"], ["fee-schedule", "import"]])
def test_a_configuration_error_is_one_line(cli, monkeypatch, tmp_path, command):
    csv_file = tmp_path / "fees.csv"
    csv_file.write_text("procedure,charge\n99213,1.00\n", encoding="utf-8")
    monkeypatch.setenv("DATABASE_URL", "mysql://root@127.0.0.1/test")
    result = cli(*command, *([str(csv_file)] if command[-1] == "import" else []))
    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [
        "configuration error: DATABASE_URL: " + result.output.split("DATABASE_URL: ", 1)[1].strip()
    ]


def test_default_charge_is_fee_times_units_rounded_half_up_and_never_for_minutes():
    from decimal import Decimal

    from claims_server.practice.fee_schedule import default_charge_cents, units_of

    assert default_charge_cents(1250, Decimal(3), "UN") == 3750
    assert default_charge_cents(1250, units_of(""), None) == 1250  # blank units are 1
    assert default_charge_cents(333, units_of("0.5"), "UN") == 167  # 166.5 cents: half up
    assert default_charge_cents(1001, units_of("1.125"), "UN") == 1126  # 1126.125
    assert default_charge_cents(999, units_of("0.001"), "UN") == 1
    assert default_charge_cents(None, Decimal(2), "UN") is None  # no fee: key the charge
    assert default_charge_cents(5000, Decimal(30), "MJ") is None  # anesthesia minutes
    assert units_of("abc") is None and units_of("-1") is None and units_of("0") is None
    assert default_charge_cents(1250, units_of("x"), "UN") is None


def test_two_saves_at_once_do_not_collide_on_the_same_new_code(app, session):
    """Two sessions both read a schedule without 99215 and both add it: the second waits for the
    first's commit and updates the entry instead of failing on the unique key."""
    import threading

    from sqlalchemy import event

    from claims_server.app import state
    from claims_server.db import make_engine, make_session_factory
    from claims_server.models import Practice
    from claims_server.practice.fee_schedule import save_fees
    from claims_server.security.principal import acting_as, system_principal
    from tests.integration.claims.support import seed

    seed(session)
    session.commit()
    practice_id = session.scalar(select(Practice.id))
    first = state(app).session_factory()
    other_engine = make_engine(str(state(app).engine.url.render_as_string(hide_password=False)))
    inserting = threading.Event()

    @event.listens_for(other_engine, "before_cursor_execute")
    def _seen(conn, cursor, statement, *args):  # the second save has read and is now inserting
        if statement.lstrip().upper().startswith("INSERT INTO FEE_SCHEDULE_ENTRIES"):
            inserting.set()

    outcome: dict[str, object] = {}

    def second_save() -> None:
        with make_session_factory(other_engine)() as other, acting_as(system_principal("test:second")):
            try:
                change = save_fees(
                    other, other.get(Practice, practice_id), [{"procedure": "99215", "charge": 21000}]
                )
                other.commit()
                outcome["change"] = change
            except Exception as exc:  # reported below with its type
                other.rollback()
                outcome["error"] = exc

    try:
        with acting_as(system_principal("test:first")):
            save_fees(first, first.get(Practice, practice_id), [{"procedure": "99215", "charge": 20000}])
        thread = threading.Thread(target=second_save)
        thread.start()
        assert inserting.wait(20), "the second save never reached its INSERT"
        time.sleep(0.3)  # let it block on the first one's uncommitted row / write lock
        first.commit()
        thread.join(60)
        assert "error" not in outcome, repr(outcome.get("error"))
        change = outcome["change"]
        assert (change.created, change.updated, change.deleted) == (0, 1, 0)
        session.rollback()
        rows = session.execute(
            select(FeeScheduleEntry.procedure_code, FeeScheduleEntry.charge_cents).where(
                FeeScheduleEntry.procedure_code == "99215"
            )
        ).all()
        assert rows == [("99215", 21000)]  # the later save wins, as one after the other would
    finally:
        first.close()
        other_engine.dispose()
