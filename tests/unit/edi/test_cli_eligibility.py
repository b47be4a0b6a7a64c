"""``claims-server edi parse`` and ``edi validate`` on 270/271 files (our X279A1 guide)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.unit.edi.test_cli_edi import invoke
from tests.unit.edi.test_x271 import FULL_271


def test_parse_271_prints_the_benefits(tmp_path: Path) -> None:
    path = tmp_path / "answer.271"
    path.write_text(FULL_271)
    result = invoke("parse", str(path), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["transaction_set"] == "271"
    dependent = data["responses"][0]["subscribers"][0]["dependents"][0]
    assert dependent["benefits"][1]["amount"] == "500" and dependent["benefits"][3]["percent"] == "0.2"


def test_parse_and_validate_270(tmp_path: Path) -> None:
    from edi.x270 import generate_270
    from tests.unit.edi.test_x270 import ENVELOPE, subscriber_inquiry

    path = tmp_path / "question.270"
    path.write_text(generate_270([subscriber_inquiry()], ENVELOPE))
    parsed = invoke("parse", str(path), "--json")
    assert parsed.exit_code == 0, parsed.output
    assert json.loads(parsed.output)["inquiries"][0]["service_types"] == ["30", "98"]
    checked = invoke("validate", str(path), "--json")
    assert checked.exit_code == 0 and json.loads(checked.output)["valid"] is True
    path.write_text(path.read_text().replace("EQ*98", "EQ*98*HC:99213*XYZ"))
    assert invoke("validate", str(path)).exit_code == 1
