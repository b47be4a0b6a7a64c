"""The statement as one self-contained HTML page, for the email body and the patient's browser.

Inline CSS only (mail clients drop ``<style>`` blocks and external sheets unevenly, and an
email must not load anything remote: a remote image is a tracking pixel). Every value
is escaped. The pay button appears only when the caller passes the patient's link,
which the delivery step creates per statement.
"""

from __future__ import annotations

from html import escape

from statements.model import DunningStage, Statement
from statements.text import bucket_label, day, money, service_text

_TD = "padding:4px 6px;border-bottom:1px solid #e3e3e3;"
_NUM = _TD + "text-align:right;white-space:nowrap;"


#: Where the pay button goes: a stored statement is rendered once, and its link (a one-time
#: token made at delivery) is put in with :func:`with_pay_link`.
PAY_LINK_SLOT = "<!--pay-link-->"


def _pay_button(pay_url: str) -> str:
    return (
        f'<p><a href="{_e(pay_url)}" style="display:inline-block;background:#1a5fb4;color:#fff;'
        'padding:10px 18px;border-radius:4px;text-decoration:none;">Pay your balance securely</a></p>'
    )


def with_pay_link(page: str, pay_url: str | None) -> str:
    """``page`` (from :func:`render_html` without a link) with the pay button for ``pay_url``."""
    return page.replace(PAY_LINK_SLOT, _pay_button(pay_url) if pay_url else "", 1)


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _cells(title: str, cells: list[tuple[str, int]]) -> str:
    head = "".join(
        f'<th style="{_TD}font-weight:normal;font-size:12px;">{_e(label)}</th>' for label, _ in cells
    )
    body = "".join(f'<td style="{_NUM}font-weight:bold;">{_e(money(c))}</td>' for _, c in cells)
    return (
        f'<h2 style="font-size:15px;margin:18px 0 6px;">{_e(title)}</h2>'
        f'<table role="presentation" style="border-collapse:collapse;width:100%;"><tr>{head}</tr>'
        f"<tr>{body}</tr></table>"
    )


def render_html(statement: Statement, *, pay_url: str | None = None) -> str:
    """The statement as an HTML document (``pay_url``: the patient's own pay link, if any)."""
    s = statement
    practice = s.practice
    notice_style = "" if s.dunning_stage is DunningStage.FIRST else "font-weight:bold;"
    parts: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Statement from {_e(practice.name)}</title></head>",
        '<body style="margin:0;padding:16px;font-family:Helvetica,Arial,sans-serif;color:#222;">',
        '<div style="max-width:720px;margin:0 auto;">',
        f'<h1 style="font-size:20px;margin:0 0 4px;">{_e(practice.name)}</h1>',
        f'<p style="margin:0;color:#555;">{"<br>".join(_e(line) for line in practice.address.lines())}',
    ]
    if practice.phone:
        parts.append(f"<br>Billing questions: {_e(practice.phone_text())}")
    parts.append("</p>")
    parts.append(
        '<table role="presentation" style="margin:16px 0;border:1px solid #ccc;border-collapse:collapse;">'
    )
    facts = [
        ("Statement for", s.guarantor.name),
        ("Patient", s.patient_name),
        ("Statement date", day(s.statement_date)),
        ("Account number", s.account_number),
    ]
    if s.statement_ref:
        facts.append(("Statement number", s.statement_ref))
    facts += [("Please pay by", day(s.due_date)), ("Amount due", money(s.amount_due_cents))]
    for label, value in facts:
        weight = "font-weight:bold;" if label == "Amount due" else ""
        parts.append(
            f'<tr><td style="{_TD}">{_e(label)}</td><td style="{_NUM}{weight}">{_e(value)}</td></tr>'
        )
    parts.append("</table>")
    parts.append(f'<p style="{notice_style}">{_e(s.dunning_message)}</p>')
    parts.append(_pay_button(pay_url) if pay_url else PAY_LINK_SLOT)
    parts.append(
        _cells(
            "Your account",
            [
                ("Previous balance", s.previous_balance_cents),
                ("New charges", s.new_charges_cents),
                ("Payments received", -s.payments_cents),
                ("Adjustments", -s.adjustments_cents),
                ("Current balance", s.balance_cents),
            ],
        )
    )
    aging = [(bucket_label(bucket), cents) for bucket, cents in s.aging.buckets()]
    parts.append(_cells("How old your balance is", [*aging, ("Amount due now", s.amount_due_cents)]))
    if s.pending_insurance_cents:
        parts.append(
            f'<p style="font-style:italic;">{_e(money(s.pending_insurance_cents))} is waiting on your '
            "insurance and is not due yet (marked *).</p>"
        )
    parts.append('<h2 style="font-size:15px;margin:18px 0 6px;">Your visits</h2>')
    parts.append('<table style="border-collapse:collapse;width:100%;font-size:13px;">')
    # Each row adds up: Billed - Insurance paid - Adjustments - You paid - Not due yet = You owe.
    heads = (
        "Date",
        "Service",
        "Billed",
        "Insurance paid",
        "Adjustments",
        "You paid",
        "Not due yet",
        "You owe",
    )
    parts.append(
        "<tr>"
        + "".join(
            f'<th style="{_TD if i < 2 else _NUM}background:#eee;text-align:{"left" if i < 2 else "right"};">'
            f"{_e(h)}</th>"
            for i, h in enumerate(heads)
        )
        + "</tr>"
    )
    for visit in s.visits:
        parts.append(
            f'<tr><td colspan="8" style="{_TD}font-weight:bold;padding-top:10px;">'
            f"Visit on {_e(day(visit.service_date))} with {_e(visit.provider_name)}</td></tr>"
        )
        for line in visit.lines:
            not_due = money(line.not_due_cents) + (" *" if line.pending_insurance else "")
            parts.append(
                f'<tr data-line="{_e(line.line_ref)}"><td style="{_TD}">{_e(day(line.service_date))}</td>'
                f'<td style="{_TD}">{_e(service_text(line.procedure_code, line.description))}</td>'
                f'<td style="{_NUM}">{_e(money(line.billed_cents))}</td>'
                f'<td style="{_NUM}">{_e(money(line.insurance_paid_cents))}</td>'
                f'<td style="{_NUM}">{_e(money(line.adjustments_cents))}</td>'
                f'<td style="{_NUM}">{_e(money(line.patient_paid_cents))}</td>'
                f'<td style="{_NUM}">{_e(not_due)}</td>'
                f'<td style="{_NUM}font-weight:bold;" data-owe>{_e(money(line.balance_cents))}</td></tr>'
            )
            for reason in line.reasons:
                parts.append(
                    f'<tr><td></td><td colspan="7" style="{_TD}font-style:italic;color:#444;">'
                    f"<strong>{_e(reason.label)} {_e(money(reason.amount_cents))}:</strong> "
                    f"{_e(reason.explanation)}</td></tr>"
                )
    if s.unapplied_credit_cents:
        parts.append(
            f'<tr><td colspan="7" style="{_NUM}font-weight:bold;">Credit on your account</td>'
            f'<td style="{_NUM}font-weight:bold;" data-credit>{_e(money(s.unapplied_credit_cents))}</td></tr>'
        )
    parts.append(
        f'<tr><td colspan="7" style="{_NUM}font-weight:bold;">Amount due</td>'
        f'<td style="{_NUM}font-weight:bold;" data-total>{_e(money(s.amount_due_cents))}</td></tr>'
    )
    parts.append("</table>")
    remit = practice.remit_to or practice.address
    parts.append(
        '<p style="margin-top:18px;font-size:13px;">Paying by check? Make it payable to '
        f"{_e(practice.name)}, write your account number on it, and mail it to "
        f"{_e(', '.join(remit.lines()))}.</p>"
    )
    parts.append("</div></body></html>")
    return "\n".join(parts)
