"""Patient statements: aging, plain-language reasons, dunning, rendering and delivery.

A pure library (imports only ``coding``): ``claims_server.statements.services`` reads the
ledger into a :class:`StatementInput`, :func:`decide` applies the practice's cycle rules,
:func:`build_statement` makes the :class:`Statement`, and :func:`render_pdf` /
:func:`render_html` draw it for the mail house and for email or the browser.
"""

from statements.build import AccountAmounts, account_amounts, age_balances, build_statement, held_cents
from statements.cycle import (
    AccountSnapshot,
    CycleAction,
    CycleDecision,
    CycleRules,
    CycleRulesError,
    SkipReason,
    decide,
    next_step,
)
from statements.model import (
    Address,
    Aging,
    DunningStage,
    Guarantor,
    LedgerLine,
    Practice,
    PreviousStatement,
    ResponsibilityPart,
    Statement,
    StatementInput,
    StatementInputError,
)
from statements.render_html import render_html, with_pay_link
from statements.render_pdf import render_pdf
from statements.text import service_text

__all__ = [
    "AccountAmounts",
    "AccountSnapshot",
    "Address",
    "Aging",
    "CycleAction",
    "CycleDecision",
    "CycleRules",
    "CycleRulesError",
    "DunningStage",
    "Guarantor",
    "LedgerLine",
    "Practice",
    "PreviousStatement",
    "ResponsibilityPart",
    "SkipReason",
    "Statement",
    "StatementInput",
    "StatementInputError",
    "account_amounts",
    "age_balances",
    "build_statement",
    "decide",
    "held_cents",
    "next_step",
    "render_html",
    "render_pdf",
    "service_text",
    "with_pay_link",
]
