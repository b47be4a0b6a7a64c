"""``Schema.load`` for thousands of documents of one schema: the same result, a fraction of the cost.

A charge file becomes thousands of claim documents, each loaded with ``ClaimInSchema``.
Most of marshmallow's cost per document is its machinery (an error store, a closure and a
call per field, the unknown-field check, the nested schema's own ``load`` per line), not
the fields' checks. :class:`FastLoader` runs the same checks without that machinery:

- every field present is deserialised by the schema's own field object
  (``field.deserialize``: its type checks, validators, pre/post-load functions); a field
  absent takes its ``load_default`` exactly as marshmallow does; ``List`` and
  ``List(Nested(...))`` are walked the same way, the nested schema planned likewise;
- the schema's own ``@validates_schema`` and ``@post_load`` hooks run on the result;
- a value a *pure* field (a whitelisted class with marshmallow's own validators, no field
  pre/post-load functions) has deserialised once is reused for the same text within this
  loader (codes, dates, charges and NPIs repeat on every other line of a file); only
  immutable results (text, numbers, dates, booleans, None) are kept.

Anything the fast path does not cover, and any document it finds a problem in, is loaded
with ``schema.load`` itself, so every error is marshmallow's own, message for message; a
schema using a feature the plan does not model (pre-load hooks, field validators, partial
loading, ``INCLUDE``, dotted attributes, a field that is neither required nor defaulted)
always goes through ``schema.load``. ``tests/unit/test_fast_load.py`` compares the two.
Create one loader per batch (its memo lives as long as it does).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, ValidationError, fields, validate
from marshmallow.decorators import POST_LOAD, PRE_LOAD, VALIDATES, VALIDATES_SCHEMA
from marshmallow.utils import missing

from claims_server.api_common import fields as api_fields

#: Field classes whose ``deserialize`` depends on the value alone (not on the rest of the
#: document, the clock or the database): a result may be reused for the same text.
PURE_FIELDS: set[type[fields.Field]] = {
    fields.String,
    fields.Date,
    fields.Boolean,
    fields.Integer,
    api_fields.Money,
    api_fields.DecimalString,
    api_fields.X12Text,
    api_fields.Npi,
    api_fields.PublicId,
    api_fields.ProviderRef,
    api_fields.Coded,
    api_fields.StrictBoolean,
    api_fields.StrictInteger,
    api_fields.UsState,
    api_fields.Zip,
}
_IMMUTABLE = (str, int, bool, date, datetime, type(None))
_SCALAR, _LIST, _NESTED_LIST = 0, 1, 2


class _Fallback(Exception):
    """The fast path cannot decide this document: ``schema.load`` will."""


def _is_pure(field: fields.Field, pure: frozenset[type[fields.Field]]) -> bool:
    return (
        (type(field) in PURE_FIELDS or type(field) in pure)
        and not field.pre_load
        and not field.post_load
        and all(isinstance(v, validate.Validator) for v in field.validators)
    )


class _Entry:
    """How one field of a planned schema is loaded."""

    __slots__ = ("attr", "field", "inner", "kind", "pure", "sub")

    def __init__(
        self,
        attr: str,
        field: fields.Field,
        kind: int,
        sub: _Plan | None,
        pure: frozenset[type[fields.Field]],
    ) -> None:
        self.attr = attr
        self.field = field
        self.kind = kind
        self.sub = sub
        self.inner: fields.Field | None = field.inner if isinstance(field, fields.List) else None
        self.pure = _is_pure(self.inner if self.inner is not None and kind == _LIST else field, pure)


class _Plan:
    """One schema's fields, defaults and hooks, checked once (``None`` from :func:`_plan`: not covered)."""

    def __init__(self, schema: Schema, unknown: str, entries: dict[str, _Entry]) -> None:
        self.schema = schema
        self.unknown = unknown
        self.partial = schema.partial
        self.entries = entries
        self.dict_class = schema.dict_class
        # Every attribute in field order (marshmallow's key order): the constant defaults,
        # a placeholder for what each document must or may bring.
        self.template: dict[str, Any] = {}
        self.required: list[str] = []  # data keys
        self.factories: list[tuple[str, str, Callable[[], Any]]] = []  # (data key, attribute, default)
        for key, entry in entries.items():
            default = entry.field.load_default
            if entry.field.required:
                self.template[entry.attr] = None
                self.required.append(key)
            elif callable(default):
                self.template[entry.attr] = None
                self.factories.append((key, entry.attr, default))
            else:
                self.template[entry.attr] = default
        self.validators = [
            (getattr(schema, name), bool(kw.get("pass_original")))
            for name, _many, kw in schema._hooks[VALIDATES_SCHEMA]
        ]
        self.processors = [
            (getattr(schema, name), bool(kw.get("pass_original")))
            for name, _many, kw in schema._hooks[POST_LOAD]
        ]

    def load(self, data: Any, memo: dict[tuple[int, Any], Any]) -> dict[str, Any]:
        if type(data) is not dict:
            raise _Fallback
        entries = self.entries
        out = self.dict_class(self.template)
        for key, raw in data.items():
            entry = entries.get(key)
            if entry is None:
                if self.unknown == EXCLUDE:
                    continue
                raise _Fallback  # RAISE: marshmallow names the unknown field
            if raw is None:
                value = entry.field.deserialize(None, key, data)
            elif entry.kind == _SCALAR:
                value = _scalar(entry.field, entry.pure, raw, key, data, memo)
            elif type(raw) is not list:
                raise _Fallback
            elif entry.kind == _LIST:
                inner = entry.inner
                value = [_scalar(inner, entry.pure, item, None, None, memo) for item in raw]  # type: ignore[arg-type]
                entry.field._validate(value)
            else:
                sub = entry.sub
                value = [sub.load(item, memo) for item in raw]  # type: ignore[union-attr]
                entry.field._validate(value)
            out[entry.attr] = value
        for key in self.required:
            if key not in data:
                raise _Fallback
        for key, attr, factory in self.factories:
            if key not in data:
                out[attr] = factory()
        for validator, pass_original in self.validators:
            if pass_original:
                validator(out, data, partial=self.partial, many=False, unknown=self.unknown)
            else:
                validator(out, partial=self.partial, many=False, unknown=self.unknown)
        for processor, pass_original in self.processors:
            if pass_original:
                out = processor(out, data, partial=self.partial, many=False, unknown=self.unknown)
            else:
                out = processor(out, partial=self.partial, many=False, unknown=self.unknown)
        return out


def _scalar(
    field: fields.Field, pure: bool, raw: Any, key: str | None, data: Any, memo: dict[tuple[int, Any], Any]
) -> Any:
    # Text and whole numbers (not booleans: True == 1 would share 1's entry).
    if not pure or (type(raw) is not str and type(raw) is not int):
        return field.deserialize(raw, key, data)
    memo_key = (id(field), raw)
    try:
        return memo[memo_key]
    except KeyError:
        pass
    value = field.deserialize(raw, key, data)
    if isinstance(value, _IMMUTABLE):
        memo[memo_key] = value
    return value


def _plan(schema: Schema, pure: frozenset[type[fields.Field]], unknown: str | None = None) -> _Plan | None:
    """The plan of ``schema``, or None when it uses something the fast path does not model."""
    unknown = unknown or schema.unknown
    hooks = schema._hooks
    if (
        schema.many
        or schema.partial
        or unknown not in (RAISE, EXCLUDE)
        or hooks[PRE_LOAD]
        or hooks[VALIDATES]
        or any(many for _, many, _ in hooks[VALIDATES_SCHEMA])
        or any(many for _, many, _ in hooks[POST_LOAD])
    ):
        return None
    entries: dict[str, _Entry] = {}
    for name, field in schema.load_fields.items():
        key = field.data_key if field.data_key is not None else name
        attr = field.attribute or name
        if "." in attr or (not field.required and field.load_default is missing):
            return None
        if isinstance(field, fields.List):
            if field.pre_load or field.post_load:
                return None
            inner = field.inner
            if isinstance(inner, fields.Nested):
                nested = inner.schema
                if (
                    inner.many
                    or inner.validators
                    or inner.pre_load
                    or inner.post_load
                    or not isinstance(nested, Schema)
                ):
                    return None
                sub = _plan(nested, pure, inner.unknown)
                if sub is None:
                    return None
                entries[key] = _Entry(attr, field, _NESTED_LIST, sub, pure)
            elif isinstance(inner, fields.List | fields.Nested | fields.Dict):
                return None
            else:
                entries[key] = _Entry(attr, field, _LIST, None, pure)
        elif isinstance(field, fields.Nested | fields.Dict | fields.Tuple):
            return None
        else:
            entries[key] = _Entry(attr, field, _SCALAR, None, pure)
    return _Plan(schema, unknown, entries)


class FastLoader:
    """``loader.load(document)`` returns what ``schema.load(document)`` returns, or raises its error.

    ``pure``: more field classes (the schema's own) whose results may be reused, as :data:`PURE_FIELDS`.
    """

    def __init__(self, schema: Schema, *, pure: tuple[type[fields.Field], ...] = ()) -> None:
        self.schema = schema
        self._plan = _plan(schema, frozenset(pure))
        self._memo: dict[tuple[int, Any], Any] = {}

    def load(self, data: Mapping[str, Any]) -> dict[str, Any]:
        if self._plan is not None:
            try:
                return self._plan.load(data, self._memo)
            except (_Fallback, ValidationError):
                pass
        return self.schema.load(data)


__all__ = ["PURE_FIELDS", "FastLoader"]
