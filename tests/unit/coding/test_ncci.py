"""NCCI PTP and MUE loaders (exact CMS layouts) and the add-on code table."""

from __future__ import annotations

import random
import time
from datetime import date
from pathlib import Path

import pytest

from coding import ncci
from coding.errors import CodeSetError

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PTP = FIXTURES / "ptp_practitioner_sample.txt"
MUE = FIXTURES / "mue_practitioner_sample.csv"


@pytest.fixture(scope="module")
def store() -> ncci.PtpStore:
    return ncci.read_ptp([PTP])


def test_ptp_loader_skips_the_header_and_reads_every_row(store: ncci.PtpStore) -> None:
    assert len(store) == 10
    edit = store.edit_for("93000", "93005", date(2026, 6, 15))
    assert edit is not None and edit.modifier_indicator == 0 and not edit.bypassable
    assert edit.rationale == "Mutually exclusive procedures" and edit.deleted is None
    prior = store.edit_for("11042", "97597", date(2026, 6, 15))
    assert prior is not None and prior.prior_to_1996 and prior.bypassable


def test_ptp_direction_matters(store: ncci.PtpStore) -> None:
    assert store.edit_for("93005", "93000", date(2026, 6, 15)) is None
    assert store.edit_for("99999", "93000", date(2026, 6, 15)) is None


def test_ptp_date_windows(store: ncci.PtpStore) -> None:
    assert store.edit_for("97140", "97530", date(2019, 12, 31)) is None
    first = store.edit_for("97140", "97530", date(2020, 6, 1))
    second = store.edit_for("97140", "97530", date(2021, 1, 1))  # the deletion date itself: next window
    assert first is not None and first.modifier_indicator == 0 and first.deleted == date(2021, 1, 1)
    assert second is not None and second.modifier_indicator == 1
    assert len(store.history("97140", "97530")) == 2
    # Deleted in 2016: no longer applies.
    assert store.edit_for("29881", "29877", date(2015, 12, 31)) is not None
    assert store.edit_for("29881", "29877", date(2026, 1, 1)) is None


def test_ptp_store_save_and_open(store: ncci.PtpStore, tmp_path: Path) -> None:
    path = tmp_path / "ptp.bin"
    store.save(path)
    reopened = ncci.PtpStore.open(path)
    assert len(reopened) == len(store)
    assert reopened.history("97140", "97530") == store.history("97140", "97530")
    (tmp_path / "junk.bin").write_bytes(b"not a store")
    with pytest.raises(CodeSetError):
        ncci.PtpStore.open(tmp_path / "junk.bin")


def test_ptp_loader_reports_a_broken_row() -> None:
    data = PTP.read_bytes() + b"11042\t11043\t\t2020-01-01\t*\t1\tbad date\r\n"
    with pytest.raises(CodeSetError) as raised:
        ncci.read_ptp([data])
    assert raised.value.line == 14 and "effective date" in raised.value.message
    bad_indicator = PTP.read_bytes() + b"11042\t11043\t\t20200101\t*\t2\tbad indicator\r\n"
    with pytest.raises(CodeSetError):
        ncci.read_ptp([bad_indicator])
    with pytest.raises(CodeSetError):
        ncci.read_ptp([b"just a header\r\n"])


def test_ptp_store_scales_and_answers_fast() -> None:
    builder = ncci.PtpBuilder()
    rng = random.Random(7)
    codes = [f"{n:05d}" for n in range(10000, 12000)]
    for _ in range(200_000):
        builder.add(rng.choice(codes), rng.choice(codes), 20200101, None, rng.choice((0, 1, 9)))
    builder.add("99999", "88888", 20200101, 20230101, 1)
    builder.add("99999", "88888", 20230101, None, 0)
    store = builder.build()
    assert len(store) == 200_002
    assert store.edit_for("99999", "88888", date(2024, 1, 1)).modifier_indicator == 0  # type: ignore[union-attr]
    started = time.perf_counter()
    for _ in range(10_000):
        store.edit_for("10500", "11500", date(2024, 1, 1))
    per_lookup = (time.perf_counter() - started) / 10_000
    assert per_lookup < 50e-6  # ~1-2 us typical; generous bound for a busy CI machine


def test_mue_loader() -> None:
    table = ncci.read_mue(MUE)
    assert len(table) == 10
    line_edit = table.get("20610")
    assert line_edit is not None and line_edit.adjudication_indicator == 1 and not line_edit.per_day
    policy = table.get("99214")
    assert policy is not None and policy.units == 1 and policy.adjudication_indicator == 2 and policy.per_day
    clinical = table.get("J3301")
    assert clinical is not None and clinical.units == 16 and clinical.rationale == "Clinical: Data"
    assert table.get("99999") is None


def test_mue_loader_errors() -> None:
    with pytest.raises(CodeSetError) as raised:
        ncci.read_mue(MUE.read_bytes() + b"20611,two,1 Line Edit,x\r\n")
    assert raised.value.line == 13
    with pytest.raises(CodeSetError):
        ncci.read_mue(b"header only\n")


def test_add_on_table() -> None:
    starter = ncci.AddOnTable()
    assert {"99417", "11045", "15003", "22614", "64480", "77001", "96366", "96367", "96368", "96375",
            "96376", "96415", "96417", "97546", "99292", "G2211"} <= set(starter)  # fmt: skip
    assert "99291" in starter.primaries("99292")  # type: ignore[operator]
    assert starter.primaries("99213") is None
    loaded = ncci.read_addon_table(FIXTURES / "addon_sample.csv")
    assert len(loaded) == 2 and loaded.primaries("G2211") == frozenset({"99213", "99214"})
    with pytest.raises(CodeSetError):
        ncci.read_addon_table(b"nothing,here\n")
