"""Input limits as policy, in one place: every request body, on every web door.

One before_request hook (:func:`check_request_body`, installed by :func:`init_app`) runs
after authentication and before any view reads the body, for ``/api/v1``, ``/fhir/R4``,
the staff workspace ``/ui`` and the patient pages ``/pay`` alike:

- **Size, per content type, before anything is buffered.** JSON (``application/json``,
  ``*+json``) ``JSON_MAX_BYTES``; HTML forms (``application/x-www-form-urlencoded``)
  ``FORM_MAX_BYTES``; X12 files (the upload endpoints, ``security.uploads``) keep their own
  larger ``MAX_UPLOAD_BYTES``. A declared ``Content-Length`` over the limit is a 413 on the
  header alone; a chunked body is refused when Werkzeug's limited stream reaches the limit.
  ``multipart/form-data`` is refused (415): no door takes it, and Werkzeug spools large
  parts to temporary files, which would put PHI on disk in clear.
- **JSON structure.** Strict UTF-8; ``NaN``/``Infinity`` refused; nesting deeper than
  ``JSON_MAX_DEPTH`` is a 400 (the C parser's RecursionError included); an array or object
  with more than ``JSON_MAX_ITEMS`` members is a 422 naming it (a schema validates and reports
  on each item: 250,000 empty claim lines in 1 MB took 73 s and a 77 MB answer).
- **Values that cannot be stored**, anywhere in a JSON body, a form field, the query string
  or a path parameter: NUL
  (PostgreSQL text refuses it), lone surrogates (not encodable as UTF-8; the blind index
  and the field cipher encode), integers outside signed 64 bits and numbers whose
  magnitude is 10^18 or more (beyond any column: money is a BIGINT of cents). Refused with
  422 naming the field as a dotted path and a JSON pointer; nothing has been read by a view,
  so nothing changes.
- **Normalised text.** Every string (JSON values and keys, form fields, query arguments) is
  put in Unicode NFC, so "Zoë" typed as one code point or as ``e`` + combining diaeresis is
  stored, indexed and searched the same way. Secrets (passwords) are left byte for byte.

Views keep reading the body the usual way (webargs, ``request.get_json()``,
``request.form``): :class:`CheckedRequest` hands them the checked, normalised body.
:func:`json_body` is the one parser for views that read JSON themselves (the FHIR facade).
"""

from __future__ import annotations

import json
import unicodedata
from decimal import Decimal
from typing import Any

from flask import Flask, current_app, request
from flask.wrappers import Request
from werkzeug.datastructures import ImmutableMultiDict, MultiDict

from claims_server.errors import ApiError, Unprocessable
from claims_server.security.uploads import X12_CONTENT_TYPES, PayloadTooLarge, UnsupportedMediaType

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
CSV_CONTENT_TYPE = "text/csv"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Fields whose text is a secret compared byte for byte: checked, never normalised (a password
#: set before normalisation, or through the CLI, must still match). Codes and tokens are ASCII.
SECRET_FIELDS = frozenset({"password", "current_password", "new_password"})
#: Integers a column can hold (BIGINT); non-integers must stay below 10^18 in magnitude.
INT_MIN, INT_MAX = -(2**63), 2**63 - 1
MAX_ADJUSTED_EXPONENT = 17
#: Longest integer literal worth converting (int() of longer digit strings is quadratic).
MAX_INT_DIGITS = 20


class BadRequest(ApiError):
    status, slug, title = 400, "bad-request", "Bad request"


# --- normalisation ------------------------------------------------------------------------


def normalize(value: str) -> str:
    """Unicode NFC: one stored form for text that can be typed more than one way."""
    return value if value.isascii() else unicodedata.normalize("NFC", value)


class NormalizedMultiDict(ImmutableMultiDict):  # type: ignore[type-arg]
    """Form fields and query arguments with every value in NFC (secrets untouched)."""

    def __init__(self, mapping: Any = None) -> None:
        pairs = MultiDict(mapping).items(multi=True)
        super().__init__(
            [
                (key, value if key in SECRET_FIELDS or not isinstance(value, str) else normalize(value))
                for key, value in pairs
            ]
        )


class CheckedRequest(Request):
    """Flask's request, with NFC form/query values and the body as :func:`check_request_body` left it."""

    parameter_storage_class = NormalizedMultiDict
    checked_body: bytes | None = None

    def get_data(  # type: ignore[override]
        self, cache: bool = True, as_text: bool = False, parse_form_data: bool = False
    ) -> bytes | str:
        if self.checked_body is not None:
            return self.checked_body.decode("utf-8") if as_text else self.checked_body
        return super().get_data(cache=cache, as_text=as_text, parse_form_data=parse_form_data)


# --- the policy -----------------------------------------------------------------------------


def _settings() -> Any:
    from claims_server.app import state

    return state().settings


def limit_for(mimetype: str) -> int:
    """The body size limit for a content type (never above Flask's ``MAX_CONTENT_LENGTH``).

    The X12 limit applies only where the endpoint takes X12 files (its view's ``accepts``), the
    charge file limit only where it takes ``text/csv``.
    """
    settings = _settings()
    view = current_app.view_functions.get(request.endpoint or "")
    if mimetype in X12_CONTENT_TYPES and mimetype in getattr(view, "accepts", ()):
        limit = settings.MAX_UPLOAD_BYTES
    elif mimetype == CSV_CONTENT_TYPE and mimetype in getattr(view, "accepts", ()):
        limit = settings.CHARGE_IMPORT_MAX_BYTES  # a charge file (claims.charge_import)
    elif mimetype == FORM_CONTENT_TYPE:
        limit = settings.FORM_MAX_BYTES
    else:
        limit = settings.JSON_MAX_BYTES
    return _capped(limit)


def charge_file_limit() -> int:
    """The largest charge CSV (``CHARGE_IMPORT_MAX_BYTES``, never above ``MAX_CONTENT_LENGTH``)."""
    return _capped(_settings().CHARGE_IMPORT_MAX_BYTES)


def _capped(limit: int) -> int:
    ceiling = current_app.config.get("MAX_CONTENT_LENGTH")
    return min(limit, ceiling) if ceiling else limit


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the request body exceeds the limit of {limit} bytes", limit_bytes=limit)


def check_request_body() -> None:
    """before_request: size, structure and storable values of the body (see the module docstring).

    The path's parameters and the query string are checked for text that cannot be stored too
    (a NUL in ``/claims/<id>`` would otherwise reach PostgreSQL as a query parameter).
    """
    _check_fields(((k, v) for k, v in (request.view_args or {}).items() if isinstance(v, str)), "path")
    _check_fields(request.args.items(multi=True), "query")
    if request.method not in BODY_METHODS:
        return
    mimetype = request.mimetype or ""
    if mimetype == "multipart/form-data":
        raise UnsupportedMediaType(
            "multipart/form-data is not accepted: send JSON, a form (application/x-www-form-urlencoded) "
            "or an X12 file as the raw body"
        )
    limit = limit_for(mimetype)
    request.max_content_length = limit  # Werkzeug cuts a chunked body off at the limit
    request.max_form_memory_size = min(limit, _settings().FORM_MAX_BYTES)
    declared = request.content_length
    if declared is not None and declared > limit:
        raise too_large(limit)  # on the header alone: nothing of the body has been read
    if _is_json(mimetype):
        _check_json_body(request)  # type: ignore[arg-type]
    elif mimetype == FORM_CONTENT_TYPE:
        _check_fields(request.form.items(multi=True), "form")


def _check_json_body(req: CheckedRequest) -> None:
    raw = req.get_data(cache=True)
    if req.content_length is None and len(raw) >= (req.max_content_length or 0) > 0:
        # A chunked body is cut off at the limit by Werkzeug's stream, silently: refuse it whole.
        raise too_large(req.max_content_length or 0)
    if not raw:
        return  # no body: the view's schema names the fields it needs
    value = parse_json(raw)
    normalized, changed = _check_tree(value)
    if changed:
        req.checked_body = dump_json(normalized).encode("utf-8")


class _Refused:
    """A number the parser met that no column can hold (kept to name its field afterwards)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _parse_int(text: str) -> int | _Refused:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        return _Refused(text[:24])
    return int(text)


def _parse_constant(text: str) -> _Refused:
    return _Refused(text)


def parse_json(raw: bytes) -> Any:
    """Parse a JSON body: 400 for bytes that are not UTF-8 JSON or nest too deep.

    Numbers are exact (``Decimal``); out-of-range ones are left as markers that
    :func:`_check_tree` reports with their field.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(
            f"the body is not UTF-8 (byte {exc.start})",
            errors=[{"field": None, "location": "json", "message": "not UTF-8", "rule": "utf-8"}],
        ) from None
    try:
        return json.loads(
            text.removeprefix("\ufeff"),
            parse_float=Decimal,
            parse_int=_parse_int,
            parse_constant=_parse_constant,
        )
    except RecursionError:
        raise _too_deep() from None
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            errors=[{"field": None, "location": "json", "message": exc.msg, "rule": "json"}],
        ) from None
    except ValueError:
        raise BadRequest("the body is not valid JSON") from None


def _too_deep() -> BadRequest:
    depth = _settings().JSON_MAX_DEPTH
    return BadRequest(
        f"the JSON body nests deeper than {depth} levels",
        errors=[{"field": None, "location": "json", "message": f"at most {depth} levels", "rule": "depth"}],
        max_depth=depth,
    )


def _path_names(path: tuple[str | int, ...]) -> dict[str, str | None]:
    pointer = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)
    return {"field": ".".join(str(p) for p in path) or None, "pointer": pointer}


def _text_problem(value: str) -> tuple[str, str] | None:
    if "\x00" in value:
        return "no-nul", "contains a NUL character, which cannot be stored"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "no-lone-surrogate", "contains a lone UTF-16 surrogate, which is not a character"
    return None


def _number_problem(value: Any) -> str | None:
    if isinstance(value, _Refused):
        if value.text.lstrip("-")[:1].isdigit():
            return "is a number too large to store"
        return f"{value.text} is not a number this server stores"
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if INT_MIN <= value <= INT_MAX else "is a whole number beyond 64 bits"
    too_large = isinstance(value, Decimal) and (
        not value.is_finite() or (value != 0 and value.adjusted() > MAX_ADJUSTED_EXPONENT)
    )
    return "is a number too large to store" if too_large else None


def _plain_text(value: str) -> bool:
    """True when ``value`` can be stored as it is: no NUL, no lone surrogate, already NFC."""
    if "\x00" in value:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return unicodedata.is_normalized("NFC", value)


def _needs_walk(root: Any, max_depth: int, max_items: int) -> bool:
    """A quick pass with no paths and no copies: False when the body is fine as it is.

    Almost every body is; only then is the full walk (which names fields and builds the NFC
    copy) worth its cost. Both passes apply the same rules.
    """
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if not _plain_text(value):
                return True
        elif isinstance(value, dict):
            if depth > max_depth or len(value) > max_items:
                return True
            for key, sub in value.items():
                if not _plain_text(key):
                    return True
                stack.append((sub, depth + 1))
        elif isinstance(value, list):
            if depth > max_depth or len(value) > max_items:
                return True
            stack.extend((sub, depth + 1) for sub in value)
        elif value is not None and not isinstance(value, bool) and _number_problem(value):
            return True
    return False


def _check_tree(root: Any) -> tuple[Any, bool]:
    """Walk a parsed body (iteratively): depth, storable values; returns it in NFC and whether that changed it."""
    max_depth, max_items = _settings().JSON_MAX_DEPTH, _settings().JSON_MAX_ITEMS
    if not _needs_walk(root, max_depth, max_items):
        return root, False
    errors: list[dict[str, Any]] = []
    changed = False

    def refuse(path: tuple[str | int, ...], rule: str, message: str) -> None:
        errors.append({**_path_names(path), "location": "json", "message": message, "rule": rule})

    def text(value: str, path: tuple[str | int, ...], secret: bool) -> str:
        nonlocal changed
        found = _text_problem(value)
        if found:
            refuse(path, *found)
            return value
        if secret:
            return value
        out = normalize(value)
        changed = changed or out != value
        return out

    holder: list[Any] = [root]
    # (container, key in container, value, path, depth)
    stack: list[tuple[Any, Any, Any, tuple[str | int, ...], int]] = [(holder, 0, root, (), 1)]
    while stack:
        parent, slot, value, path, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > max_depth:
                raise _too_deep()
            if len(value) > max_items:
                # Bounded work for every view: a schema validates (and reports on) each item.
                refuse(path, "max-items", f"has {len(value)} items; at most {max_items} are accepted")
                continue
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, sub in value.items():
                new_key = text(key, (*path, key), secret=False)
                out[new_key] = sub
                stack.append((out, new_key, sub, (*path, key), depth + 1))
            parent[slot] = out
        elif isinstance(value, list):
            for i, sub in enumerate(value):
                stack.append((value, i, sub, (*path, i), depth + 1))
        elif isinstance(value, str):
            key = path[-1] if path else None
            parent[slot] = text(value, path, secret=isinstance(key, str) and key in SECRET_FIELDS)
        else:
            problem = _number_problem(value)
            if problem:
                refuse(path, "number-range", problem)
        if len(errors) >= 20:
            break
    if errors:
        errors.sort(key=lambda e: e["pointer"])
        raise Unprocessable(_refusal("the request", errors), errors=errors)
    return holder[0], changed


def _refusal(what: str, errors: list[dict[str, Any]]) -> str:
    """The detail names the fields (names only, never their values): every door shows the detail."""
    names = ", ".join(str(e["field"] or "(body)") for e in errors[:5])
    return f"{what} has values that cannot be stored ({names}): {errors[0]['message']}"


def _check_fields(items: Any, location: str) -> None:
    errors = []
    for key, value in items:
        for name, text in ((key, key), (key, value)):
            found = _text_problem(text) if isinstance(text, str) else None
            if found:
                errors.append({"field": name, "location": location, "message": found[1], "rule": found[0]})
                break
    if errors:
        what = {"form": "the form", "path": "the address", "query": "the query string"}[location]
        raise Unprocessable(_refusal(what, errors), errors=errors)


def dump_json(value: Any) -> str:
    """JSON text of a parsed body with its numbers exactly as sent (``Decimal`` stays a number)."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dump_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump_json(v) for v in value) + "]"
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value)


def json_body(**loads: Any) -> Any:
    """The request's JSON body after the policy checks (for views that parse JSON themselves).

    ``loads`` are ``json.loads`` options, such as ``parse_float=Decimal``.
    """
    raw = request.get_data(cache=True)
    try:
        return json.loads(raw, **loads)
    except (ValueError, RecursionError):  # only when the hook did not run (a body it never saw)
        raise BadRequest("the body is not valid JSON") from None


def init_app(app: Flask) -> None:
    """Use the checked request class and run the body policy before every view."""
    app.request_class = CheckedRequest
    app.before_request(check_request_body)
