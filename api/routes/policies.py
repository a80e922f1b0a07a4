"""Policies over HTTP: a tenant's versions (its overlays beside the global ones it runs
under), new overlays, activation and shadowing, dry-run decisions, the shadow report and the
recorded decisions.

Everything is scoped to the key's tenant. Global versions are readable (they decide every
call) but never changeable here: a global version affects every tenant, so it stays with the
platform operators' `autopilot policy` CLI. Validation is the store's own: a broken or
widening overlay is refused with the store's message and the offending field, and nothing is
stored. Dry runs go through `PolicyGate.dry_run`, which records nothing.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from api.auth import Admin, Reader
from api.deps import RunnerDep
from api.errors import ERRORS, ApiError, not_found
from autopilot.models import PolicyVersion, Property
from autopilot.runtime import Runner
from graphs import autopilots
from policy.engine import DEFAULTS_FILE, Outcome, RunFacts
from policy.records import decision_dict, recent_decisions
from policy.schema import PolicyLoadError
from policy.simulate import shadow_report as shadow_comparison
from policy.store import PolicyStore
from tools.gateway import Principal
from tools.registry import ToolArgumentError, ToolError, UnknownToolError, pydantic_errors

router = APIRouter(tags=["policies"], responses=ERRORS)
VersionId = Annotated[int, Path(description="policy version id", ge=1)]
ScopeType = Literal["global", "tenant", "portfolio", "property"]

GLOBAL_REFUSED = ("global policy is managed with the `autopilot policy` CLI by platform "
                  "operators (a global version affects every tenant); over HTTP a tenant "
                  "manages its own tenant, portfolio and property overlays")
# Top-level keys of the condition data: a store problem starting with one names a config field.
_CONFIG_SECTIONS = frozenset(json.loads(DEFAULTS_FILE.read_text())) | {"config"}
_PATH = re.compile(r"^[A-Za-z_][\w.\[\]-]*$")


# ---------------------------------------------------------------------- models


class PolicyVersionOut(BaseModel):
    id: int
    scope: ScopeType
    scope_id: str = Field(description="the tenant, portfolio or property id; empty for global")
    tenant_id: str = Field(description="empty for global versions")
    number: int = Field(description="version number within its scope")
    author: str
    note: str
    content_hash: str
    created_at: datetime
    activated_at: datetime | None
    active: bool = Field(description="in force for its scope")
    shadow: bool = Field(description="evaluated beside the active version, log-only")


class PolicyVersionDetail(PolicyVersionOut):
    cedar: str = Field(description="Cedar text (an overlay holds only forbid rules)")
    config: dict[str, Any] = Field(description="condition data (an overlay's is merged over "
                                               "the broader scopes' and may only tighten it)")


class PolicyList(BaseModel):
    versions: list[PolicyVersionOut]
    in_force: str | None = Field(description="the effective policy version label for the "
                                             "tenant scope (None if it does not load)")


class PolicyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope: ScopeType = Field(default="tenant", description="tenant, portfolio or property; "
                             "global is refused (CLI only)")
    scope_id: str = Field(default="", max_length=64, description="the portfolio or property id "
                          "(tenant scope: empty, it is always the key's tenant)")
    cedar: str = Field(default="", max_length=200_000,
                       description="Cedar `forbid` rules, each with an @id (its reason code)")
    config: dict[str, Any] = Field(default_factory=dict, description="condition data overlay, "
                                   'e.g. {"spend": {"autoApproveMax": 300}}; may only tighten')
    note: str = Field(default="", max_length=2000, description="why this version exists")
    activate: bool = Field(default=False, description="make it the active version now")


class EvaluateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    graph: str = Field(default="maintenance", description="autopilot (the Cedar principal)")
    tool: str = Field(description="registered tool name, e.g. dispatch_vendor")
    args: dict[str, Any] = Field(default_factory=dict, description="the tool's arguments; "
                                 "facts are computed from them against the tenant's data, "
                                 "read-only")
    run_facts: RunFacts = Field(default_factory=RunFacts, description="facts of the run the "
                                "call would belong to (property_id picks the scope)")
    version_id: int | None = Field(default=None, ge=1, description="evaluate a stored version "
                                   "(e.g. a candidate not yet active) instead of the active "
                                   "ones")


class EvaluateOut(BaseModel):
    outcome: Outcome
    reasons: list[str] = Field(description="reason codes (the @id of the deciding policies)")
    policy_version: str
    errors: list[str]
    inputs: dict[str, Any] = Field(description="what the policies saw: context, principal, "
                                               "resource")
    recorded: bool = Field(default=False, description="always false: a dry run records "
                                                      "nothing")


class Direction(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    from_: str = Field(alias="from")
    to: str
    count: int


class Flip(Direction):
    tool: str
    reasons: str = Field(description="the shadow's reason codes")


class ShadowReport(BaseModel):
    candidate: str = Field(description="the shadow version label(s) seen")
    since: datetime
    total: int = Field(description="decisions recorded with a shadow outcome")
    flipped: int
    skipped: int
    headlines: list[str] = Field(description='e.g. "would flip ALLOW -> REQUIRE_APPROVAL for '
                                             '14 of 300 decisions"')
    directions: list[Direction]
    flips: list[Flip] = Field(description="flips grouped by tool, direction and reasons")


class ShadowOut(BaseModel):
    version: str | None
    outcome: str | None
    reasons: list[str] | None


class DecisionOut(BaseModel):
    id: int
    at: datetime
    graph: str
    run_id: str
    action_id: str
    tool: str
    stage: str = Field(description="gate (when the plan is gated) | execute (before the write)")
    outcome: Outcome
    reasons: list[str]
    policy_version: str
    errors: list[str]
    proceeds: bool = Field(description="the write went ahead (counts in the usage windows)")
    shadow: ShadowOut | None
    request: dict[str, Any] = Field(description="the request the gate saw, PII-redacted")


class DecisionList(BaseModel):
    decisions: list[DecisionOut]


# ---------------------------------------------------------------------- helpers


def version_out(v: PolicyVersion) -> PolicyVersionOut:
    return PolicyVersionOut(id=v.id, scope=v.scope_type, scope_id=v.scope_id,  # type: ignore[arg-type]
                            tenant_id=v.tenant_id, number=v.number, author=v.author,
                            note=v.note, content_hash=v.content_hash, created_at=v.created_at,
                            activated_at=v.activated_at, active=v.active, shadow=v.shadow)


def version_detail(v: PolicyVersion) -> PolicyVersionDetail:
    return PolicyVersionDetail(**version_out(v).model_dump(), cedar=v.cedar, config=v.config)


def problem_field(problem: str) -> str:
    """The request field a store problem is about: `config.<path>` when it names condition
    data (e.g. "spend.autoApproveMax: 900 is above ..."), else `cedar`."""
    head = re.sub(r" \([^)]*\)", "", problem.split(": ", 1)[0]).strip()
    if _PATH.match(head) and head.split(".", 1)[0].split("[", 1)[0] in _CONFIG_SECTIONS:
        return "config" if head == "config" else f"config.{head}"
    return "cedar"


def refused(exc: PolicyLoadError) -> ApiError:
    """A store refusal as 422, one field per problem."""
    return ApiError(422, "policy_refused", str(exc),
                    fields=[{"field": problem_field(p), "message": p} for p in exc.problems])


def global_refused(field: str | None = None) -> ApiError:
    return ApiError(403, "global_policy_cli_only", GLOBAL_REFUSED, field=field)


def _store(runner: Runner) -> PolicyStore:
    return runner.services.policy_store


def visible_version(store: PolicyStore, version_id: int, tenant_id: str) -> PolicyVersion:
    """A global version or one of the tenant's own; another tenant's is 404 like a missing one."""
    try:
        version = store.get(version_id)
    except PolicyLoadError:
        raise not_found("policy version", str(version_id)) from None
    if version.tenant_id not in ("", tenant_id):
        raise not_found("policy version", str(version_id))
    return version


def own_version(store: PolicyStore, version_id: int, caller: Principal) -> PolicyVersion:
    """A version the caller may change: its tenant's own (global ones are CLI only)."""
    version = visible_version(store, version_id, caller.tenant_id)
    if version.scope_type == "global":
        raise global_refused()
    return version


def _check_place(runner: Runner, tenant_id: str, scope: str, scope_id: str) -> None:
    """A portfolio or property overlay must name one the tenant has: a typo would silently
    never match any call."""
    column = Property.id if scope == "property" else Property.portfolio_id
    with runner.services.db.session(tenant_id) as s:
        found = s.scalar(select(Property.id).where(Property.tenant_id == tenant_id,
                                                   column == scope_id).limit(1))
    if found is None:
        raise ApiError(422, "invalid_request", f"tenant {tenant_id!r} has no {scope} "
                       f"{scope_id!r}", field="scope_id")


# ---------------------------------------------------------------------- reading


@router.get("/v1/policies", response_model=PolicyList,
            summary="Policy versions in force or stored for this tenant: global ones and the "
                    "tenant's own overlays")
def list_policies(caller: Reader, runner: RunnerDep,
                  scope: Annotated[ScopeType | None, Query(description="only this scope")]
                  = None,
                  scope_id: Annotated[str | None, Query(max_length=64,
                                                        description="only this scope id")]
                  = None) -> PolicyList:
    store = _store(runner)
    rows = store.versions(scope_type=scope, scope_id=scope_id, tenant_id=caller.tenant_id)
    try:
        in_force: str | None = store.engine_for(caller.tenant_id).version
    except PolicyLoadError:
        in_force = None
    return PolicyList(versions=[version_out(v) for v in rows], in_force=in_force)


@router.get("/v1/policies/shadow-report", response_model=ShadowReport,
            summary="How the shadow versions decided differently from the live ones, on this "
                    "tenant's real decisions")
def shadow_report(caller: Reader, runner: RunnerDep,
                  days: Annotated[float, Query(gt=0, le=366, description="look back this many "
                                                                         "days")] = 7
                  ) -> ShadowReport:
    report = shadow_comparison(runner.services.db, days=days, tenant_id=caller.tenant_id)
    return ShadowReport.model_validate({**report.as_dict(), "headlines": report.headlines()})


@router.get("/v1/policies/decisions", response_model=DecisionList,
            summary="Recorded gate decisions of this tenant, newest first")
def list_decisions(caller: Reader, runner: RunnerDep,
                   outcome: Annotated[Outcome | None, Query()] = None,
                   tool: Annotated[str | None, Query(max_length=80)] = None,
                   run_id: Annotated[str | None, Query(max_length=200)] = None,
                   limit: Annotated[int, Query(ge=1, le=500)] = 50) -> DecisionList:
    rows = recent_decisions(runner.services.db, tenant_id=caller.tenant_id, thread_id=run_id,
                            outcome=outcome.value if outcome else None, tool=tool, limit=limit)
    out = []
    for r in rows:
        d = decision_dict(r)
        out.append(DecisionOut(**{k: v for k, v in d.items() if k not in ("tenant_id",
                                                                          "thread_id")},
                               run_id=d["thread_id"]))
    return DecisionList(decisions=out)


@router.get("/v1/policies/{version_id}", response_model=PolicyVersionDetail,
            summary="One version with its Cedar text and condition data")
def get_policy(version_id: VersionId, caller: Reader, runner: RunnerDep) -> PolicyVersionDetail:
    return version_detail(visible_version(_store(runner), version_id, caller.tenant_id))


# ---------------------------------------------------------------------- changing


@router.post("/v1/policies", response_model=PolicyVersionDetail, status_code=201,
             summary="Store a new overlay version for this tenant (validated first)",
             description="The tenant is always the key's; the author is the key's subject. A "
                         "narrower scope may only add `forbid` rules and tighten condition "
                         "data; a broken or widening version is refused (422, naming the field) "
                         "and nothing is stored. Global versions are refused (403): "
                         + GLOBAL_REFUSED + ".")
def create_policy(body: PolicyCreate, caller: Admin, runner: RunnerDep) -> PolicyVersionDetail:
    if body.scope == "global":
        raise global_refused(field="scope")
    tenant = caller.tenant_id
    scope_id = body.scope_id.strip()
    if body.scope == "tenant":
        if scope_id and scope_id != tenant:
            raise ApiError(403, "wrong_tenant", f"this key may only change tenant {tenant!r}; "
                           "leave scope_id empty for the tenant scope", field="scope_id")
        scope_id = tenant
    elif not scope_id:
        raise ApiError(422, "invalid_request", f"a {body.scope} version needs scope_id (the "
                       f"{body.scope} id)", field="scope_id")
    else:
        _check_place(runner, tenant, body.scope, scope_id)
    if not body.cedar.strip() and not body.config:
        raise ApiError(422, "invalid_request", "give Cedar forbid rules (cedar) and/or a "
                       "condition data overlay (config)", field="cedar")
    try:
        version = _store(runner).create(
            scope_type=body.scope, tenant_id=tenant, scope_id=scope_id, cedar=body.cedar,
            config=body.config, author=caller.id, note=body.note, activate=body.activate)
    except PolicyLoadError as exc:
        raise refused(exc) from None
    return version_detail(version)


@router.post("/v1/policies/{version_id}/activate", response_model=PolicyVersionOut,
             summary="Make a version the active one of its scope (validated again first)")
def activate_policy(version_id: VersionId, caller: Admin, runner: RunnerDep
                    ) -> PolicyVersionOut:
    store = _store(runner)
    own_version(store, version_id, caller)
    try:
        return version_out(store.activate(version_id))
    except PolicyLoadError as exc:  # the broader versions changed under it
        raise refused(exc) from None


@router.post("/v1/policies/{version_id}/deactivate", response_model=PolicyVersionOut,
             summary="Stop using a version: its scope falls back to the broader policies")
def deactivate_policy(version_id: VersionId, caller: Admin, runner: RunnerDep
                      ) -> PolicyVersionOut:
    store = _store(runner)
    own_version(store, version_id, caller)
    return version_out(store.deactivate(version_id))


@router.post("/v1/policies/{version_id}/shadow", response_model=PolicyVersionOut,
             responses={409: {"description": "the version is active"}},
             summary="Evaluate a candidate version beside the active one, log-only (one "
                     "shadow per scope); see the shadow report")
def shadow_on(version_id: VersionId, caller: Admin, runner: RunnerDep) -> PolicyVersionOut:
    store = _store(runner)
    version = own_version(store, version_id, caller)
    if version.active:
        raise ApiError(409, "version_active", f"version {version_id} is active; a shadow must "
                       "be a candidate that is not in force")
    try:
        return version_out(store.set_shadow(version_id, on=True))
    except PolicyLoadError as exc:
        raise refused(exc) from None


@router.delete("/v1/policies/{version_id}/shadow", response_model=PolicyVersionOut,
               summary="Stop shadowing a version")
def shadow_off(version_id: VersionId, caller: Admin, runner: RunnerDep) -> PolicyVersionOut:
    store = _store(runner)
    own_version(store, version_id, caller)
    return version_out(store.set_shadow(version_id, on=False))


# ---------------------------------------------------------------------- dry run


@router.post("/v1/policies/evaluate", response_model=EvaluateOut,
             summary="Dry-run one proposed call for this tenant; nothing is recorded",
             description="Judged as the gate would judge it now: this tenant's active policies "
                         "(or `version_id`), its data, usage windows and kill switch.")
def evaluate(body: EvaluateIn, caller: Reader, runner: RunnerDep) -> EvaluateOut:
    if body.graph not in autopilots():
        raise ApiError(422, "invalid_request", f"unknown autopilot {body.graph!r}; installed: "
                       f"{', '.join(sorted(autopilots()))}", field="graph")
    store = _store(runner)
    engine = None
    if body.version_id is not None:
        visible_version(store, body.version_id, caller.tenant_id)
        try:
            engine = store.engine_for_version(body.version_id)
        except PolicyLoadError as exc:
            raise ApiError(422, "policy_refused", str(exc), field="version_id") from None
    try:
        _, decision = runner.services.gate.dry_run(
            graph=body.graph, tenant_id=caller.tenant_id, tool=body.tool, args=body.args,
            run_facts=body.run_facts.model_dump(), engine=engine)
    except UnknownToolError as exc:
        raise ApiError(422, "invalid_request", str(exc), field="tool") from None
    except ToolArgumentError as exc:
        raise ApiError(422, "invalid_request", str(exc), fields=[
            {"field": f"args.{f['field']}", "message": f["message"]} for f in exc.fields]
                       ) from None
    except ToolError as exc:  # e.g. an unknown vendor in the arguments
        raise ApiError(422, "invalid_request", str(exc), field="args") from None
    except ValidationError as exc:  # facts the tool computed from the arguments
        raise ApiError(422, "invalid_request", "; ".join(
            f"{e['field']}: {e['message']}" for e in pydantic_errors(exc)), field="args"
                       ) from None
    except PolicyLoadError as exc:
        raise ApiError(409, "policies_do_not_load", f"the active policies do not load: {exc}"
                       ) from None
    return EvaluateOut(outcome=decision.outcome, reasons=decision.reasons,
                       policy_version=decision.policy_version, errors=decision.errors,
                       inputs=decision.inputs)
