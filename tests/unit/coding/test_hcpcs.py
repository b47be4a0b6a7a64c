"""HCPCS Level II: the shipped October 2025 quarter and the CMS fixed-width loader."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from coding import hcpcs
from coding.errors import CodeSetError
from tests.services import unavailable

SHARED = Path(__file__).resolve().parents[3].parent / "shared"


@pytest.fixture(scope="module")
def cms_2019() -> hcpcs.HcpcsCodeSet:
    path = SHARED / "codesets" / "hcpcs" / "HCPC2019_CONTR_ANWEB.txt"
    if not path.exists():
        unavailable(f"shared HCPCS file not found at {path}")
    return hcpcs.read_cms_fixed_width(path, quarter="2019-01")


def test_shipped_quarter_counts() -> None:
    codes = hcpcs.load()
    assert len(codes) == 8_463
    assert codes.modifier_count == 383
    assert codes.meta["quarter"] == "2025-10"


def test_shipped_code_and_modifier_details() -> None:
    codes = hcpcs.load()
    g2211 = codes.get("g2211")
    assert g2211 is not None and g2211.added == date(2021, 1, 1)
    assert g2211.short_description == "Complex e/m visit add on"
    assert "add-on code" in g2211.long_description  # continuation records joined
    assert codes.is_valid("G2211", date(2021, 1, 1)) and not codes.is_valid("G2211", date(2020, 12, 31))
    lt = codes.modifier("LT")
    assert lt is not None and lt.kind == "modifier" and "left" in lt.short_description.lower()
    assert codes.is_valid_modifier("XS", date(2026, 1, 5))
    assert codes.get("LT") is None and codes.modifier("G2211") is None
    assert "A0021" in codes and "ZZZZZ" not in codes


def test_fixed_width_loader_on_the_cms_2019_file(cms_2019: hcpcs.HcpcsCodeSet) -> None:
    assert len(cms_2019) == 6_440
    assert cms_2019.modifier_count == 360
    a0021 = cms_2019.get("A0021")
    assert a0021 is not None and a0021.short_description == "Outside state ambulance serv"
    assert a0021.long_description == "Ambulance service, outside state per mile, transport (medicaid only)"
    terminated = cms_2019.get("A4466")
    assert terminated is not None and terminated.terminated == date(2016, 12, 31)
    assert cms_2019.is_valid("A4466", date(2016, 12, 31))
    assert not cms_2019.is_valid("A4466", date(2017, 1, 1))
    assert cms_2019.modifier("AA") is not None


def test_fixed_width_loader_on_a_synthetic_record() -> None:
    record = list(" " * 320)
    record[0:5] = "Q9999"
    record[10] = "3"
    record[11:91] = "Synthetic test supply, first part".ljust(80)
    record[91:119] = "Synthetic supply".ljust(28)
    record[268:276] = "20250101"
    record[284:292] = "20251231"
    continuation = list(" " * 320)
    continuation[0:5] = "Q9999"
    continuation[10] = "4"
    continuation[11:91] = "and its second part".ljust(80)
    data = ("Some header line\r\n" + "".join(record) + "\r\n" + "".join(continuation) + "\r\n").encode(
        "latin-1"
    )
    codes = hcpcs.read_cms_fixed_width(data)
    q = codes.get("Q9999")
    assert q is not None
    assert q.long_description == "Synthetic test supply, first part and its second part"
    assert (q.added, q.terminated) == (date(2025, 1, 1), date(2025, 12, 31))


def test_fixed_width_loader_rejects_a_wrong_file(tmp_path: Path) -> None:
    wrong = tmp_path / "not_hcpcs.txt"
    wrong.write_text("code,description\nA0021,something\n")
    with pytest.raises(CodeSetError) as raised:
        hcpcs.read_cms_fixed_width(wrong)
    assert raised.value.rule == "cms-fixed-width-layout" and raised.value.file == str(wrong)
    with pytest.raises(CodeSetError) as missing:
        hcpcs.read_cms_fixed_width(tmp_path / "absent.txt")
    assert missing.value.rule == "readable"


def test_use_installs_a_user_quarter(cms_2019: hcpcs.HcpcsCodeSet) -> None:
    shipped = hcpcs.load()
    try:
        hcpcs.use(cms_2019)
        assert hcpcs.default() is cms_2019
    finally:
        hcpcs.use(shipped)
    assert hcpcs.default() is shipped
