"""``claims-server claims import FILE.csv``: counts and total printed, exit 0; the same file again imports
nothing; a refused file exits 2 naming each line and column; a file over the limit is refused unread."""

from __future__ import annotations

import json
import time

from click.testing import CliRunner
from sqlalchemy import func, select

from claims_server.cli import main
from claims_server.models import ChargeImport, Claim
from tests.charge_files import HEADER, charge_csv_bytes, charge_rows, write_charge_csv
from tests.integration.test_cli import run_cli


def _run(monkeypatch, database_url, tmp_path, *args: str):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    return CliRunner().invoke(main, list(args))


def _dollars(cents: int) -> str:
    return f"${cents // 100:,}.{cents % 100:02d}"


def test_import_on_a_fresh_folder_and_database_then_the_same_file_again(tmp_path, monkeypatch):
    from claims_server.db import make_engine, make_session_factory
    from claims_server.demo_seed import seed_practice
    from claims_server.security.principal import acting_as, system_principal

    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    env = {"INSTANCE_PATH": str(tmp_path / "instance"), "DATABASE_URL": url}
    assert run_cli("db", "upgrade", env=env).returncode == 0
    monkeypatch.setenv("INSTANCE_PATH", env["INSTANCE_PATH"])
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory() as session, acting_as(system_principal("test:seed")):
        seed_practice(session)
        session.commit()
        facts = write_charge_csv(session, tmp_path / "charges.csv", claims=20)
    first = run_cli("claims", "import", str(tmp_path / "charges.csv"), env=env)
    assert first.returncode == 0, first.stderr
    line = first.stdout.strip()
    assert line.startswith("imported ")
    assert (
        f"20 claims, {facts.lines} lines (20 ready, 0 draft), total {_dollars(facts.total_charge_cents)}"
        in line
    )
    again = run_cli("claims", "import", str(tmp_path / "charges.csv"), "--json", env=env)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["status"] == "duplicate" and report["claims"] == 20
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Claim)) == 20
        assert session.scalar(select(func.count()).select_from(ChargeImport)) == 1
        assert session.scalar(select(func.sum(Claim.total_charge_cents))) == facts.total_charge_cents
    engine.dispose()


def test_dry_run_and_json(monkeypatch, database_url, tmp_path, session, ids):
    facts = write_charge_csv(session, tmp_path / "c.csv", claims=3)
    dry = _run(monkeypatch, database_url, tmp_path, "claims", "import", str(tmp_path / "c.csv"), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.startswith(f"dry run: would import 3 claims, {facts.lines} lines")
    as_json = _run(
        monkeypatch,
        database_url,
        tmp_path,
        "claims",
        "import",
        str(tmp_path / "c.csv"),
        "--dry-run",
        "--json",
    )
    assert json.loads(as_json.stdout)["status"] == "dry_run"
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Claim)) == 0


def test_a_refused_file_exits_2_naming_each_line_and_column(
    monkeypatch, database_url, tmp_path, session, ids
):
    rows, _ = charge_rows(session, claims=3)
    rows[1][HEADER.index("service_date")] = "2024-02-30"
    rows[3][HEADER.index("procedure")] = "Q9899"
    (tmp_path / "bad.csv").write_bytes(charge_csv_bytes(rows))
    refused = _run(monkeypatch, database_url, tmp_path, "claims", "import", str(tmp_path / "bad.csv"))
    assert refused.exit_code == 2
    assert "line 2, column service_date: Not a valid date." in refused.stderr
    assert "line 4, column procedure: Procedure Q9899 is not a HCPCS Level II code." in refused.stderr
    assert "Traceback" not in refused.output
    account = rows[1][HEADER.index("patient_account")]
    assert account not in refused.output
    as_json = _run(
        monkeypatch, database_url, tmp_path, "claims", "import", str(tmp_path / "bad.csv"), "--json"
    )
    assert as_json.exit_code == 2
    problem = json.loads(as_json.stderr)
    assert {(e["line"], e["column"]) for e in problem["errors"]} == {(2, "service_date"), (4, "procedure")}
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Claim)) == 0


def test_a_200_mb_file_is_refused_on_its_size_without_being_read(monkeypatch, database_url, tmp_path, ids):
    huge = tmp_path / "huge.csv"
    with huge.open("wb") as out:  # sparse: 200 MB on paper, nothing on disk
        out.truncate(200 * 1024 * 1024)
    start = time.perf_counter()
    refused = _run(monkeypatch, database_url, tmp_path, "claims", "import", str(huge))
    assert refused.exit_code == 2
    assert "exceeds the limit of" in refused.stderr
    assert time.perf_counter() - start < 5


def test_an_empty_file_and_one_of_another_encoding(monkeypatch, database_url, tmp_path, session, ids):
    (tmp_path / "empty.csv").write_bytes(b"")
    empty = _run(monkeypatch, database_url, tmp_path, "claims", "import", str(tmp_path / "empty.csv"))
    assert empty.exit_code == 2 and "the file is empty" in empty.stderr
    rows, _ = charge_rows(session, claims=1)
    rows[1][HEADER.index("patient_name")] = "Zoë, Ann"
    (tmp_path / "latin1.csv").write_bytes(charge_csv_bytes(rows).decode().encode("latin-1"))
    latin = _run(monkeypatch, database_url, tmp_path, "claims", "import", str(tmp_path / "latin1.csv"))
    assert latin.exit_code == 2
    assert "line 2, column patient_name: is not valid UTF-8" in latin.stderr


def test_a_configuration_error_is_one_line_not_a_traceback(monkeypatch, tmp_path):
    csv_file = tmp_path / "charges.csv"
    csv_file.write_text(",".join(HEADER) + "\n", encoding="utf-8")
    result = _run(monkeypatch, "mysql://root@127.0.0.1/test", tmp_path, "claims", "import", str(csv_file))
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("configuration error: DATABASE_URL: "), result.output
