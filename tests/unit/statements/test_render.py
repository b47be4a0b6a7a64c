"""The statement as a person sees it: page 1 rendered to PNG (pdftoppm) and read (pdftotext)."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from statements import DunningStage, Guarantor, build_statement, render_html, render_pdf
from statements.render_pdf import ADDRESS_BOX, RECIPIENT_WINDOW, REMIT_TO_BOX
from tests.services import unavailable
from tests.unit.statements.support import AS_OF, GUARANTOR, line, statement_input

DUE = AS_OF + timedelta(days=21)


def _statement(n_lines: int = 3, stage: DunningStage = DunningStage.FIRST):
    lines = [
        line("A:1", 4000, AS_OF - timedelta(days=40), parts=(("PR", "1", 3000), ("PR", "3", 1000))),
        line("A:2", 1500, AS_OF - timedelta(days=40), code="G0008", billed=4500, parts=(("PR", "2", 1500),)),
        line("B:1", 5000, AS_OF - timedelta(days=5), pending=15000, claim="CLAIMB", code="99214"),
    ]
    for n in range(n_lines - 3):
        lines.append(line(f"C:{n}", 1000, AS_OF - timedelta(days=100), claim=f"CLAIMC{n:03d}"))
    return build_statement(statement_input(*lines), stage=stage, step=1, due_date=DUE)


@pytest.fixture(scope="module")
def poppler() -> None:
    for tool in ("pdftoppm", "pdftotext"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} (Debian poppler-utils) is not installed")


def _text(pdf: Path, *args: str) -> str:
    return subprocess.run(
        ["pdftotext", *args, str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout


def _words_in(bbox_html: str, box: tuple[float, float, float, float]) -> list[str]:
    """Words whose bounding box lies inside ``box`` (inches, from the page's top-left)."""
    left, top, right, bottom = (v * 72 for v in box)
    found = []
    for m in re.finditer(
        r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', bbox_html
    ):
        x0, y0, x1, y1 = (float(v) for v in m.groups()[:4])
        if x0 >= left and x1 <= right and y0 >= top and y1 <= bottom:
            found.append(m.group(5))
    return found


def test_page_one_holds_what_the_patient_must_read(tmp_path: Path, poppler: None) -> None:
    pdf = tmp_path / "statement.pdf"
    pdf.write_bytes(render_pdf(_statement()))
    subprocess.run(
        ["pdftoppm", "-r", "60", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "p")], check=True
    )
    png = tmp_path / "p-1.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    text = " ".join(_text(pdf, "-f", "1", "-l", "1", "-layout").split())
    for expected in (
        "STATEMENT",
        "Larkspur Family Medicine Demo",
        "Account number A000123",
        "Amount due $55.00",  # 4,000 + 1,500; the 5,000 waiting on insurance is not due
        "Please pay by 03/23/2026",
        "Thank you for choosing",
        "Visit on 01/21/2026 with Jordan Rivera, MD",
        "Deductible $30.00: This counts toward your deductible",
        "Copay $10.00",
        "Coinsurance $15.00",
        "G0008 Administration of influenza virus vaccine",
        "$50.00 is waiting on your insurance and is not due yet",
        "PAYMENT STUB",
        "Amount enclosed",
    ):
        assert expected in text, expected


def test_addresses_sit_in_the_envelope_windows(tmp_path: Path, poppler: None) -> None:
    pdf = tmp_path / "statement.pdf"
    pdf.write_bytes(render_pdf(_statement()))
    bbox = _text(pdf, "-f", "1", "-l", "1", "-bbox")
    in_window = _words_in(bbox, RECIPIENT_WINDOW)
    assert " ".join(in_window) == "ALEX Q SAMPLE 12 EXAMPLE STREET APT 3 SPRINGFIELD IL 62704"
    assert RECIPIENT_WINDOW[0] < ADDRESS_BOX[0] and ADDRESS_BOX[2] < RECIPIENT_WINDOW[2]
    remit = " ".join(_words_in(bbox, REMIT_TO_BOX))
    assert remit == "LARKSPUR FAMILY MEDICINE DEMO 400 LARKSPUR LANE SUITE 200 SPRINGFIELD IL 62701-0400"


def test_long_statements_continue_on_more_pages_with_the_stub_on_page_one(
    tmp_path: Path, poppler: None
) -> None:
    pdf = tmp_path / "statement.pdf"
    pdf.write_bytes(render_pdf(_statement(n_lines=40)))
    pages = _text(pdf).split("\f")
    filled = [p for p in pages if p.strip()]
    assert len(filled) >= 2
    assert "PAYMENT STUB" in filled[0] and all("PAYMENT STUB" not in p for p in filled[1:])
    assert "continued" in filled[1] and f"Page 2 of {len(filled)}" in filled[1]
    # Every line is printed once, somewhere.
    assert sum(p.count("99213 Office visit") for p in filled) == 1 + 37


def test_final_notice_is_on_the_page(tmp_path: Path, poppler: None) -> None:
    pdf = tmp_path / "statement.pdf"
    pdf.write_bytes(render_pdf(_statement(stage=DunningStage.FINAL_NOTICE)))
    assert "Final notice: your balance of $55.00 is past due" in " ".join(_text(pdf).split())


def test_pdf_is_deterministic() -> None:
    s = _statement()
    assert render_pdf(s) == render_pdf(s)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.links: list[str] = []
        self.remote: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a":
            self.links.append(values.get("href") or "")
        if tag in ("img", "script", "link"):
            self.remote.append(tag)


def test_html_shows_the_same_statement_escaped_and_self_contained() -> None:
    hostile = Guarantor("Alex <script>alert(1)</script> Sample", GUARANTOR.address)
    lines = [line("A:1", 4000, AS_OF - timedelta(days=40), parts=(("PR", "1", 4000),))]
    s = build_statement(statement_input(*lines), stage=DunningStage.REMINDER, step=2, due_date=DUE)
    s = dataclasses.replace(s, guarantor=hostile)
    page = render_html(s, pay_url="https://pay.example.org/p/abc")
    parser = _Text()
    parser.feed(page)
    text = " ".join(" ".join(parser.parts).split())
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert parser.remote == []
    assert parser.links == ["https://pay.example.org/p/abc"]
    for expected in ("Amount due $40.00", "Reminder: we have not yet received payment", "Deductible $40.00:"):
        assert expected in text, expected
