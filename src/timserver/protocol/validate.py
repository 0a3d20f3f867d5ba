"""Turn a decoded JSON body into a command's request struct, with Tencent's error codes.

The request structs of ``messages.py`` are the only description of a body; this module reads
their type hints once per command and compiles a converter (a tree of small closures, so that a
100-item batch costs a few microseconds). The rules are docs/protocol.md §4 step 9 and §7.8:

* not an object, a required field missing, a field of the wrong type, an empty array, more items
  than the command allows, two alternative fields at once → 70402 (call level);
* a UserID (or its legacy alias ``Identifier``) that is a JSON number → 60015 (call level);
* a ``PerItemStr`` field keeps whatever value came, so that the service fails that item alone.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any

import msgspec
from msgspec import UNSET, Struct, UnsetType

from .errors import TimError

Converter = Callable[[Any, str], Any]


class BodyError(TimError):
    """A body refused by the rules above, with what kind of rule it broke and where, so that a
    command with codes of its own for its body (``commands.BodyCodes``) can answer with them.

    ``kind``: ``object`` (not a JSON object), ``missing``, ``type``, ``empty``, ``too_many``,
    ``one_of``, ``number`` (a UserID sent as a number); ``field``: the top-level field it is
    about ("" for the body itself); ``in_item``: the fault is inside an element of an array.
    """

    def __init__(self, code: int, info: str, kind: str, path: str) -> None:
        super().__init__(code, info)
        self.kind = kind
        self.field = "" if path == "the body" else path.split("[", 1)[0].split(".", 1)[0]
        self.in_item = "[" in path
        self.detail = info.removeprefix("Invalid parameters: ")


def _bad(path: str, what: str, kind: str) -> BodyError:
    return BodyError(70402, f"Invalid parameters: {path} {what}.", kind, path)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _split_annotated(tp: Any) -> tuple[Any, dict[str, Any]]:
    """Strip ``Annotated`` and merge the ``extra`` dicts of its msgspec.Meta."""
    extra: dict[str, Any] = {}
    if typing.get_origin(tp) is typing.Annotated:
        base, *metas = typing.get_args(tp)
        for meta in metas:
            if isinstance(meta, msgspec.Meta) and meta.extra:
                extra.update(meta.extra)
        return base, extra
    return tp, extra


def _strip_unset(tp: Any) -> tuple[Any, bool]:
    """``X | UnsetType`` → (X, optional=True)."""
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and UnsetType in args:
        rest = [a for a in args if a is not UnsetType]
        assert len(rest) == 1, f"unsupported union {tp}"
        return rest[0], True
    return tp, False


def _compile(tp: Any, extra: dict[str, Any], max_items: int) -> Converter:
    tp, more = _split_annotated(tp)
    extra = {**extra, **more}
    role = extra.get("tim")
    if role == "per_item":
        return lambda value, path: value
    if tp is str:
        if role == "userid":
            def userid(value: Any, path: str) -> Any:
                if type(value) is str:
                    return value
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    raise BodyError(60015, f"Account type error: {path} is a number; a UserID "
                                           "must be a JSON string.", "number", path)
                raise _bad(path, f"must be a string, not {_type_name(value)}", "type")
            return userid

        def string(value: Any, path: str) -> Any:
            if type(value) is str:
                return value
            raise _bad(path, f"must be a string, not {_type_name(value)}", "type")
        return string
    if tp is int:
        def integer(value: Any, path: str) -> Any:
            if type(value) is int:
                return value
            raise _bad(path, f"must be an integer, not {_type_name(value)}", "type")
        return integer
    if typing.get_origin(tp) is list:
        (item_tp,) = typing.get_args(tp)
        item = _compile(item_tp, {}, max_items)

        def array(value: Any, path: str) -> Any:
            if type(value) is not list:
                raise _bad(path, f"must be an array, not {_type_name(value)}", "type")
            if not value:
                raise _bad(path, "must not be empty", "empty")
            if len(value) > max_items:
                raise _bad(path, f"has {len(value)} items; at most {max_items} are allowed per call",
                           "too_many")
            return [item(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return array
    if isinstance(tp, type) and issubclass(tp, Struct):
        return _compile_struct(tp, max_items)
    raise TypeError(f"no request converter for {tp!r}")


def _compile_struct(cls: type[Struct], max_items: int) -> Converter:
    hints = typing.get_type_hints(cls, include_extras=True)
    fields: list[tuple[str, str | None, bool, Converter]] = []
    for name in cls.__struct_fields__:
        tp, optional = _strip_unset(hints[name])
        _, extra = _split_annotated(tp)
        fields.append((name, extra.get("alias"), optional, _compile(tp, {}, max_items)))

    def struct(value: Any, path: str) -> Any:
        if type(value) is not dict:
            raise _bad(path or "the body", f"must be a JSON object, not {_type_name(value)}",
                       "object" if not path else "type")
        kwargs = {}
        for name, alias, optional, convert in fields:
            key = name
            if name not in value and alias is not None and alias in value:
                key = alias  # legacy spelling; when both are present the documented one wins
            if key not in value:
                if optional:
                    continue
                raise _bad(f"{path}.{name}" if path else name, "is required", "missing")
            kwargs[name] = convert(value[key], f"{path}.{key}" if path else key)
        return cls(**kwargs)
    return struct


class RequestParser:
    """Parse a body for one command: JSON object → its request struct, or a ``TimError``."""

    def __init__(self, request: type[Struct], max_items: int,
                 exactly_one_of: tuple[str, ...] = ()) -> None:
        self._convert = _compile_struct(request, max_items)
        self._one_of = exactly_one_of
        self._request = request
        self._max_items = max_items
        self._lists = _top_level_lists(request)
        # Straight from the body's bytes to the struct, for the common case (see from_json).
        self._decoder = (msgspec.json.Decoder(request)
                         if self._lists is not None and not exactly_one_of else None)

    def from_json(self, body: bytes) -> Any:
        """The request struct of a valid body, decoded from its bytes in one pass; None when
        this cannot vouch for the body (the caller then decodes it and calls the parser, which
        gives the same struct or says what is wrong). Only ASCII bodies: msgspec lets invalid
        UTF-8 through inside strings, which the wire layer refuses (60003)."""
        if self._decoder is None or not body.isascii():
            return None
        try:
            request = self._decoder.decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            return None
        if all(_size_ok(getattr(request, name), self._max_items) for name in self._lists):
            return request
        return None

    def __call__(self, body: Any) -> Any:
        if self._one_of and type(body) is dict:
            present = [k for k in self._one_of if k in body]
            if len(present) != 1:
                names = " or ".join(self._one_of)
                what = "both are present" if present else "neither is present"
                raise _bad("the body", f"must have exactly one of {names}; {what}", "one_of")
        # The common case, a valid body, in msgspec's C code; anything it refuses, or that breaks
        # a rule it does not know (array sizes), goes through the converter, which says why.
        if self._lists is not None:
            try:
                request = msgspec.convert(body, self._request)
            except msgspec.ValidationError:
                pass
            else:
                if all(_size_ok(getattr(request, name), self._max_items) for name in self._lists):
                    return request
        return self._convert(body, "")


def _size_ok(value: Any, max_items: int) -> bool:
    return value is UNSET or 1 <= len(value) <= max_items


def _top_level_lists(cls: type[Struct]) -> tuple[str, ...] | None:
    """The list fields of a request struct, if msgspec.convert gives exactly what the converter
    gives once their sizes are checked: strings, structs and lists of them, no nested lists (a
    legacy alias or a ``per_item`` value that is not a string makes msgspec refuse the body, and
    the converter takes it). None (no fast path) for anything else."""
    lists = []
    for name, tp in typing.get_type_hints(cls, include_extras=True).items():
        tp, _ = _strip_unset(tp)
        base, _ = _split_annotated(tp)
        if typing.get_origin(base) is list:
            (item,) = typing.get_args(base)
            item, _ = _split_annotated(item)
            if isinstance(item, type) and issubclass(item, Struct):
                if _top_level_lists(item) != ():
                    return None
            elif item is not str:
                return None
            lists.append(name)
        elif not (base is str or base is int or (isinstance(base, type) and issubclass(base, Struct)
                                  and _top_level_lists(base) == ())):
            return None
    return tuple(lists)


__all__ = ["UNSET", "BodyError", "RequestParser"]
