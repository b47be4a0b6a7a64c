"""CARC, RARC and group codes: our explanations, and the official-list loader."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from coding import adjustment_codes as ac
from coding.errors import CodeSetError
from tests.services import unavailable

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PLAYBOOK = Path(__file__).resolve().parents[3].parent / "shared" / "DENIAL_PLAYBOOK.md"


def test_group_codes_and_common_carcs() -> None:
    assert set(ac.GROUP_CODES) == {"CO", "PR", "OA", "PI", "CR"}
    assert len(ac.CARCS) >= 45
    for code in ("1", "2", "3", "45", "16", "18", "29", "50", "97", "236", "B15", "B9"):
        found = ac.lookup("carc", code)
        assert found is not None and found.patient_explanation and found.biller_action, code
    assert ac.lookup("rarc", "ma130").actions == ("NEW",)  # type: ignore[union-attr]
    assert ac.lookup("group", "PR").actions == ("BILL-SEC", "BILL-PT")  # type: ignore[union-attr]
    assert ac.lookup("carc", "99999") is None and ac.lookup("nope", "1") is None


def test_actions_use_the_playbook_vocabulary() -> None:
    vocabulary = {"NEW", "REPL7", "APPEAL", "BILL-PT", "BILL-SEC", "WO", "POST"}
    for table in (ac.GROUP_CODES, ac.CARCS, ac.RARCS):
        for entry in table.values():
            assert set(entry.actions) <= vocabulary, entry.code


def test_playbook_carcs_are_covered() -> None:
    if not PLAYBOOK.exists():
        unavailable(f"shared playbook not found at {PLAYBOOK}")
    import re

    text = PLAYBOOK.read_text(encoding="utf-8")
    named = set(re.findall(r"\b(?:CO|PR|OA|PI)-([A-Z]?\d+)", text))
    missing = sorted(code for code in named if code not in ac.CARCS)
    assert not missing


def test_official_list_loader() -> None:
    official = ac.read_official_list(FIXTURES / "carc_official_sample.csv", "carc")
    assert len(official.codes) == 5
    retired = official.get("D1")
    assert retired is not None and retired.stop == date(2007, 12, 31)
    assert not retired.active_on(date(2026, 1, 1)) and retired.active_on(date(2000, 1, 1))
    assert official.get("29").start == date(1995, 1, 1)  # type: ignore[union-attr]
    assert official.get("B15").stop == date(2099, 12, 31)  # type: ignore[union-attr]


def test_official_list_loader_errors() -> None:
    with pytest.raises(CodeSetError) as raised:
        ac.read_official_list(b"code,description,start,stop\n1,x,not-a-date,\n", "carc")
    assert raised.value.line == 2 and raised.value.rule == "date"
    with pytest.raises(CodeSetError):
        ac.read_official_list(b"1,x\n", "group")
    with pytest.raises(CodeSetError):
        ac.read_official_list(b"", "rarc")


def test_every_code_the_payer_simulator_sends_is_explained() -> None:
    """The simulator's denials reach the EOB, the ERA screen and statements: each needs its meaning."""
    import ast

    import claims_server.simulator.rules as rules

    def constant(node: ast.expr) -> str:
        if isinstance(node, ast.Name):  # a module constant (rules.PRIOR_PAYER_REASON ...)
            value = getattr(rules, node.id)
        else:
            assert isinstance(node, ast.Constant)
            value = node.value
        assert isinstance(value, str)
        return value

    tree = ast.parse(Path(rules.__file__).read_text())
    sent: set[tuple[str, str]] = set()
    for node in ast.walk(tree):
        # Every CAS reason it names (contractual, restated prior payers) ...
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "Adjustment"
            and (
                isinstance(node.args[1], ast.Constant)
                or (isinstance(node.args[1], ast.Name) and node.args[1].id.isupper())
            )
        ):
            sent.add(("carc", constant(node.args[1])))
        # ... and every line edit's denial: (CARC, RARCs).
        if isinstance(node, ast.FunctionDef) and node.name == "_line_edit":
            for ret in ast.walk(node):
                if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Tuple):
                    carc, rarcs = ret.value.elts
                    assert isinstance(rarcs, ast.Tuple)
                    sent.add(("carc", constant(carc)))
                    sent |= {("rarc", constant(elt)) for elt in rarcs.elts}
    # Patient responsibility: deductible, coinsurance, copay.
    sent |= {("carc", "1"), ("carc", "2"), ("carc", "3")}
    assert {("rarc", "M119"), ("carc", "97"), ("carc", "29"), ("carc", "45"), ("carc", "23")} <= sent
    missing = sorted(f"{kind} {code}" for kind, code in sent if ac.lookup(kind, code) is None)
    assert not missing, f"codes the simulator sends with no explanation: {missing}"
