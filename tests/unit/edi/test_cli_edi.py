"""``claims-server edi`` commands: exit codes, JSON shape, no traceback, fast light start."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from claims_server.cli_edi import edi_group, transaction_kind
from tests.unit.edi.test_validate import clean_837p, recount, replace

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    # BHT04 is 2024-06-03: not in the future for any clock this runs on.
    good = tmp_path / "good.x12"
    good.write_text(recount(clean_837p()))
    bad = tmp_path / "bad.x12"
    bad.write_text(recount(replace(clean_837p(), "CLM*PCN0001*102*", "CLM*PCN0001*100*")))
    not_x12 = tmp_path / "notes.txt"
    not_x12.write_text("Dear billing office, please find attached ...\n")
    broken_iea = tmp_path / "iea.x12"
    broken_iea.write_text(recount(replace(clean_837p(), "IEA*1*000000001", "IEA*1*000000002")))
    return {"good": good, "bad": bad, "not_x12": not_x12, "iea": broken_iea}


def invoke(*args: str):
    return CliRunner().invoke(edi_group, list(args))


def test_validate_exit_codes(files: dict[str, Path]) -> None:
    assert invoke("validate", str(files["good"])).exit_code == 0
    assert invoke("validate", str(files["bad"])).exit_code == 1
    assert invoke("validate", str(files["not_x12"])).exit_code == 2
    assert invoke("validate", str(files["good"].parent / "missing.x12")).exit_code == 2


def test_validate_json(files: dict[str, Path]) -> None:
    result = invoke("validate", str(files["bad"]), "--json")
    data = json.loads(result.output)
    assert data["valid"] is False
    assert data["transaction_sets"][0]["st01"] == "837"
    (finding,) = [f for f in data["findings"] if f["code"] == "X12.CLM02_BALANCE"]
    for key in ("severity", "code", "message", "segment", "segment_position", "loop", "element", "value"):
        assert key in finding
    assert (finding["segment"], finding["element"], finding["value"]) == ("CLM", "CLM02", "100.00")


def test_validate_not_x12_json_is_structured(files: dict[str, Path]) -> None:
    result = invoke("validate", str(files["not_x12"]), "--json")
    assert result.exit_code == 2
    data = json.loads(result.output)
    assert data["valid"] is False and data["readable"] is False
    assert data["findings"][0]["code"] == "X12.ISA_MISSING"
    assert "Traceback" not in result.output


def test_validate_human_output_has_coordinates(files: dict[str, Path]) -> None:
    result = invoke("validate", str(files["bad"]))
    line = next(x for x in result.output.splitlines() if "X12.CLM02_BALANCE" in x)
    assert "CLM@19" in line and "loop 2300" in line and "CLM02" in line and "ST 0001" in line


def test_parse_dispatch_table() -> None:
    assert transaction_kind("835", "005010X221A1", False) == "835"
    assert transaction_kind("277", "005010X214", False) == "277CA"
    assert transaction_kind("277", "005010X212", False) is None
    assert transaction_kind("", "", True) == "TA1"
    assert transaction_kind("837", "005010X222A1", False) == "837"


def test_parse_837_and_not_x12(files: dict[str, Path]) -> None:
    result = invoke("parse", str(files["good"]), "--json")
    assert result.exit_code == 0, result.output
    assert "PCN0001" in result.output
    result = invoke("parse", str(files["not_x12"]), "--json")
    assert result.exit_code == 2
    assert json.loads(result.output)["error"]["code"] == "ISA_MISSING"


def test_ack_999_and_ta1(files: dict[str, Path]) -> None:
    result = invoke("ack", str(files["bad"]))
    assert result.exit_code == 1
    assert "ST*999*" in result.output and "AK2*837*0001" in result.output and "IK5*R" in result.output
    assert "CTX*CLM01:PCN0001" in result.output
    accepted = invoke("ack", str(files["good"]))
    assert accepted.exit_code == 0 and "IK5*A" in accepted.output
    ta1 = invoke("ack", str(files["iea"]))
    assert "TA1*000000001*" in ta1.output and "*R*001" in ta1.output
    assert invoke("ack", str(files["not_x12"])).exit_code == 2


def test_command_starts_fast_without_flask_or_sqlalchemy(files: dict[str, Path]) -> None:
    script = textwrap.dedent(f"""
        import sys
        from claims_server.cli_edi import edi_group
        try:
            edi_group(["validate", {str(files["good"])!r}, "--json"])
        except SystemExit as exc:
            code = exc.code
        print("RESULT", code, "flask" in sys.modules, "sqlalchemy" in sys.modules, "celery" in sys.modules)
    """)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    elapsed = time.perf_counter() - start
    assert done.stdout.strip().splitlines()[-1] == "RESULT 0 False False False", done.stderr
    assert elapsed < 3.0


def test_ack_rejects_only_the_bad_transaction_set(tmp_path: Path) -> None:
    from tests.unit.edi.test_validate import CLAIM, HEADER_837P, LINES, SUBSCRIBER, interchange, transaction

    body = [*HEADER_837P, *SUBSCRIBER, *CLAIM, *LINES]
    bad = [s.replace("SV1*HC:80053*42", "SV1*HC:80053*4X") for s in body]
    path = tmp_path / "two.x12"
    path.write_text(recount(interchange(transaction(body, st02="0001"), transaction(bad, st02="0002"))))
    result = invoke("ack", str(path))
    assert result.exit_code == 1
    ack = result.output
    first, second = ack.split("AK2*")[1:]
    assert first.startswith("837*0001") and "IK5*A" in first and "IK3" not in first
    assert second.startswith("837*0002") and "IK4*2**6*4X" in second and "IK5*R" in second
    assert "AK9*P*2*2*1" in ack


def test_parse_reads_back_our_own_999_and_ta1(files: dict[str, Path], tmp_path: Path) -> None:
    ack_999 = tmp_path / "ack.999"
    ack_999.write_text(invoke("ack", str(files["bad"])).output)
    parsed = invoke("parse", str(ack_999), "--json")
    assert parsed.exit_code == 0, parsed.output
    assert json.loads(parsed.output)["transaction_set"] == "999"
    ta1 = tmp_path / "ack.ta1"
    ta1.write_text(invoke("ack", str(files["iea"])).output)
    parsed = invoke("parse", str(ta1), "--json")
    assert parsed.exit_code == 0, parsed.output
    data = json.loads(parsed.output)
    assert data["transaction_set"] == "TA1" and data["acknowledgments"][0]["note_code"] == "001"


def test_parse_unsupported_transaction_is_structured(tmp_path: Path) -> None:
    from tests.unit.edi.test_validate import interchange, transaction

    path = tmp_path / "x.276"
    body = ["BHT*0010*13*10001234*20240603*1319", "HL*1**20*1"]
    path.write_text(
        interchange(transaction(body, st01="276", implementation="005010X212"), gs01="HR", gs08="005010X212")
    )
    result = invoke("parse", str(path), "--json")
    assert result.exit_code == 1
    assert json.loads(result.output)["error"]["code"] == "UNSUPPORTED_TRANSACTION"
