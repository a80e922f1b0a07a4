"""Cedar schema generated from the typed inputs the gate passes, so a policy that reads an
attribute that does not exist (or names a tool that is not registered) fails at load time
with its id and location, not at decision time.
"""

from __future__ import annotations

import json
import re
import types
import typing
from typing import Any

import cedarpy
from pydantic import BaseModel

ACTIONS = ("execute", "execute_with_approval")


class PolicyLoadError(ValueError):
    """A policy bundle that must not be used; each problem names the policy and where it is."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("policy bundle refused: " + "; ".join(problems))


def _cedar_type(annotation: Any) -> dict[str, Any]:
    origin = typing.get_origin(annotation)
    if origin in (list, set, tuple):
        return {"type": "Set", "element": _cedar_type(typing.get_args(annotation)[0])}
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _cedar_type(args[0])
    if annotation is bool:
        return {"type": "Boolean"}
    if annotation is int:
        return {"type": "Long"}
    if annotation is str or origin is typing.Literal:
        return {"type": "String"}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return record_of(annotation)
    raise TypeError(f"no Cedar type for {annotation!r}")


def _in_cedar(field: Any) -> bool:
    extra = field.json_schema_extra
    return not (isinstance(extra, dict) and extra.get("cedar") is False)


def _optional(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and (
        type(None) in typing.get_args(annotation))


def record_of(model: type[BaseModel]) -> dict[str, Any]:
    """A Cedar record type for a model; `X | None` fields are optional attributes."""
    attributes = {}
    for name, field in model.model_fields.items():
        if not _in_cedar(field):
            continue
        attr = _cedar_type(field.annotation)
        if _optional(field.annotation):
            attr = {**attr, "required": False}
        attributes[name] = attr
    return {"type": "Record", "attributes": attributes}


def cedar_dump(model: BaseModel) -> dict[str, Any]:
    """A model as Cedar context: fields kept out of Cedar dropped, unknown (None) ones absent."""
    skip = {n for n, f in type(model).model_fields.items() if not _in_cedar(f)}
    return model.model_dump(exclude=skip, exclude_none=True)


def _value_type(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"type": "Boolean"}
    if isinstance(value, int):
        return {"type": "Long"}
    if isinstance(value, str):
        return {"type": "String"}
    if isinstance(value, list):
        return {"type": "Set", "element": _value_type(value[0] if value else "")}
    if isinstance(value, dict):
        return {"type": "Record", "attributes": {k: _value_type(v) for k, v in value.items()}}
    raise TypeError(f"no Cedar type for limit value {value!r}")


def build_schema(records: dict[str, type[BaseModel]], limits: dict[str, Any]) -> dict[str, Any]:
    """The Cedar JSON schema of principal Autopilot, resource Tool and the gate's context."""
    attributes = {name: record_of(model) for name, model in records.items()}
    attributes["limits"] = _value_type(limits)
    attributes["tenant_id"] = {"type": "String"}
    attributes["graph"] = {"type": "String"}
    context = {"type": "Record", "attributes": attributes}
    applies = {"principalTypes": ["Autopilot"], "resourceTypes": ["Tool"], "context": context}
    return {"": {"entityTypes": {"Autopilot": {}, "Tool": {}},
                 "actions": {a: {"appliesTo": applies} for a in ACTIONS}}}


def _locate(cedar: str, annotation: str) -> str:
    """`file.cedar:line` of the policy whose @id is `annotation` (files are marked in the text)."""
    current, offset = "policies", 0
    for number, line in enumerate(cedar.splitlines(), start=1):
        marker = re.match(r"// file: (\S+)", line)
        if marker:
            current, offset = marker.group(1), number
        if f'@id("{annotation}")' in line:
            return f"{current}:{number - offset}"
    return "policies"


def _tool_literals(node: Any) -> set[str]:
    if isinstance(node, dict):
        entity = node.get("entity") or node.get("__entity")
        is_tool = isinstance(entity, dict) and entity.get("type") == "Tool"
        found = {entity["id"]} if is_tool else set()
        for value in node.values():
            found |= _tool_literals(value)
        return found
    if isinstance(node, list):
        return set().union(*(_tool_literals(v) for v in node)) if node else set()
    return set()


def validate_bundle(cedar: str, schema: dict[str, Any], known_tools: set[str] | None) -> None:
    """Raise `PolicyLoadError` naming each bad policy (its @id, file and line)."""
    try:
        parsed = json.loads(cedarpy.policies_to_json_str(cedar))
    except Exception as exc:  # the parser's own message carries the position
        raise PolicyLoadError([f"parse error: {exc}"]) from None
    problems: list[str] = []
    policies = parsed.get("staticPolicies", {})
    ids = {pid: p.get("annotations", {}).get("id") for pid, p in policies.items()}
    missing = [pid for pid, ann in ids.items() if not ann]
    problems += [f"{pid}: every policy needs an @id (it is the reason code)" for pid in missing]
    result = cedarpy.validate_policies(cedar, schema)
    for err in result.errors:
        ann = ids.get(err.policy_id) or err.policy_id
        problems.append(f"{ann} ({_locate(cedar, ann)}): {err.error}")
    if known_tools is not None:
        for pid, policy in policies.items():
            for tool in sorted(_tool_literals(policy) - known_tools):
                problems.append(f"{ids.get(pid) or pid} ({_locate(cedar, ids.get(pid) or '')}): "
                                f"Tool::\"{tool}\" is not a registered tool")
    if problems:
        raise PolicyLoadError(problems)
