"""``claims-server edi``: validate, parse and acknowledge X12 files from the command line.

This module is imported by ``claims_server.cli`` at start-up, so it imports only click
and the standard library at module level; the ``edi`` package is imported inside each
command. Nothing here touches Flask, SQLAlchemy or the database, so the command starts
fast. Every failure is reported as a structured error (JSON with ``--json``), never a
traceback.

Exit codes: 0 valid / parsed, 1 invalid (or a parse that found errors: an 835 that does
not balance or is truncated, an 837D or another set the parser refuses), 2 not X12 at all
(or the file cannot be read), 3 unchecked (``validate``: nothing wrong was found, but at
least one transaction set has no implementation guide we could check it against, so it is
not called valid).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_NOT_X12 = 2
EXIT_UNCHECKED = 3


def _emit_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _error(code: str, message: str, *, as_json: bool, file: str, exit_code: int) -> None:
    """Print one structured error and exit (JSON on stdout with --json, one line on stderr otherwise)."""
    if as_json:
        _emit_json({"file": file, "valid": False, "error": {"code": code, "message": message}})
    else:
        click.echo(f"{file}: {code}: {message}", err=True)
    sys.exit(exit_code)


@click.group(name="edi")
def edi_group() -> None:
    """X12 5010 files: validate, parse to JSON, acknowledge (999 / TA1)."""


def _location(f: Any) -> str:
    parts = []
    if f.transaction_set:
        parts.append(f"ST {f.transaction_set}")
    if f.segment:
        parts.append(f.segment if f.segment_position is None else f"{f.segment}@{f.segment_position}")
    if f.loop:
        parts.append(f"loop {f.loop}")
    if f.element:
        parts.append(f.element)
    if f.file_ordinal is not None:
        parts.append(f"segment #{f.file_ordinal} in file")
    return ", ".join(parts) or "file"


@edi_group.command("validate")
@click.argument("file", type=str)
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@click.option("--no-rules", is_flag=True, help="TR3 map checks only, without the 837 guide rules")
def validate_command(file: str, as_json: bool, no_rules: bool) -> None:
    """Validate FILE: exit 0 valid, 1 invalid, 2 not X12, 3 unchecked (no guide for a set)."""
    try:
        from edi.validate import validate

        report = validate(file, rules=not no_rules)
    except Exception as exc:  # a bug must still give a structured answer, not a traceback
        _error(
            "INTERNAL_ERROR",
            f"validation failed unexpectedly ({type(exc).__name__})",
            as_json=as_json,
            file=file,
            exit_code=EXIT_INVALID,
        )
        return
    verdict = report.verdict
    code = {
        "valid": EXIT_VALID,
        "invalid": EXIT_INVALID,
        "unchecked": EXIT_UNCHECKED,
    }.get(verdict, EXIT_NOT_X12)
    if as_json:
        _emit_json(report.to_json_dict())
    else:
        errors = sum(1 for f in report.findings if f.is_error)
        warnings = sum(1 for f in report.findings if f.severity.value == "warning")
        shown = "not X12" if verdict == "unreadable" else verdict
        unchecked = sum(1 for ts in report.transaction_sets if not ts.checked)
        detail = f", {unchecked} without an implementation guide" if unchecked else ""
        click.echo(
            f"{file}: {shown} ({len(report.transaction_sets)} transaction sets{detail}, {errors} errors, "
            f"{warnings} warnings)"
        )
        for f in report.findings:
            value = f" [{f.value}]" if f.value else ""
            click.echo(f"  {f.severity.value:7} {f.code}  {_location(f)}: {f.message}{value}")
    sys.exit(code)


# Transaction type -> (module, candidate function names). The first name found is used,
# so the parsers' modules keep their own naming; each result has ``to_json_dict()``.
_PARSERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "835": ("edi.x835", ("parse_835_document", "parse_835")),
    "837": ("edi.x837", ("parse_837_document", "parse_837")),
    "999": ("edi.x999", ("parse_999_document", "parse_999")),
    "277CA": ("edi.x277ca", ("parse_277ca_document", "parse_277ca")),
    "TA1": ("edi.ta1", ("parse_ta1_document", "parse_ta1")),
    "270": ("edi.x270", ("parse_270",)),
    "271": ("edi.x271", ("parse_271",)),
}


def transaction_kind(st01: str, gs08: str, has_ta1: bool) -> str | None:
    """Which parser serves a file: ST01 + its implementation (ST03, else GS08; 277 +
    X214 is the 277CA), or TA1 alone."""
    if st01 in ("835", "837", "999", "270", "271"):
        return st01
    if st01 == "277" and "X214" in gs08:
        return "277CA"
    if not st01 and has_ta1:
        return "TA1"
    return None


def _parser(kind: str) -> Callable[..., Any] | None:
    import importlib

    module_name, names = _PARSERS[kind]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    for name in names:
        func = getattr(module, name, None)
        if callable(func):
            return func
    return None


def _json_of(result: Any) -> object:
    if hasattr(result, "to_json_dict"):
        return result.to_json_dict()
    if isinstance(result, list | tuple):
        return {"transactions": [_json_of(item) for item in result]}
    raise TypeError("parse result has no to_json_dict()")


@edi_group.command("parse")
@click.argument("file", type=str)
@click.option(
    "--json", "as_json", is_flag=True, default=True, help="print the parse result as JSON (default)"
)
def parse_command(file: str, as_json: bool) -> None:
    """Parse FILE (835, 837, 999, 277CA, TA1, 270, 271) and print it as JSON."""
    from edi.envelope import first_transaction
    from edi.reader import X12SyntaxError

    try:
        head = first_transaction(file)
    except X12SyntaxError as exc:
        _error(exc.code, exc.message, as_json=True, file=file, exit_code=EXIT_NOT_X12)
        return
    except OSError as exc:
        _error(
            "UNREADABLE_FILE",
            f"the file cannot be read: {exc.strerror or type(exc).__name__}",
            as_json=True,
            file=file,
            exit_code=EXIT_NOT_X12,
        )
        return
    st01, gs08 = head.st01, head.st03 or head.gs08
    kind = transaction_kind(st01, gs08, head.has_ta1)
    if kind is None:
        _error(
            "UNSUPPORTED_TRANSACTION",
            f"no parser for ST01 {st01!r} / GS08 {gs08!r}",
            as_json=True,
            file=file,
            exit_code=EXIT_INVALID,
        )
        return
    parse = _parser(kind)
    if parse is None:
        _error(
            "PARSER_UNAVAILABLE",
            f"the {kind} parser is not installed in this build",
            as_json=True,
            file=file,
            exit_code=EXIT_INVALID,
        )
        return
    try:
        result = parse(file)
        data = _json_of(result)
    except X12SyntaxError as exc:
        _error(exc.code, exc.message, as_json=True, file=file, exit_code=EXIT_NOT_X12)
        return
    except ValueError as exc:
        # A parser's own structured refusal (X837ParseError: an 837D, a line without a
        # service segment, an amount it cannot read): its code and message, exit 1.
        code, message = getattr(exc, "code", None), getattr(exc, "message", None)
        if not (isinstance(code, str) and isinstance(message, str)):
            code, message = "PARSE_FAILED", f"the {kind} parser failed ({type(exc).__name__})"
        _error(code, message, as_json=True, file=file, exit_code=EXIT_INVALID)
        return
    except Exception as exc:  # a parser bug must still give a structured answer
        _error(
            "PARSE_FAILED",
            f"the {kind} parser failed ({type(exc).__name__})",
            as_json=True,
            file=file,
            exit_code=EXIT_INVALID,
        )
        return
    # Characters outside the X12 sets: the parse is shown, with where they are, and the
    # exit status says the file is invalid (the same findings reject it in `edi ack`).
    characters = _character_findings(file)
    if characters and isinstance(data, dict):
        data["character_findings"] = characters
    failed = bool(characters)
    if kind == "835":
        # Money first: an 835 that does not balance, is truncated (a missing SE/GE/IEA, a
        # set or segment run that could not be read) or carries any error finding is a
        # parse that found errors, whatever else it holds.
        failed = failed or not result.balanced or any(f.is_error for f in result.all_findings())
    elif isinstance(data, dict):
        # The other parsers read what they can; the envelope says whether that is all of
        # the file (the 835 parser checks this itself).
        structure = _structure_findings(file)
        if structure:
            data["structure_findings"] = structure
            failed = failed or any(f["severity"] == "error" for f in structure)
    _emit_json(data)
    sys.exit(EXIT_INVALID if failed else EXIT_VALID)


def _structure_findings(file: str) -> list[dict[str, object]]:
    """Envelope trailers missing (a truncated file) and indented segments, for parsers
    that do not check the envelope themselves."""
    from edi.envelope import EnvelopeChecker
    from edi.findings import error, warning
    from edi.reader import ReaderNotes, X12SyntaxError, read_segments

    checker = EnvelopeChecker(file)
    notes = ReaderNotes()
    indented = notes.indented
    found = []
    count = first = 0
    truncated = {"X12.SE_MISSING", "X12.GE_MISSING", "X12.IEA_MISSING"}
    try:
        for seg in read_segments(file, notes=notes):
            if indented:
                first = first or indented[0]
                count += len(indented)
                indented.clear()
            found += [f for f in checker.feed(seg) if f.code in truncated]
    except (X12SyntaxError, OSError):
        pass  # the parser has said so already
    found += [f for f in checker.finish() if f.code in truncated]
    if notes.text_before_isa:
        found.append(
            error(
                "X12.TEXT_BEFORE_ISA",
                f"{notes.text_before_isa} characters of text come before the first ISA; skipped",
                file_ordinal=1,
            )
        )
    if count:
        found.append(
            warning(
                "X12.SEGMENT_LEADING_SPACE",
                f"{count} segment(s) start with blanks or tabs (first at segment #{first}); read past",
                file_ordinal=first,
            )
        )
    return [f.to_json_dict() for f in found]


def _character_findings(file: str) -> list[dict[str, object]]:
    from edi.charset import character_findings

    try:
        with open(file, "rb") as fh:
            content = fh.read()
    except OSError:
        return []
    return [
        {k: v for k, v in f.to_json_dict().items() if k != "value"}
        for f in character_findings(content, file=file)
    ]


def build_acknowledgment(file: str, *, control_number: int = 1) -> tuple[Any, str]:
    """Validate ``file`` and build our answer with :func:`edi.ack.acknowledge`: a TA1 when
    an interchange envelope is bad (e.g. ISA13 ≠ IEA02), else a 999 per functional group.

    Raises ``LookupError`` when there is nothing to answer (no readable ISA), or
    :class:`edi.ack.NothingToAcknowledge` (a LookupError) when the file holds only
    acknowledgments (999/997, TA1), which are never acknowledged.
    """
    report, ack = _acknowledgment(file, control_number=control_number)
    return report, ack.text


def _acknowledgment(file: str, *, control_number: int) -> tuple[Any, Any]:
    from edi.ack import acknowledge
    from edi.validate import validate

    report = validate(file)
    return report, acknowledge(report, control_number=control_number)


@edi_group.command("ack")
@click.argument("file", type=str)
@click.option(
    "--control-number",
    type=int,
    default=1,
    show_default=True,
    help="ISA13/GS06 control number for the acknowledgment we send",
)
def ack_command(file: str, control_number: int) -> None:
    """Print our acknowledgment for FILE: a 999, or a TA1 when the interchange envelope is bad.

    Acknowledgments are never acknowledged: a 999/997 group (GS01 FA) or a TA1 gets no
    999; what was left out is said on stderr. Exit 0 when FILE is valid, 1 when the
    acknowledgment rejects something, 2 when FILE is not X12 (nothing can be acknowledged).
    A file holding only acknowledgments prints no X12, says why, and exits 0 (1 when it
    is invalid).
    """
    from edi.ack import NothingToAcknowledge

    try:
        report, ack = _acknowledgment(file, control_number=control_number)
    except NothingToAcknowledge as exc:
        click.echo(f"{file}: NO_ACKNOWLEDGMENT: {exc}", err=True)
        sys.exit(EXIT_VALID if exc.report.valid else EXIT_INVALID)
        return
    except LookupError as exc:
        _error("NOT_X12", str(exc), as_json=False, file=file, exit_code=EXIT_NOT_X12)
        return
    except ImportError as exc:
        _error(
            "ACK_UNAVAILABLE",
            f"acknowledgment generation is not installed in this build ({exc.name})",
            as_json=False,
            file=file,
            exit_code=EXIT_INVALID,
        )
        return
    except Exception as exc:
        _error(
            "ACK_FAILED",
            f"acknowledgment generation failed ({type(exc).__name__})",
            as_json=False,
            file=file,
            exit_code=EXIT_INVALID,
        )
        return
    text = ack.text
    for note in ack.notes:
        click.echo(f"{file}: NOT_ACKNOWLEDGED: {note}", err=True)
    click.echo(text, nl=not text.endswith("\n"))
    sys.exit(EXIT_VALID if report.valid else EXIT_INVALID)
