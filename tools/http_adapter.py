"""HTTP adapter: typed tools from an OpenAPI 3 document plus a mapping file.

Why: a business system that speaks HTTP should be reachable the same governed way as the
sandbox tools - through the registry (typed arguments refused with the field named), the
gateway (roles, budgets, timeout, authorisation, exactly-once record) and the policy gate
(kind, reversibility, risk, money) - without hand-writing a tool per endpoint. The OpenAPI
document says what an endpoint takes and returns; the mapping file says what we allow and how
much we trust it (which operations become tools, their kind, risk, cost class, timeout and
policy facts), because a vendor's document cannot be trusted to say that.

Behaviour of every generated tool (see docs/http_adapter.md):
- arguments: path, query and header parameters plus the properties of a JSON request body,
  validated by a pydantic model built from their JSON Schemas (unknown fields forbidden);
- the call: httpx, base URL from the mapping or the document's `servers`, the credential
  from an environment variable the mapping names (never from the document);
- failures: 5xx, 429 and connection errors are retried with exponential backoff (honouring
  `Retry-After`) within the tool's timeout, then `TransientToolError`; other 4xx are
  `PermanentToolError` carrying the server's message;
- writes send an `Idempotency-Key` derived from the gateway's `<run>:<action>` key, so a
  retry or a re-run after a crash carries the same key and the remote side can deduplicate.

Adapters are configured at start-up by `AUTOPILOT_HTTP_TOOLS`, a JSON list of
`{"openapi": <path or URL>, "mapping": <path>}`, read by `register` (the catalogue calls it).
httpx is imported lazily so that the catalogue still loads where it is not installed.
"""

from __future__ import annotations

import hashlib
import json
import keyword
import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from email.utils import parsedate_to_datetime
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union
from urllib.parse import quote, urljoin
from uuid import UUID

import structlog
import yaml
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
)

from tools.registry import (
    CostClass,
    PermanentToolError,
    Preview,
    RiskClass,
    ToolContext,
    ToolKind,
    ToolRegistry,
    ToolSpec,
    TransientToolError,
    pydantic_errors,
)

if TYPE_CHECKING:
    import httpx

log = structlog.get_logger("tools.http_adapter")

ENV_VAR = "AUTOPILOT_HTTP_TOOLS"
USER_AGENT = "governed-autopilots-http-adapter/1"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Header parameters OpenAPI says to ignore (the client sets them), and ones we set ourselves.
_RESERVED_HEADERS = {"accept", "content-type", "authorization"}
# Facts the gate sets itself; a mapping may not supply them.
_GATE_FACTS = {"grounded", "confidence_pct", "attempt"}
_TOOL_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_MAX_BACKOFF_S = 10.0


class AdapterConfigError(ValueError):
    """A document or mapping the adapter cannot turn into tools; the message names where."""


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class OpenAPIDocument:
    """A parsed OpenAPI 3 document and where it came from (for relative server URLs)."""

    data: dict[str, Any]
    source: str
    url: str | None  # set when loaded over HTTP


def _parse_text(text: str, where: str) -> Any:
    """JSON when it looks like JSON (faster, exact), otherwise YAML (a superset)."""
    try:
        if text.lstrip().startswith(("{", "[")):
            return json.loads(text)
        return yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise AdapterConfigError(f"{where}: not valid JSON or YAML: {exc}") from None


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def load_document(source: str | Path, *, timeout_s: float = 15.0) -> OpenAPIDocument:
    """Read an OpenAPI 3 document from a file or an http(s) URL (JSON or YAML)."""
    source = str(source)
    url: str | None = None
    if _is_url(source):
        import httpx

        try:
            response = httpx.get(source, timeout=timeout_s, follow_redirects=True,
                                 headers={"Accept": "application/json, application/yaml, */*",
                                          "User-Agent": USER_AGENT})
        except httpx.HTTPError as exc:
            raise AdapterConfigError(f"{source}: could not fetch the document: {exc}") from None
        if response.status_code >= 400:
            raise AdapterConfigError(f"{source}: fetching the document gave HTTP "
                                     f"{response.status_code}")
        text, url = response.text, str(response.url)
    else:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise AdapterConfigError(f"{source}: cannot read the document: {exc}") from None
    data = _parse_text(text, source)
    if not isinstance(data, dict):
        raise AdapterConfigError(f"{source}: an OpenAPI document is an object")
    version = str(data.get("openapi", ""))
    if not version.startswith("3."):
        found = f"swagger {data['swagger']}" if "swagger" in data else repr(version or None)
        raise AdapterConfigError(f"{source}: only OpenAPI 3.x is supported (found {found})")
    if not isinstance(data.get("paths"), dict):
        raise AdapterConfigError(f"{source}: the document has no `paths`")
    return OpenAPIDocument(data=data, source=source, url=url)


class _Resolver:
    """`$ref` resolution inside one document (JSON pointers `#/...`); external refs are
    refused rather than fetched, so a document cannot make us read other files or hosts."""

    def __init__(self, doc: OpenAPIDocument) -> None:
        self.doc = doc

    def lookup(self, ref: str) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise AdapterConfigError(f"{self.doc.source}: only local $ref are supported "
                                     f"(got {ref!r})")
        node: Any = self.doc.data
        for raw in ref[1:].lstrip("/").split("/") if ref != "#" else []:
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise AdapterConfigError(f"{self.doc.source}: $ref {ref!r} points nowhere")
        return node

    def deref(self, node: Any, seen: frozenset[str] = frozenset()) -> Any:
        """Follow `$ref` chains (not into sub-schemas) to the node they name."""
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            if ref in seen:
                raise AdapterConfigError(f"{self.doc.source}: $ref {ref!r} refers to itself")
            seen = seen | {ref}
            node = self.lookup(ref)
        return node


# --------------------------------------------------------------------------- JSON Schema -> types


def _camel(text: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", text)
    out = "".join(w[:1].upper() + w[1:] for w in words if w)
    return out if out[:1].isalpha() else f"M{out}"


def _usable_field_name(name: str) -> bool:
    """Names pydantic can carry as attributes; others are kept as aliases."""
    return (name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("_")
            and not name.startswith("model_") and not hasattr(BaseModel, name))


def _model_config(extra_allowed: bool) -> ConfigDict:
    """Aliases are the wire names: validated and serialised by alias only, so errors and the
    recorded args name the field as the API does."""
    extra: Literal["allow", "forbid"] = "allow" if extra_allowed else "forbid"
    return ConfigDict(extra=extra, validate_by_alias=True, validate_by_name=False,
                      serialize_by_alias=True, populate_by_name=False)


_STRING_FORMATS: dict[str, Any] = {
    "date-time": AwareDatetime, "date": date, "time": dtime, "uuid": UUID,
    "ipv4": IPv4Address, "ipv6": IPv6Address,
}
_INT_FORMATS = {"int32": (-(2 ** 31), 2 ** 31 - 1), "int64": (-(2 ** 63), 2 ** 63 - 1)}
_EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class _SchemaBuilder:
    """Builds pydantic types from the document's JSON Schemas.

    Inputs are strict (unknown properties forbidden unless the schema allows them, string
    formats parsed, readOnly properties left out) so a bad argument is refused before any
    HTTP call; outputs are lenient where a server may legitimately add (extra properties
    kept, strings left as sent) but still check types, required fields, enums and bounds.
    """

    def __init__(self, resolver: _Resolver, *, for_input: bool, prefix: str) -> None:
        self.resolver = resolver
        self.for_input = for_input
        self.prefix = prefix
        self._cache: dict[str, Any] = {}
        self._building: set[str] = set()

    # -- helpers

    def object_view(self, schema: Any) -> tuple[dict[str, Any], set[str], Any] | None:
        """(properties, required, additionalProperties) of an object schema (through $ref
        and allOf), or None when it is not an object with properties."""
        schema = self.resolver.deref(schema)
        if not isinstance(schema, dict):
            return None
        if "allOf" in schema:
            schema = self._merge_all_of(schema)
        props = schema.get("properties")
        types = schema.get("type")
        if not isinstance(props, dict) or not props:
            return None
        if types not in (None, "object") and not (isinstance(types, list) and "object" in types):
            return None
        return dict(props), set(schema.get("required") or []), schema.get("additionalProperties")

    def _merge_all_of(self, schema: dict[str, Any]) -> dict[str, Any]:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        props: dict[str, Any] = dict(merged.get("properties") or {})
        required: list[str] = list(merged.get("required") or [])
        for part in schema["allOf"]:
            part = self.resolver.deref(part)
            if not isinstance(part, dict):
                continue
            if "allOf" in part:
                part = self._merge_all_of(part)
            props.update(part.get("properties") or {})
            required += [r for r in part.get("required") or [] if r not in required]
            for key, value in part.items():
                if key not in ("properties", "required"):
                    merged.setdefault(key, value)
        if props:
            merged["properties"] = props
            merged.setdefault("type", "object")
        if required:
            merged["required"] = required
        return merged

    def field_info(self, schema: Any, *, required: bool, alias: str | None,
                   title: str | None = None) -> Any:
        schema = self.resolver.deref(schema) if isinstance(schema, dict) else schema
        meta: dict[str, Any] = {}
        if isinstance(schema, dict):
            if isinstance(schema.get("description"), str):
                meta["description"] = schema["description"]
            if "examples" in schema and isinstance(schema["examples"], list):
                meta["examples"] = schema["examples"]
            elif "example" in schema:
                meta["examples"] = [schema["example"]]
        if alias is not None:
            meta["alias"] = alias
            meta["title"] = title or alias
        if required:
            return Field(..., **meta)
        default = schema.get("default") if isinstance(schema, dict) else None
        return Field(default=default, **meta)

    def fields(self, props: Mapping[str, Any], required: set[str],
               hint: str) -> dict[str, tuple[Any, Any]]:
        """pydantic field definitions for object properties (keyed by attribute name)."""
        out: dict[str, tuple[Any, Any]] = {}
        for name, sub in props.items():
            resolved = self.resolver.deref(sub)
            if isinstance(resolved, dict):
                if self.for_input and resolved.get("readOnly"):
                    continue
                if not self.for_input and resolved.get("writeOnly"):
                    continue
            attr = name if _usable_field_name(name) else f"field_{len(out)}"
            while attr in out or (attr != name and attr in props):
                attr = f"{attr}_"
            typ = self.build(sub, hint + _camel(name))
            is_required = name in required
            if not is_required:
                typ = Union[typ, None]  # noqa: UP007 - a runtime type, not an annotation
            out[attr] = (typ, self.field_info(sub, required=is_required,
                                              alias=None if attr == name else name))
        return out

    def model(self, hint: str, props: Mapping[str, Any], required: set[str],
              additional: Any) -> type[BaseModel]:
        extra = bool(additional) if self.for_input else additional is not False
        return create_model(  # type: ignore[call-overload, no-any-return]
            f"{self.prefix}{hint}", __config__=_model_config(extra),
            **self.fields(props, required, hint))

    # -- the conversion

    def build(self, schema: Any, hint: str) -> Any:
        if schema is True or schema is None or schema == {}:
            return Any
        if not isinstance(schema, dict):
            return Any
        if "$ref" in schema:
            ref = schema["$ref"]
            if ref in self._cache:
                return self._cache[ref]
            if ref in self._building:  # a recursive schema: stop at a plain value
                target = self.resolver.lookup(ref)
                obj = isinstance(target, dict) and (target.get("type") == "object"
                                                    or "properties" in target)
                return dict[str, Any] if obj else Any
            self._building.add(ref)
            try:
                typ = self.build(self.resolver.lookup(ref), _camel(ref.rsplit("/", 1)[-1]))
            finally:
                self._building.discard(ref)
            self._cache[ref] = typ
            return typ
        if "allOf" in schema:
            return self.build(self._merge_all_of(schema), hint)
        nullable = schema.get("nullable") is True
        for key in ("oneOf", "anyOf"):
            if isinstance(schema.get(key), list):
                options = []
                for i, sub in enumerate(schema[key]):
                    if isinstance(sub, dict) and sub.get("type") == "null":
                        nullable = True
                        continue
                    options.append(self.build(sub, f"{hint}{i + 1}"))
                typ = Union[tuple(options)] if len(options) > 1 else (  # noqa: UP007
                    options[0] if options else Any)
                return Union[typ, None] if nullable else typ  # noqa: UP007
        if "const" in schema:
            return Literal[schema["const"]]  # type: ignore[valid-type]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            values = [v for v in schema["enum"] if v is not None]
            if any(isinstance(v, dict | list) for v in values):
                return Any
            typ = Literal[tuple(values)] if values else type(None)  # type: ignore[valid-type]
            return Union[typ, None] if None in schema["enum"] else typ  # noqa: UP007
        types = schema.get("type")
        if isinstance(types, list):
            nullable = nullable or "null" in types
            types = [t for t in types if t != "null"]
            if len(types) > 1:
                typ = Union[tuple(self.build({**schema, "type": t}, hint)  # noqa: UP007
                                  for t in types)]
                return Union[typ, None] if nullable else typ  # noqa: UP007
            types = types[0] if types else None
        if types is None:
            if "properties" in schema or "additionalProperties" in schema:
                types = "object"
            elif "items" in schema:
                types = "array"
        typ = self._typed(schema, types, hint)
        return Union[typ, None] if nullable else typ  # noqa: UP007

    def _typed(self, schema: dict[str, Any], kind: Any, hint: str) -> Any:
        c: dict[str, Any] = {}
        if kind == "string":
            fmt = schema.get("format")
            base: Any = str
            if self.for_input and fmt in _STRING_FORMATS:
                return _STRING_FORMATS[fmt]
            if self.for_input and fmt == "email":
                c["pattern"] = _EMAIL
            for key, arg in (("minLength", "min_length"), ("maxLength", "max_length"),
                             ("pattern", "pattern")):
                if key in schema:
                    c[arg] = schema[key]
        elif kind in ("integer", "number"):
            base = int if kind == "integer" else float
            if kind == "integer" and schema.get("format") in _INT_FORMATS:
                lo, hi = _INT_FORMATS[schema["format"]]
                c.update(ge=lo, le=hi)
            c.update(_bounds(schema))
            if "multipleOf" in schema:
                c["multiple_of"] = schema["multipleOf"]
        elif kind == "boolean":
            return bool
        elif kind == "null":
            return type(None)
        elif kind == "array":
            base = list[self.build(schema.get("items", True), f"{hint}Item")]  # type: ignore[misc]
            if "minItems" in schema:
                c["min_length"] = schema["minItems"]
            if "maxItems" in schema:
                c["max_length"] = schema["maxItems"]
        elif kind == "object":
            view = self.object_view(schema)
            if view is None:
                addl = schema.get("additionalProperties", True)
                value = Any if addl in (True, None, {}) or addl is False else self.build(
                    addl, f"{hint}Value")
                return dict[str, value]  # type: ignore[valid-type]
            props, required, addl = view
            return self.model(hint, props, required, addl)
        else:
            return Any
        return Annotated[base, Field(**c)] if c else base


def _bounds(schema: Mapping[str, Any]) -> dict[str, Any]:
    """minimum/maximum with both the OpenAPI 3.0 (boolean) and 3.1 (numeric) exclusives."""
    out: dict[str, Any] = {}
    excl_min, excl_max = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if "minimum" in schema:
        out["gt" if excl_min is True else "ge"] = schema["minimum"]
    if "maximum" in schema:
        out["lt" if excl_max is True else "le"] = schema["maximum"]
    if isinstance(excl_min, int | float) and not isinstance(excl_min, bool):
        out.pop("ge", None)
        out["gt"] = excl_min
    if isinstance(excl_max, int | float) and not isinstance(excl_max, bool):
        out.pop("le", None)
        out["lt"] = excl_max
    return out


# --------------------------------------------------------------------------- operations


@dataclass(frozen=True)
class _Param:
    name: str
    location: str  # path | query | header
    required: bool
    schema: Any
    style: str
    explode: bool


@dataclass(frozen=True)
class Operation:
    """One operation of the document, with parameters and body resolved."""

    operation_id: str
    method: str
    path: str
    summary: str
    params: tuple[_Param, ...]
    body_schema: Any  # the JSON request body schema, or None
    body_required: bool
    body_media_type: str
    response_schema: Any  # the JSON schema of the first 2xx response, or None
    servers: tuple[Any, ...]


def _json_media(content: Any) -> tuple[str, Any] | None:
    """(media type, media object) of the JSON entry of a `content` map."""
    if not isinstance(content, dict):
        return None
    for media, obj in content.items():
        base = media.split(";")[0].strip().lower()
        if base == "application/json" or base.endswith("+json") or base == "*/*":
            return base if base != "*/*" else "application/json", obj or {}
    return None


def operations(doc: OpenAPIDocument) -> dict[str, Operation]:
    """Every operation with an operationId, by operationId."""
    resolver = _Resolver(doc)
    out: dict[str, Operation] = {}
    top_servers = tuple(doc.data.get("servers") or ())
    for path, item in doc.data["paths"].items():
        item = resolver.deref(item)
        if not isinstance(item, dict):
            continue
        shared = [resolver.deref(p) for p in item.get("parameters") or []]
        path_servers = tuple(item.get("servers") or ()) or top_servers
        for method in HTTP_METHODS:
            op = item.get(method)
            if not isinstance(op, dict) or not op.get("operationId"):
                continue
            where = f"{doc.source}: {method.upper()} {path}"
            params: dict[tuple[str, str], _Param] = {}
            for raw in [*shared, *(resolver.deref(p) for p in op.get("parameters") or [])]:
                if not isinstance(raw, dict) or "name" not in raw or "in" not in raw:
                    raise AdapterConfigError(f"{where}: a parameter needs `name` and `in`")
                location = raw["in"]
                schema = raw.get("schema")
                if schema is None and (media := _json_media(raw.get("content"))):
                    schema = media[1].get("schema")
                if location == "cookie":
                    if raw.get("required"):
                        raise AdapterConfigError(f"{where}: required cookie parameter "
                                                 f"{raw['name']!r} is not supported")
                    continue
                if location == "header" and raw["name"].lower() in _RESERVED_HEADERS:
                    continue
                style = raw.get("style") or ("simple" if location in ("path", "header")
                                             else "form")
                explode = raw.get("explode", style == "form")
                params[(location, raw["name"])] = _Param(
                    raw["name"], location, bool(raw.get("required")) or location == "path",
                    schema if schema is not None else {"type": "string"}, style, bool(explode))
            body_schema, body_required, media_type = None, False, ""
            body = resolver.deref(op.get("requestBody"))
            if isinstance(body, dict):
                media = _json_media(body.get("content"))
                if media is None:
                    if body.get("required"):
                        raise AdapterConfigError(f"{where}: only JSON request bodies are "
                                                 f"supported (content: "
                                                 f"{', '.join(body.get('content') or {})})")
                else:
                    media_type, obj = media
                    body_schema = obj.get("schema", {})
                    body_required = bool(body.get("required"))
            out[op["operationId"]] = Operation(
                operation_id=op["operationId"], method=method.upper(), path=path,
                summary=str(op.get("summary") or op.get("description") or "").strip(),
                params=tuple(params.values()), body_schema=body_schema,
                body_required=body_required, body_media_type=media_type,
                response_schema=_response_schema(resolver, op.get("responses")),
                servers=tuple(op.get("servers") or ()) or path_servers)
    return out


def _response_schema(resolver: _Resolver, responses: Any) -> Any:
    """The JSON schema of the lowest declared 2xx response that has one."""
    if not isinstance(responses, dict):
        return None
    codes = sorted(str(c) for c in responses if str(c).startswith("2"))
    for code in codes:
        response = resolver.deref(responses[code])
        media = _json_media(response.get("content")) if isinstance(response, dict) else None
        if media and media[1].get("schema") not in (None, {}):
            return media[1]["schema"]
    return None


def _server_url(doc: OpenAPIDocument, servers: tuple[Any, ...]) -> str | None:
    """The first server's URL with its variables at their defaults, made absolute against
    the document's URL when it is relative (OpenAPI's rule)."""
    server = servers[0] if servers else {"url": "/"}
    url = str(server.get("url", "/"))
    for name, var in (server.get("variables") or {}).items():
        url = url.replace("{" + name + "}", str((var or {}).get("default", "")))
    if _is_url(url):
        return url
    return urljoin(doc.url, url) if doc.url else None


# --------------------------------------------------------------------------- the mapping


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AuthSpec(_Strict):
    """The credential: read from an environment variable at every call, never stored."""

    env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\{tenant\}[A-Za-z0-9_]*)?$",
                     description="variable holding the secret; `{tenant}` is replaced by the "
                                 "calling tenant (upper-cased, non-alphanumerics as _)")
    header: str = Field(default="Authorization", min_length=1)
    scheme: str = Field(default="", description="prefix, e.g. Bearer -> `Bearer <secret>`")


class MoneySpec(_Strict):
    arg: str
    unit: Literal["major", "minor"] = "major"  # major: 12.50 -> 1250 cents


class FactSpec(_Strict):
    arg: str
    count: bool = False  # the number of items of a list argument (e.g. recipients)
    scale: float | None = None  # multiply (and round) a numeric argument


class _Tunables(_Strict):
    timeout_s: float | None = Field(default=None, gt=0, le=300)
    retries: int | None = Field(default=None, ge=0, le=10)
    backoff_s: float | None = Field(default=None, ge=0, le=30)
    risk: RiskClass | None = None
    cost_class: CostClass | None = None

    @field_validator("risk", "cost_class", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class ToolMapping(_Tunables):
    """One operation made a tool."""

    operation: str = Field(min_length=1, description="the operationId in the document")
    name: str | None = Field(default=None, description="tool name (default: operationId "
                                                       "in snake_case)")
    kind: ToolKind
    reversible: bool = True
    description: str | None = None
    body_argument: str | None = Field(default=None, description="take the JSON body as one "
                                                                "argument of this name instead "
                                                                "of one argument per property")
    policy_facts: dict[str, Any] = Field(default_factory=dict)
    preview: dict[str, Any] | None = None

    @field_validator("kind", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value


class MappingFile(_Strict):
    """The mapping file: what of the document becomes tools, and how far we trust it."""

    version: Literal[1] = 1
    base_url: str | None = Field(default=None, pattern=r"^https?://")
    auth: AuthSpec | None = None
    headers: dict[str, str] = Field(default_factory=dict, description="constant, non-secret "
                                                                      "headers on every call")
    idempotency_header: str = Field(default="Idempotency-Key", min_length=1)
    defaults: _Tunables = Field(default_factory=_Tunables)
    tools: list[ToolMapping] = Field(min_length=1)


def load_mapping(path: str | Path) -> MappingFile:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise AdapterConfigError(f"{path}: cannot read the mapping: {exc}") from None
    data = _parse_text(text, str(path))
    try:
        return MappingFile.model_validate(data)
    except ValidationError as exc:
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in pydantic_errors(exc))
        raise AdapterConfigError(f"{path}: invalid mapping: {detail}") from None


def _snake(name: str) -> str:
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()


# --------------------------------------------------------------------------- the tools


def remote_idempotency_key(tenant_id: str, tool: str, gateway_key: str) -> str:
    """The `Idempotency-Key` a write sends: a digest of the gateway's `<run>:<action>` key
    (and the tenant and tool), so it is the same on every retry and every re-run of that
    action, differs between tenants and tools, and leaks no internal ids to the remote."""
    digest = hashlib.sha256(f"{tenant_id}\x1f{tool}\x1f{gateway_key}".encode()).hexdigest()
    return f"ap-{digest[:48]}"


@dataclass(frozen=True)
class _Arg:
    location: str  # path | query | header | body | body_whole
    wire: str  # the name on the wire
    param: _Param | None = None


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _describe(item: Any) -> str:
    if isinstance(item, dict):
        loc = item.get("loc") or item.get("field") or item.get("path")
        msg = item.get("msg") or item.get("message") or item.get("detail")
        if msg is not None:
            where = ".".join(str(p) for p in loc) if isinstance(loc, list) else loc
            return f"{where}: {msg}" if where else str(msg)
    return str(item)


def error_message(response: httpx.Response) -> str:
    """The server's own words for a failure (FastAPI `detail`, `message`, `error`, problem+json
    `title`/`detail`), else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:300] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("message", "detail", "error", "error_description", "title", "errors"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value[:300]
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return value["message"][:300]
            if isinstance(value, list) and value:
                return "; ".join(_describe(v) for v in value[:5])[:300]
    return json.dumps(body)[:300]


class _Client:
    """One pooled httpx client per adapter, created on first use (thread-safe)."""

    def __init__(self) -> None:
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def get(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                import httpx

                self._client = httpx.Client(headers={"User-Agent": USER_AGENT})
            return self._client


@dataclass(eq=False)  # hashable by identity: it is a ToolSpec handler
class HttpTool:
    """Everything one generated tool needs at call time."""

    name: str
    operation: Operation
    kind: ToolKind
    base_url: str
    timeout_s: float
    retries: int
    backoff_s: float
    auth: AuthSpec | None
    headers: dict[str, str]
    idempotency_header: str
    args: dict[str, _Arg]
    input_model: type[BaseModel]
    output_model: type[BaseModel]
    wraps_output: bool  # a non-object JSON response comes back as {"data": ...}
    client: _Client = field(repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    # -- building the request

    def _request(self, ctx: ToolContext, args: BaseModel) -> dict[str, Any]:
        values = args.model_dump(mode="json", by_alias=True, exclude_none=True)
        path = self.operation.path
        query: list[tuple[str, str]] = []
        headers = {"Accept": "application/json", **self.headers}
        body: Any = None
        flattened: dict[str, Any] = {}
        for arg, value in values.items():
            spec = self.args[arg]
            if spec.location == "path":
                text = ",".join(_scalar(v) for v in value) if isinstance(value, list) else (
                    _scalar(value))
                path = path.replace("{" + spec.wire + "}", quote(text, safe=""))
            elif spec.location == "query":
                query += _query_pairs(spec, value)
            elif spec.location == "header":
                headers[spec.wire] = ",".join(_scalar(v) for v in value) if isinstance(
                    value, list) else _scalar(value)
            elif spec.location == "body":
                flattened[spec.wire] = value
            else:
                body = value
        if flattened or (self.operation.body_required and body is None
                         and any(a.location == "body" for a in self.args.values())):
            body = flattened
        if self.auth is not None:
            headers[self.auth.header] = self._credential(ctx)
        if self.kind is ToolKind.WRITE:
            if not ctx.idempotency_key:
                raise PermanentToolError(self.name, "a write needs the gateway's idempotency "
                                                    "key (call it through ToolGateway.write)")
            headers[self.idempotency_header] = remote_idempotency_key(
                ctx.tenant_id, self.name, ctx.idempotency_key)
        request: dict[str, Any] = {"method": self.operation.method,
                                   "url": self.base_url.rstrip("/") + path,
                                   "params": query, "headers": headers}
        if body is not None:
            request["content"] = json.dumps(body).encode()
            headers["Content-Type"] = self.operation.body_media_type or "application/json"
        return request

    def _credential(self, ctx: ToolContext) -> str:
        assert self.auth is not None
        var = self.auth.env.replace("{tenant}", re.sub(r"[^A-Za-z0-9]", "_",
                                                       ctx.tenant_id).upper())
        secret = os.environ.get(var, "")
        if not secret:
            raise PermanentToolError(self.name, f"the credential is missing: environment "
                                                f"variable {var} is not set")
        return f"{self.auth.scheme} {secret}" if self.auth.scheme else secret

    # -- calling

    def __call__(self, ctx: ToolContext, args: BaseModel) -> BaseModel:
        import httpx

        request = self._request(ctx, args)
        client = self.client.get()
        deadline = time.monotonic() + self.timeout_s
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TransientToolError(self.name, f"timed out after {self.timeout_s:g}s "
                                                    f"({attempt} attempts)")
            wait = self.backoff_s * (2 ** attempt) * random.uniform(0.8, 1.2)
            wait = min(wait, _MAX_BACKOFF_S)
            try:
                response = client.request(**request, timeout=remaining,
                                          follow_redirects=self.kind is ToolKind.READ)
            except httpx.TimeoutException:
                raise TransientToolError(self.name, f"timed out after {self.timeout_s:g}s "
                                                    f"({request['method']} "
                                                    f"{self.operation.path})") from None
            except httpx.TransportError as exc:
                problem = f"connection error: {type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if status < 300:
                    return self._result(response)
                if status == 429 or status >= 500:
                    problem = f"HTTP {status}: {error_message(response)}"
                    after = _retry_after(response)
                    if after is not None:
                        wait = max(wait, after)
                elif status < 400:
                    raise PermanentToolError(self.name, f"unexpected redirect (HTTP {status} to "
                                                        f"{response.headers.get('location')})")
                else:
                    raise PermanentToolError(self.name, f"HTTP {status}: "
                                                        f"{error_message(response)}")
            attempt += 1
            if attempt > self.retries:
                raise TransientToolError(self.name, f"{problem} (gave up after {attempt} "
                                                    f"attempts)")
            if time.monotonic() + wait >= deadline:
                raise TransientToolError(self.name, f"{problem} (no time left within the "
                                                    f"{self.timeout_s:g}s timeout to retry "
                                                    f"after {wait:.2g}s)")
            log.info("http_tool.retry", tool=self.name, attempt=attempt, wait_s=round(wait, 3),
                     problem=problem)
            self.sleep(wait)

    def _result(self, response: httpx.Response) -> BaseModel:
        if not response.content.strip():
            data: Any = {}
        else:
            try:
                data = response.json()
            except ValueError:
                if self.output_model.model_fields:
                    raise PermanentToolError(self.name, f"expected a JSON response, got "
                                                        f"{response.headers.get('content-type')}"
                                             ) from None
                data = {"text": response.text}
        if self.wraps_output or not isinstance(data, dict):
            data = {"data": data}
        try:
            return self.output_model.model_validate(data)
        except ValidationError as exc:
            detail = "; ".join(f"{e['field']}: {e['message']}" for e in pydantic_errors(exc))
            raise PermanentToolError(self.name, f"the response does not match the "
                                                f"document's schema: {detail}") from None


def _query_pairs(spec: _Arg, value: Any) -> list[tuple[str, str]]:
    """OpenAPI serialisation of a query value (form/explode by default, deepObject)."""
    param = spec.param
    style = param.style if param else "form"
    explode = param.explode if param else True
    if isinstance(value, list):
        if explode and style == "form":
            return [(spec.wire, _scalar(v)) for v in value]
        sep = {"spaceDelimited": " ", "pipeDelimited": "|"}.get(style, ",")
        return [(spec.wire, sep.join(_scalar(v) for v in value))]
    if isinstance(value, dict):
        if style == "deepObject":
            return [(f"{spec.wire}[{k}]", _scalar(v)) for k, v in value.items()]
        if explode:
            return [(k, _scalar(v)) for k, v in value.items()]
        return [(spec.wire, ",".join(f"{k},{_scalar(v)}" for k, v in value.items()))]
    return [(spec.wire, _scalar(value))]


def _facts_fn(tool: str, rules: Mapping[str, Any],
              arg_names: set[str]) -> Callable[[ToolContext, Any], dict[str, Any]] | None:
    """The `policy_facts` function of a mapping: facts from arguments or constants, checked
    now so a typo fails at start-up, not at the first decision."""
    from policy.engine import ActionFacts

    if not rules:
        return None
    compiled: list[tuple[str, MoneySpec | FactSpec | None, Any]] = []
    for fact, rule in rules.items():
        where = f"tool {tool}: policy_facts.{fact}"
        try:
            if fact == "money":
                spec: MoneySpec | FactSpec | None = MoneySpec.model_validate(
                    {"arg": rule} if isinstance(rule, str) else rule)
                target = "spend_cents"
            elif fact in _GATE_FACTS or fact not in ActionFacts.model_fields:
                known = sorted(set(ActionFacts.model_fields) - _GATE_FACTS)
                raise AdapterConfigError(f"{where}: unknown fact (known: money, "
                                         f"{', '.join(known)})")
            elif isinstance(rule, dict):
                spec, target = FactSpec.model_validate(rule), fact
            else:
                ActionFacts.model_validate({fact: rule})
                spec, target = None, fact
        except ValidationError as exc:
            detail = "; ".join(f"{e['field']}: {e['message']}" for e in pydantic_errors(exc))
            raise AdapterConfigError(f"{where}: {detail}") from None
        if spec is not None and spec.arg.split(".")[0] not in arg_names:
            raise AdapterConfigError(f"{where}: no argument {spec.arg!r} (arguments: "
                                     f"{', '.join(sorted(arg_names))})")
        compiled.append((target, spec, rule if spec is None else None))

    def facts(ctx: ToolContext, args: BaseModel) -> dict[str, Any]:
        data = args.model_dump(mode="json", by_alias=True)
        out: dict[str, Any] = {}
        for target, spec, constant in compiled:
            if spec is None:
                out[target] = constant
                continue
            value: Any = data
            for part in spec.arg.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if value is None:
                continue
            if isinstance(spec, MoneySpec):
                value = round(float(value) * (100 if spec.unit == "major" else 1))
            elif spec.count:
                value = len(value) if isinstance(value, list | dict) else 1
            elif spec.scale is not None:
                value = round(float(value) * spec.scale)
            out[target] = value
        return out

    return facts


def _build_tool(doc: OpenAPIDocument, op: Operation, mapping: MappingFile, entry: ToolMapping,
                client: _Client) -> tuple[ToolSpec, HttpTool]:
    name = entry.name or _snake(op.operation_id)
    where = f"tool {name} ({op.operation_id})"
    if not _TOOL_NAME.match(name):
        raise AdapterConfigError(f"{where}: a tool name is a letter then letters, digits or "
                                 f"_ (at most 64)")
    if entry.kind is ToolKind.READ and not entry.reversible:
        raise AdapterConfigError(f"{where}: a read tool cannot be irreversible")
    base_url = mapping.base_url or _server_url(doc, op.servers)
    if not base_url:
        raise AdapterConfigError(f"{where}: the document gives no absolute server URL; set "
                                 f"base_url in the mapping")
    prefix = _camel(name)
    inputs = _SchemaBuilder(_Resolver(doc), for_input=True, prefix=prefix)
    args: dict[str, _Arg] = {}
    fields: dict[str, tuple[Any, Any]] = {}

    def add(wire: str, arg: _Arg, schema: Any, required: bool) -> None:
        if wire in args:
            raise AdapterConfigError(f"{where}: argument {wire!r} is both a {args[wire].location}"
                                     f" and a {arg.location} value; set body_argument in the "
                                     f"mapping to take the body as one argument")
        args[wire] = arg
        built = inputs.fields({wire: schema}, {wire} if required else set(), prefix)
        (attr, definition), = built.items()
        while attr in fields:
            attr = f"{attr}_"
        fields[attr] = definition

    idem = mapping.idempotency_header.lower()
    for param in op.params:
        if param.location == "header" and param.name.lower() in (idem, (
                mapping.auth.header.lower() if mapping.auth else "")):
            continue  # set by the adapter, never by the caller
        add(param.name, _Arg(param.location, param.name, param), param.schema, param.required)
    if op.body_schema is not None:
        view = None if entry.body_argument else inputs.object_view(op.body_schema)
        if view is None:
            add(entry.body_argument or "body", _Arg("body_whole", ""), op.body_schema,
                op.body_required)
        else:
            props, required, _ = view
            for prop, schema in props.items():
                resolved = inputs.resolver.deref(schema)
                if isinstance(resolved, dict) and resolved.get("readOnly"):
                    continue
                add(prop, _Arg("body", prop), schema, op.body_required and prop in required)
    input_model = create_model(  # type: ignore[call-overload]
        f"{prefix}Args", __config__=_model_config(False), **fields)
    outputs = _SchemaBuilder(_Resolver(doc), for_input=False, prefix=prefix)
    wraps = False
    response = outputs.resolver.deref(op.response_schema)
    if op.response_schema is None or (isinstance(response, dict) and outputs.object_view(
            response) is None and (response.get("type") == "object" or (
                "type" not in response and "additionalProperties" in response))):
        # No schema, or a free-form object: the JSON object is passed through as it is.
        output_model = create_model(f"{prefix}Result",  # type: ignore[call-overload]
                                    __config__=_model_config(True))
    else:
        view = outputs.object_view(op.response_schema)
        if view is not None:
            props, required, addl = view
            output_model = outputs.model("Result", props, required, addl)
        else:
            wraps = True
            typ = outputs.build(op.response_schema, "Data")
            output_model = create_model(  # type: ignore[call-overload]
                f"{prefix}Result", __config__=_model_config(True), data=(typ, ...))

    d = mapping.defaults
    timeout_s = entry.timeout_s or d.timeout_s or 10.0
    tool = HttpTool(
        name=name, operation=op, kind=entry.kind, base_url=base_url, timeout_s=timeout_s,
        retries=entry.retries if entry.retries is not None else (
            d.retries if d.retries is not None else 2),
        backoff_s=entry.backoff_s if entry.backoff_s is not None else (
            d.backoff_s if d.backoff_s is not None else 0.2),
        auth=mapping.auth, headers=dict(mapping.headers),
        idempotency_header=mapping.idempotency_header, args=args, input_model=input_model,
        output_model=output_model, wraps_output=wraps, client=client)
    description = (entry.description or op.summary or f"{op.method} {op.path}").strip()
    preview = None
    if entry.preview is not None:
        try:
            raw = dict(entry.preview)
            if isinstance(raw.get("money"), list):
                raw["money"] = tuple(raw["money"])
            preview = Preview(**raw)
        except TypeError as exc:
            raise AdapterConfigError(f"{where}: preview: {exc}") from None
    spec = ToolSpec(
        name=name, description=f"{description} (HTTP {op.method} {op.path})",
        input_model=input_model, output_model=output_model, kind=entry.kind,
        reversible=entry.reversible, cost_class=entry.cost_class or d.cost_class or CostClass.CHEAP,
        risk=entry.risk or d.risk or RiskClass.LOW, handler=tool,
        policy_facts=_facts_fn(name, entry.policy_facts, set(args)), timeout_s=timeout_s,
        preview=preview)
    return spec, tool


def load_adapter(openapi_source: str | Path, mapping_path: str | Path) -> list[ToolSpec]:
    """The tools a mapping makes of an OpenAPI document (nothing is registered or called)."""
    doc = load_document(openapi_source)
    mapping = load_mapping(mapping_path)
    ops = operations(doc)
    client = _Client()
    specs: list[ToolSpec] = []
    seen: set[str] = set()
    for i, entry in enumerate(mapping.tools):
        op = ops.get(entry.operation)
        if op is None:
            raise AdapterConfigError(f"{mapping_path}: tools.{i}.operation: no operationId "
                                     f"{entry.operation!r} in {doc.source} (known: "
                                     f"{', '.join(sorted(ops)) or 'none'})")
        try:
            spec, _ = _build_tool(doc, op, mapping, entry, client)
        except AdapterConfigError as exc:
            raise AdapterConfigError(f"{mapping_path}: tools.{i}: {exc}") from None
        if spec.name in seen:
            raise AdapterConfigError(f"{mapping_path}: tools.{i}: tool {spec.name!r} is "
                                     f"mapped twice")
        seen.add(spec.name)
        specs.append(spec)
    return specs


def register_adapter(registry: ToolRegistry, openapi_source: str | Path,
                     mapping_path: str | Path) -> list[ToolSpec]:
    """Load an adapter and add its tools to `registry` (a name already taken is an error)."""
    specs = load_adapter(openapi_source, mapping_path)
    for spec in specs:
        registry.register(spec)
    log.info("http_adapter.registered", openapi=str(openapi_source), mapping=str(mapping_path),
             tools=[s.name for s in specs])
    return specs


class _AdapterEntry(_Strict):
    openapi: str = Field(min_length=1)
    mapping: str = Field(min_length=1)


def register(registry: ToolRegistry) -> None:
    """Catalogue hook: the adapters listed in `AUTOPILOT_HTTP_TOOLS` (none when unset).

    A broken entry stops start-up with the entry and field named: a service that silently
    lost tools would fail later, in the middle of a run.
    """
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return
    shape = f'{ENV_VAR} must be a JSON list of {{"openapi": ..., "mapping": ...}}'
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise AdapterConfigError(f"{shape}: {exc}") from None
    if not isinstance(data, list):
        raise AdapterConfigError(f"{shape}: got {type(data).__name__}")
    entries: list[_AdapterEntry] = []
    for i, item in enumerate(data):
        try:
            entries.append(_AdapterEntry.model_validate(item))
        except ValidationError as exc:
            detail = "; ".join(f"{e['field']}: {e['message']}" for e in pydantic_errors(exc))
            raise AdapterConfigError(f"{ENV_VAR}[{i}]: {detail}") from None
    for i, entry in enumerate(entries):
        try:
            register_adapter(registry, entry.openapi, entry.mapping)
        except AdapterConfigError as exc:
            raise AdapterConfigError(f"{ENV_VAR}[{i}]: {exc}") from None
