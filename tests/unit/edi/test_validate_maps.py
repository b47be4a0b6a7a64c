"""Compiled pyx12 maps (edi.maps) and the 837I side of the guide rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from edi import maps
from edi.findings import Finding
from edi.maps import CompositeSpec, ElementSpec, LoopSpec, SegmentSpec
from edi.reader import Delimiters
from edi.validate import ClaimRules


def _find(loop: LoopSpec, loop_id: str) -> LoopSpec:
    for child in loop.children:
        if isinstance(child, LoopSpec):
            if child.id == loop_id:
                return child
            try:
                return _find(child, loop_id)
            except LookupError:
                continue
    raise LookupError(loop_id)


def test_837p_map_tables() -> None:
    m = maps.compile_map("837.5010.X222.A1.xml")
    assert m.transaction.id == "ST_LOOP"
    assert [c.id for c in m.transaction.children] == ["ST", "HEADER", "DETAIL", "FOOTER", "SE"]
    claim = _find(m.transaction, "2300")
    assert (claim.usage, claim.repeat) == ("S", 100)
    clm = claim.children[0]
    assert isinstance(clm, SegmentSpec) and clm.id == "CLM"
    clm01 = clm.elements[0]
    assert isinstance(clm01, ElementSpec)
    assert (clm01.ref, clm01.usage, clm01.data_type, clm01.min_len, clm01.max_len) == (
        "CLM01",
        "R",
        "AN",
        1,
        38,
    )
    clm05 = next(e for e in clm.elements if e.seq == 5)
    assert isinstance(clm05, CompositeSpec)
    assert [c.ref for c in clm05.components] == ["CLM05-1", "CLM05-2", "CLM05-3"]
    assert clm05.components[0].external == "pos" and "11" in m.external_codes["pos"]
    billing = _find(m.transaction, "2010AA")
    nm1 = billing.children[0]
    assert isinstance(nm1, SegmentSpec) and nm1.qualifier == (1, 0, frozenset({"85"}))
    assert ("P", (8, 9)) in nm1.syntax
    hl = _find(m.transaction, "2000B").children[0]
    assert isinstance(hl, SegmentSpec) and hl.qualifier == (3, 0, frozenset({"22"}))


def test_map_index_follows_maps_xml() -> None:
    assert maps.find_map_name("00501", "005010X222A1", "HC") == "837.5010.X222.A1.xml"
    assert maps.find_map_name("00501", "005010X223A2", "HC") == "837Q3.I.5010.X223.A1.xml"
    assert maps.find_map_name("00501", "005010X221A1", "HP") == "835.5010.X221.A1.xml"
    assert maps.find_map_name("00501", "005010X214", "HN") == "277.5010.X214.xml"
    assert maps.find_map_name("00501", "005010X279A1", "HS") is None


def test_a_later_load_comes_from_the_cache_not_the_xml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The speed of the cached load is a benchmark's business (benchmarks/bench_validate.py);
    here: the second process's load reads the pickle and never compiles the XML again."""
    monkeypatch.setenv("CLAIMS_SERVER_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(maps, "_LOADED", {})
    first = maps.load_map("837.5010.X222.A1.xml")
    (cached,) = (tmp_path / "edi-maps").glob("837.5010.X222.A1-pyx12-*.pickle")
    assert cached.stat().st_size > 0
    monkeypatch.setattr(maps, "_LOADED", {})

    def no_compile(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the map was compiled from XML again instead of read from the cache")

    monkeypatch.setattr(maps, "compile_map", no_compile)
    again = maps.load_map("837.5010.X222.A1.xml")
    assert again is not first and again.segment_count == first.segment_count


def test_missing_map_is_a_map_error() -> None:
    with pytest.raises(maps.MapError):
        maps.load_map("no-such-map.xml")


def _feed(rules: ClaimRules, segments: list[str], loops: list[str]) -> list[Finding]:
    delimiters = Delimiters()
    for position, (text, loop) in enumerate(zip(segments, loops, strict=True), start=2):
        rules.feed(text.split("*"), loop, position, position, delimiters)
    rules._close_claim()
    return rules.out


def test_837i_claim_charge_balances_against_sv203() -> None:
    segments = [
        "HL*2*1*22*0",
        "SBR*P*18*******MC",
        "CLM*PCN1*300***11:A:1**A*Y*Y",
        "LX*1",
        "SV2*0450*HC:99283*200*UN*1",
        "LX*2",
        "SV2*0300*HC:80053*90*UN*1",
    ]
    loops = ["2000B", "2000B", "2300", "2400", "2400", "2400", "2400"]
    (f,) = _feed(ClaimRules(False, "0001", []), segments, loops)
    assert (f.code, f.element, f.value) == ("X12.CLM02_BALANCE", "CLM02", "300.00")
    assert "SV203" in f.message
    segments[-1] = "SV2*0300*HC:80053*100*UN*1"
    assert _feed(ClaimRules(False, "0001", []), segments, loops) == []
