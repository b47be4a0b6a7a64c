"""The mailed statement: a US-letter PDF for a #10 double-window envelope with a tear-off stub.

Layout (inches from the top-left corner of the page; the page is folded in thirds, the
top third faces the envelope's windows):

- Return window (upper, practice): 0.5 from the left, 0.5 from the top.
- Recipient window: a #10 window envelope (9.5 x 4.125) has its window 7/8 from the
  left and 1/2 from the bottom, 4.5 x 1.125. A tri-folded letter's top panel (3 2/3
  tall) sits on the envelope's bottom edge, so the window shows the page between 2.04
  and 3.17 from the top and from 0.875 to 5.375 across. The guarantor's address is
  printed inside :data:`ADDRESS_BOX`, with a margin on every side (letters shift in the
  envelope): a mail house's window test is the same check.
- Remittance stub: the bottom :data:`STUB_HEIGHT` below a dashed tear line, with the
  remit-to address placed for the return envelope's window, the account number, the
  amount due and an "amount enclosed" field.

Everything is drawn on the canvas directly (no platypus flowables): a statement is a
fixed form, and direct drawing is what makes 10,000 statements a minute possible.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from reportlab.lib.pagesizes import LETTER
from reportlab.lib.rl_accel import escapePDF, fp_str
from reportlab.lib.units import inch
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from statements.model import DunningStage, Statement
from statements.text import bucket_label, day, money, service_text

PAGE_WIDTH, PAGE_HEIGHT = LETTER

#: The #10 envelope's recipient window on the unfolded page: (left, top, right, bottom) in inches.
RECIPIENT_WINDOW = (0.875, 2.042, 5.375, 3.167)
#: Where the guarantor's address is printed, well inside the window (same convention).
ADDRESS_BOX = (1.0, 2.15, 4.9, 3.05)
#: The return window (practice name and address).
RETURN_BOX = (0.5, 0.5, 3.75, 1.4)
#: Height of the tear-off remittance stub at the bottom of page 1.
STUB_HEIGHT = 3.5
#: Where the remit-to address sits on the stub (inches from the page's top-left), for the
#: return envelope's window when the stub is folded once.
REMIT_TO_BOX = (1.0, 9.3, 4.5, 10.2)

_MARGIN = 0.5 * inch
_BODY_WIDTH = PAGE_WIDTH - 2 * _MARGIN
_FONT = "Helvetica"
_BOLD = "Helvetica-Bold"
_ITALIC = "Helvetica-Oblique"
_LINE_H = 11.0
_REASON_H = 9.5
_VISIT_H = 15.0
# Table columns: (title, right edge in points from the left margin; None: left-aligned text).
# Each row adds up: Billed - Ins. paid - Adjusted - You paid - Not due yet = You owe.
_COLUMNS = (
    ("Date", 0.0),
    ("Service", 52.0),
    ("Billed", 300.0),
    ("Ins. paid", 348.0),
    ("Adjusted", 396.0),
    ("You paid", 444.0),
    ("Not due yet", 494.0),
    ("You owe", _BODY_WIDTH),
)
_OWE = len(_COLUMNS) - 1
#: Widest service text: up to the first amount column, leaving room for its widest amount.
_SERVICE_WIDTH = _COLUMNS[2][1] - _COLUMNS[1][1] - 50.0


def _y(top_inches: float) -> float:
    """Canvas y (points from the bottom) of a distance from the top of the page in inches."""
    return PAGE_HEIGHT - top_inches * inch


@dataclass(frozen=True, slots=True)
class _Row:
    kind: str  # "visit", "line", "reason", "total" (label, amount)
    height: float
    cells: tuple[str, ...]


def _rows(statement: Statement) -> list[_Row]:
    rows: list[_Row] = []
    reason_width = _BODY_WIDTH - 70
    for visit in statement.visits:
        rows.append(
            _Row("visit", _VISIT_H, (f"Visit on {day(visit.service_date)} with {visit.provider_name}",))
        )
        for line in visit.lines:
            rows.append(
                _Row(
                    "line",
                    _LINE_H,
                    (
                        day(line.service_date),
                        service_text(line.procedure_code, line.description),
                        money(line.billed_cents),
                        money(line.insurance_paid_cents),
                        money(line.adjustments_cents),
                        money(line.patient_paid_cents),
                        money(line.not_due_cents) + (" *" if line.pending_insurance else ""),
                        money(line.balance_cents),
                    ),
                )
            )
            for reason in line.reasons:
                text = f"{reason.label} {money(reason.amount_cents)}: {reason.explanation}"
                for part in simpleSplit(text, _ITALIC, 7.5, reason_width):
                    rows.append(_Row("reason", _REASON_H, (part,)))
    if statement.unapplied_credit_cents:
        rows.append(
            _Row("total", _LINE_H, ("Credit on your account", money(statement.unapplied_credit_cents)))
        )
    rows.append(_Row("total", _LINE_H + 2, ("Amount due", money(statement.amount_due_cents))))
    return rows


def _paginate(rows: list[_Row], first_height: float, next_height: float) -> list[list[_Row]]:
    pages: list[list[_Row]] = [[]]
    room = first_height
    for row in rows:
        if row.height > room and pages[-1]:
            pages.append([])
            room = next_height
        pages[-1].append(row)
        room -= row.height
    return pages


class _Pdf:
    def __init__(self, statement: Statement) -> None:
        self.s = statement
        self.buffer = io.BytesIO()
        self.c = Canvas(self.buffer, pagesize=LETTER, invariant=1, pageCompression=1)
        self.c.setTitle(f"Statement {statement.statement_ref or statement.account_number}")
        self.c.setAuthor(statement.practice.name)
        self.fonts: dict[str, str] = {}  # font name -> the document's internal name (/F1 ...)

    def text(self, x: float, y: float, value: str, font: str = _FONT, size: float = 9.0) -> None:
        """``value`` at (x, y). ASCII text (nearly all of a statement) is written as one text
        object directly, which is what ``setFont`` + ``drawString`` produce with two objects
        and a dozen calls; anything else goes through reportlab's own encoding path."""
        if value.isascii():
            name = self.fonts.get(font)
            if name is None:
                name = self.fonts[font] = self.c._doc.getInternalFontName(font)
            self.c.addLiteral(
                f"BT {name} {fp_str(size)} Tf 1 0 0 1 {fp_str(x)} {fp_str(y)} Tm ({escapePDF(value)}) Tj ET"
            )
            return
        self.c.setFont(font, size)
        self.c.drawString(x, y, value)

    def right(self, x: float, y: float, value: str, font: str = _FONT, size: float = 9.0) -> None:
        self.text(x - stringWidth(value, font, size), y, value, font, size)

    def block(
        self, box: tuple[float, float, float, float], lines: list[str], first_bold: bool = True
    ) -> None:
        """Lines of an address block from the top of ``box``; shrinks the type if it would not fit."""
        left, top, right, bottom = box
        size = 10.0
        height = (bottom - top) * inch
        while size > 7.0 and len(lines) * size * 1.2 > height:
            size -= 0.5
        width = (right - left) * inch
        y = _y(top) - size
        for i, line in enumerate(lines):
            font = _BOLD if first_bold and i == 0 else _FONT
            while stringWidth(line, font, size) > width and len(line) > 1:
                line = line[:-1]
            self.text(left * inch, y, line, font, size)
            y -= size * 1.2

    def header(self) -> None:
        s = self.s
        practice = s.practice
        lines = [practice.name, *practice.address.lines()]
        if practice.phone:
            lines.append(f"Billing questions: {practice.phone_text()}")
        self.block(RETURN_BOX, lines)
        self.right(PAGE_WIDTH - _MARGIN, _y(0.75), "STATEMENT", _BOLD, 18)
        rows = [
            ("Statement date", day(s.statement_date)),
            ("Account number", s.account_number),
        ]
        if s.statement_ref:
            rows.append(("Statement number", s.statement_ref))
        rows += [("Please pay by", day(s.due_date)), ("Amount due", money(s.amount_due_cents))]
        left, right = 5.3 * inch, PAGE_WIDTH - _MARGIN
        y = _y(1.05)
        self.c.setLineWidth(0.6)
        self.c.rect(left - 6, y - len(rows) * 14 + 8, right - left + 12, len(rows) * 14 + 4)
        for label, value in rows:
            bold = label == "Amount due"
            self.text(left, y, label, _BOLD if bold else _FONT, 10 if bold else 9)
            self.right(right, y, value, _BOLD, 10 if bold else 9)
            y -= 14
        guarantor = s.guarantor
        address = guarantor.address.lines() if guarantor.address is not None else []
        self.block(
            ADDRESS_BOX, [guarantor.name.upper(), *(line.upper() for line in address)], first_bold=False
        )
        if s.patient_name != guarantor.name:
            self.text(5.3 * inch, _y(2.4), f"Patient: {s.patient_name}", _FONT, 9)

    def summary(self) -> float:
        """Dunning message, account summary and aging; returns the y where the table starts."""
        s = self.s
        y = _y(3.35)
        bold = s.dunning_stage is not DunningStage.FIRST
        for part in simpleSplit(s.dunning_message, _BOLD if bold else _FONT, 9.5, _BODY_WIDTH):
            self.text(_MARGIN, y, part, _BOLD if bold else _FONT, 9.5)
            y -= 12
        y -= 4
        summary = [
            ("Previous balance", s.previous_balance_cents),
            ("New charges", s.new_charges_cents),
            ("Payments received", -s.payments_cents),
            ("Adjustments", -s.adjustments_cents),
            ("Current balance", s.balance_cents),
        ]
        y = self.cells(y, summary, "Your account")
        aging = [(bucket_label(bucket), cents) for bucket, cents in s.aging.buckets()]
        aging.append(("Amount due now", s.amount_due_cents))
        y = self.cells(y, aging, "How old your balance is")
        if s.pending_insurance_cents:
            self.text(
                _MARGIN,
                y,
                f"* {money(s.pending_insurance_cents)} is waiting on your insurance and is not due yet.",
                _ITALIC,
                8,
            )
            y -= 12
        return y - 4

    def cells(self, y: float, cells: list[tuple[str, int]], title: str) -> float:
        self.text(_MARGIN, y, title, _BOLD, 9)
        y -= 4
        width = _BODY_WIDTH / len(cells)
        self.c.setLineWidth(0.4)
        self.c.rect(_MARGIN, y - 26, _BODY_WIDTH, 26)
        for i, (label, cents) in enumerate(cells):
            x = _MARGIN + i * width
            if i:
                self.c.line(x, y, x, y - 26)
            self.text(x + 4, y - 10, label, _FONT, 7.5)
            self.right(x + width - 4, y - 22, money(cents), _BOLD, 9.5)
        return y - 40

    def table(self, y: float, rows: list[_Row]) -> None:
        self.c.setFillGray(0.9)
        self.c.rect(_MARGIN, y - 4, _BODY_WIDTH, 13, stroke=0, fill=1)
        self.c.setFillGray(0)
        for i, (title, edge) in enumerate(_COLUMNS):
            if i < 2:
                self.text(_MARGIN + edge + 2, y, title, _BOLD, 8)
            else:
                self.right(_MARGIN + edge - 2, y, title, _BOLD, 8)
        y -= 15
        for row in rows:
            if row.kind == "visit":
                y -= 3
                self.text(_MARGIN + 2, y, row.cells[0], _BOLD, 8.5)
            elif row.kind == "line":
                for i, (_, edge) in enumerate(_COLUMNS):
                    value = row.cells[i]
                    if i < 2:
                        limit = (_COLUMNS[i + 1][1] - edge - 6) if i == 0 else _SERVICE_WIDTH
                        while stringWidth(value, _FONT, 8) > limit and len(value) > 1:
                            value = value[:-1]
                        self.text(_MARGIN + edge + 2, y, value, _FONT, 8)
                    else:
                        self.right(_MARGIN + edge - 2, y, value, _BOLD if i == _OWE else _FONT, 8)
            elif row.kind == "total":
                self.right(_MARGIN + _COLUMNS[_OWE - 1][1] - 2, y, row.cells[0], _BOLD, 8.5)
                self.right(_MARGIN + _BODY_WIDTH - 2, y, row.cells[1], _BOLD, 8.5)
            else:
                self.text(_MARGIN + 62, y, row.cells[0], _ITALIC, 7.5)
            y -= row.height if row.kind != "visit" else row.height - 3

    def stub(self) -> None:
        s = self.s
        top = _y(11 - STUB_HEIGHT)
        self.c.setDash(4, 3)
        self.c.setLineWidth(0.5)
        self.c.line(_MARGIN * 0.5, top, PAGE_WIDTH - _MARGIN * 0.5, top)
        self.c.setDash()
        self.c.setFont(_ITALIC, 7.5)
        self.c.drawCentredString(
            PAGE_WIDTH / 2,
            top + 4,
            "Please detach along the dashed line and return the lower part with your payment.",
        )
        y = top - 22
        self.text(_MARGIN, y, "PAYMENT STUB", _BOLD, 11)
        self.text(_MARGIN, y - 14, f"Account {s.account_number}", _FONT, 9)
        self.text(_MARGIN, y - 26, s.guarantor.name, _FONT, 9)
        rows = [
            ("Statement date", day(s.statement_date)),
            ("Account number", s.account_number),
            ("Please pay by", day(s.due_date)),
            ("Amount due", money(s.amount_due_cents)),
            ("Amount enclosed", "$____________"),
        ]
        left, right = 5.0 * inch, PAGE_WIDTH - _MARGIN
        ry = y
        self.c.setLineWidth(0.6)
        self.c.rect(left - 6, ry - len(rows) * 16 + 10, right - left + 12, len(rows) * 16 + 4)
        for label, value in rows:
            bold = label in ("Amount due", "Amount enclosed")
            self.text(left, ry, label, _BOLD if bold else _FONT, 10 if bold else 9)
            self.right(right, ry, value, _BOLD, 10 if bold else 9)
            ry -= 16
        self.text(_MARGIN, _y(REMIT_TO_BOX[1]) + 12, "Make checks payable to and mail to:", _FONT, 7.5)
        remit = s.practice.remit_to or s.practice.address
        self.block(REMIT_TO_BOX, [s.practice.name.upper(), *(line.upper() for line in remit.lines())])
        pay = "Pay online with the secure link we sent you"
        if s.practice.pay_url:
            pay += f", or at {s.practice.pay_url}"
        self.text(5.0 * inch - 6, _y(9.75), pay + ".", _FONT, 7.5)

    def footer(self, page: int, pages: int) -> None:
        if pages > 1:
            # Page 1: on the tear line's own baseline, right of its centred note, so it never
            # meets the table's last row (which may come down to the stub's margin).
            y = _y(11 - STUB_HEIGHT) + 4 if page == 1 else _y(10.6)
            self.right(PAGE_WIDTH - _MARGIN, y, f"Page {page} of {pages}", _FONT, 7.5)

    def render(self) -> bytes:
        first_top = self.summary_height()
        rows = _rows(self.s)
        first_room = first_top - _y(11 - STUB_HEIGHT) - 24
        next_room = _y(1.3) - _y(10.4)
        pages = _paginate(rows, first_room, next_room)
        for number, page_rows in enumerate(pages, 1):
            if number == 1:
                self.header()
                y = self.summary()
                self.table(y, page_rows)
                self.stub()
            else:
                self.text(_MARGIN, _y(0.6), self.s.practice.name, _BOLD, 10)
                self.text(
                    _MARGIN, _y(0.8), f"Statement for account {self.s.account_number}, continued", _FONT, 9
                )
                self.table(_y(1.1), page_rows)
            self.footer(number, len(pages))
            self.c.showPage()
        self.c.save()
        return self.buffer.getvalue()

    def summary_height(self) -> float:
        """The y where page 1's table starts (same arithmetic as :meth:`summary`, nothing drawn)."""
        s = self.s
        font = _FONT if s.dunning_stage is DunningStage.FIRST else _BOLD
        y = _y(3.35) - 12 * len(simpleSplit(s.dunning_message, font, 9.5, _BODY_WIDTH)) - 4 - 80
        if s.pending_insurance_cents:
            y -= 12
        return y - 4


def render_pdf(statement: Statement) -> bytes:
    """The statement as PDF bytes (deterministic: the same statement gives the same bytes)."""
    return _Pdf(statement).render()
