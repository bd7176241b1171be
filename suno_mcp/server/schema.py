"""Compact JSON schemas: what every conversation reads before its first word, made small.

Tool input schemas (:func:`compact_input`, applied by :class:`suno_mcp.server.app.SunoServer`'s
tools/list) and the output schemas of the result models (:class:`CompactSchemaModel`) are written
without references, generated titles or null defaults, and nullable fields as type lists.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, GetJsonSchemaHandler, SerializerFunctionWrapHandler, model_serializer
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

_SIMPLE_KEYS = frozenset(
    {"type", "format", "maxLength", "minLength", "minimum", "maximum", "pattern", "enum", "description"}
)


def _nullable_as_type_list(node: dict[str, Any]) -> dict[str, Any]:
    """``anyOf [X, null]`` written ``type: [X, "null"]`` when X is a plain typed schema."""
    branches = node.get("anyOf")
    if not (isinstance(branches, list) and len(branches) == 2 and {"type": "null"} in branches):
        return node
    other = branches[0] if branches[1] == {"type": "null"} else branches[1]
    if not (isinstance(other, dict) and set(other) <= _SIMPLE_KEYS and isinstance(other.get("type"), str)):
        return node
    merged = {**other, **{k: v for k, v in node.items() if k != "anyOf"}}
    merged["type"] = [other["type"], "null"]
    if "enum" in merged:
        merged["enum"] = [*merged["enum"], None]
    return merged


def compact(node: Any, resolve: Callable[[dict[str, Any]], dict[str, Any]], *, output: bool) -> Any:
    """A JSON schema without references, generated titles, examples or null and false defaults;
    for outputs, also without defaults, descriptions and enums: an output schema gives the
    shape (names, types, nesting, what is required), and seven tools repeat the same one. The
    tool descriptions and each result's text and ``next_step`` say what the fields mean; the
    statuses are listed once, in list_tasks' ``status`` argument.

    ``resolve`` turns a ``{"$ref": ...}`` node into the schema it names. Clients validate
    every structured result against the output schema, most with the pure-Python jsonschema
    package, where resolving references and trying each ``anyOf`` branch cost about three
    times the validation itself; and every byte of a schema is read by the model in every
    conversation. Our models are not recursive, so every reference can be inlined.
    """
    if isinstance(node, list):
        return [compact(item, resolve, output=output) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        # The named model's or enum's own docstring is dropped; the field's description stays.
        target = {k: v for k, v in resolve({"$ref": node["$ref"]}).items() if k != "description"}
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return compact({**target, **siblings}, resolve, output=output)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("title", "$defs", "examples") or (output and key in ("default", "description", "enum")):
            continue
        if key == "default" and (value is None or value is False):
            continue  # an argument left out is None (or false) already
        if key == "properties" and isinstance(value, dict):
            out[key] = {name: compact(prop, resolve, output=output) for name, prop in value.items()}
        else:
            out[key] = compact(value, resolve, output=output)
    return _nullable_as_type_list(out)


def _never_null(node: Any) -> Any:
    if not isinstance(node, dict) or not isinstance(node.get("type"), list):
        return node
    types = [t for t in node["type"] if t != "null"]
    trimmed = {**node, "type": types[0] if len(types) == 1 else types}
    if "enum" in trimmed:
        trimmed["enum"] = [v for v in trimmed["enum"] if v is not None]
    return trimmed


def compact_input(schema: dict[str, Any]) -> dict[str, Any]:
    """A tool's input schema made compact: the same arguments accepted, fewer bytes to read."""
    defs: dict[str, Any] = schema.get("$defs", {})

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        resolved: dict[str, Any] = defs[str(node["$ref"]).removeprefix("#/$defs/")]
        return resolved

    result: dict[str, Any] = compact(schema, resolve, output=False)
    return result


class CompactSchemaModel(BaseModel):
    """A tool result model that publishes its JSON schema compact (see :func:`compact`) and
    leaves out optional fields that are None, so a result says only what is known."""

    @model_serializer(mode="wrap")
    def _without_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        fields = type(self).model_fields
        return {k: v for k, v in data.items() if v is not None or k not in fields or fields[k].is_required()}

    # Each result model's compact schema, by JSON schema mode, made once per process: six tools
    # return a TaskResult, and the SDK generates every tool's output schema anew at registration,
    # which was the larger part of the server's start-up after the SDK's own imports. The schema
    # has no references left (compact inlines them), so one copy fits every generation.
    _compact_schemas: ClassVar[dict[tuple[type[BaseModel], str], JsonSchemaValue]] = {}

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        key = (cls, handler.mode)
        made = CompactSchemaModel._compact_schemas.get(key)
        if made is None:
            made = CompactSchemaModel._compact_schemas[key] = cls._compact_schema(core_schema, handler)
        # A copy, so that nothing done to one tool's schema reaches another's.
        return copy.deepcopy(made)

    @classmethod
    def _compact_schema(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler.resolve_ref_schema(handler(core_schema))
        result: JsonSchemaValue = compact(schema, handler.resolve_ref_schema, output=True)
        # This model leaves out its optional fields that are None, so those are never null.
        # (Nested models of this kind went through this hook already; others keep their nulls.)
        required = set(result.get("required", []))
        result["properties"] = {
            name: prop if name in required else _name_only(_never_null(prop))
            for name, prop in result["properties"].items()
        }
        return result


def _name_only(node: Any) -> Any:
    """An optional text field of a result, listed by name alone: ``{}`` for ``{"type": "string"}``.

    Seven tools repeat one result schema, and a type on each of its optional strings (URLs,
    titles, errors, lyrics) was a sixth of the tool list. The names still say what a result
    may hold; every value there is text, and the result's own text says what it means.
    """
    return {} if node == {"type": "string"} else node
