"""The approval context pack: everything a reviewer needs to decide one pending approval.

Seed spec: summary, proposed call, current record and the diff the call would make,
reasoning, confidence, evidence, policy reasons, risk, blast radius, rollback plan.

The interrupt payload (`approval.request`) says what was asked; the run's state says why
(proposals, evidence, facts). What the world looks like *now* is read at the time the pack
is built, through the tool gateway as the run's autopilot (so the read is tenant-scoped,
granted, budgeted and on `gateway_calls` like any other), because the record may have
moved since the plan was made. Which record a write changes, what it would set and what it
touches come from the tool's declared `Preview` (tools/registry.py), never from tool names
here, so every autopilot's writes get a preview by declaring one.

Free text a resident wrote (the trigger, evidence, the current record) is PII-redacted; the
call's arguments and the values it would write are shown verbatim, because approving means
approving exactly those.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from autopilot.models import Approval, Evidence, Run
from autopilot.privacy import redact, redact_text
from autopilot.services import Services
from tools.gateway import Principal
from tools.registry import Preview, ToolError, ToolSpec

# Proposal statuses whose record does not exist yet (a create that has not run).
NOT_WRITTEN = frozenset({"proposed", "allowed", "needs_approval", "approved", "blocked",
                         "rejected", "skipped", "simulated", "cancelled"})


def build_context_pack(services: Services, approval: Approval,
                       values: dict[str, Any]) -> dict[str, Any]:
    """The JSON-able context pack of `approval`, given the run's current state `values`."""
    request: dict[str, Any] = approval.request or {}
    proposals = {p["action_id"]: p for p in values.get("proposals") or []
                 if isinstance(p, dict) and "action_id" in p}
    trigger = values.get("trigger") or _run_trigger(services, approval)
    principal = Principal.autopilot(approval.graph or str(values.get("graph", "")),
                                    approval.tenant_id)
    reader = _Reader(services, principal, approval.thread_id,
                     str(trigger.get("trace_id") or approval.thread_id))
    evidence = _Evidence(services, approval.tenant_id, values.get("evidence") or [])
    pending_creates = _pending_creates(services, list(proposals.values()))
    policy = {p.get("action_id"): p for p in request.get("policy", []) if isinstance(p, dict)}

    actions = []
    held = request.get("action_requests", [])
    for action_id, call in zip(request.get("action_ids", []), held, strict=False):
        proposal = proposals.get(action_id, {})
        args = call.get("args") if isinstance(call.get("args"), dict) else proposal.get(
            "args", {})
        tool = str(call.get("name") or proposal.get("tool", ""))
        spec = _spec(services, tool)
        decision = proposal.get("decision") or {}
        rule = policy.get(action_id, {})
        actions.append({
            "action_id": action_id,
            "tool": tool,
            **_tool_class(spec),
            "args": args,
            "description": call.get("description") or proposal.get("description", ""),
            "confidence": proposal.get("confidence"),
            "reasoning": proposal.get("reasoning", ""),
            "grounded": proposal.get("grounded"),
            "grounding": proposal.get("grounding", ""),
            "evidence": evidence.cited(proposal.get("evidence_refs", [])),
            "policy": {"outcome": rule.get("outcome", decision.get("outcome")),
                       "reasons": list(rule.get("reasons", decision.get("reasons", []))),
                       "policy_version": rule.get("policy_version",
                                                  decision.get("policy_version")),
                       "decision_id": decision.get("decision_id")},
            **_preview(spec, args, reader, pending_creates),
            "depends_on": proposal.get("depends_on", []),
            "rollback_plan": proposal.get("rollback_plan", ""),
            "expected_outcome": proposal.get("expected_outcome", ""),
        })

    also = []
    for item in request.get("also_runs_on_approval", []):
        proposal = proposals.get(item.get("action_id"), {})
        tool = str(item.get("tool") or proposal.get("tool", ""))
        spec = _spec(services, tool)
        args = proposal.get("args", {})
        also.append({
            "action_id": item.get("action_id"), "tool": tool, **_tool_class(spec),
            "description": item.get("description") or proposal.get("description", ""),
            "args": args, "depends_on": proposal.get("depends_on", []),
            "blast_radius": _blast(spec, args),
            "rollback_plan": proposal.get("rollback_plan", ""),
        })

    facts = {k: v for k, v in (values.get("run_facts") or {}).items() if k != "text"}
    return {
        "approval_id": approval.id,
        "run_id": approval.thread_id,
        "round": request.get("round"),
        "summary": request.get("summary") or values.get("plan_summary", ""),
        "severity": approval.severity or request.get("severity"),
        "risk": request.get("risk", ""),
        "trigger": _trigger(trigger),
        "facts": redact(facts),
        "actions": actions,
        "also_runs_on_approval": also,
        "blast_radius": _total(actions, also),
    }


# --------------------------------------------------------------------------- actions


def _spec(services: Services, tool: str) -> ToolSpec | None:
    """The tool's spec, or None if it left the registry since the plan (the pack still
    shows what was asked)."""
    return services.registry.get(tool) if tool in services.registry else None


def _tool_class(spec: ToolSpec | None) -> dict[str, Any]:
    if spec is None:  # the tool was removed from the registry since the plan
        return {"kind": None, "reversible": None, "risk": None, "cost_class": None}
    return {"kind": spec.kind.value, "reversible": spec.reversible, "risk": spec.risk.value,
            "cost_class": spec.cost_class.value}


def _blast(spec: ToolSpec | None, args: Mapping[str, Any]) -> dict[str, Any]:
    if spec is None or spec.preview is None:
        return {"records": [], "record_count": 0, "creates": [], "people_notified": [],
                "people_notified_count": 0, "money": {}, "money_total": 0.0,
                "declared": False}
    return {**spec.preview.blast_radius(args), "declared": True}


class _Reader:
    """Reads the current records through the gateway, as the run's autopilot, once each."""

    def __init__(self, services: Services, principal: Principal, thread_id: str,
                 trace_id: str) -> None:
        self.services, self.principal = services, principal
        self.thread_id, self.trace_id = thread_id, trace_id
        self._seen: dict[str, tuple[dict[str, Any] | None, str]] = {}

    def read(self, tool: str, args: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        """(record, "") or (None, why it could not be read)."""
        key = f"{tool}:{sorted(args.items())}"
        if key not in self._seen:
            try:
                self._seen[key] = (self.services.gateway.read(
                    self.principal, tool, args, thread_id=self.thread_id,
                    trace_id=self.trace_id), "")
            except ToolError as exc:
                self._seen[key] = (None, str(exc))
        return self._seen[key]


PendingCreates = dict[tuple[str, str], tuple[str, dict[str, Any]]]


def _pending_creates(services: Services, proposals: list[dict[str, Any]]) -> PendingCreates:
    """(record kind, id) -> (action id, fields) for records this run will create but has
    not yet: a later call on such a record has nothing to read, its "before" is the create."""
    out: PendingCreates = {}
    for p in proposals:
        spec = _spec(services, str(p.get("tool")))
        preview = spec.preview if spec is not None else None
        args = p.get("args") or {}
        if preview is None or not preview.creates or p.get("status") not in NOT_WRITTEN:
            continue
        out[(preview.record, str(args.get(preview.key)))] = (
            str(p["action_id"]), preview.proposed(args, None))
    return out


def _preview(spec: ToolSpec | None, args: dict[str, Any], reader: _Reader,
             pending: PendingCreates) -> dict[str, Any]:
    """`record` (what and where it came from), `current`, `diff` and `blast_radius`."""
    blast = _blast(spec, args)
    preview: Preview | None = spec.preview if spec is not None else None
    if preview is None:
        return {"record": {"state": "undeclared",
                           "note": "the tool declares no preview; see args"},
                "current": None, "diff": {}, "blast_radius": blast}
    record_id = args.get(preview.key)
    record = {"kind": preview.record, "id": record_id, "read_tool": preview.read_tool}
    if preview.creates:
        after = preview.proposed(args, None)
        return {"record": {**record, "state": "new", "note": "the call creates this record"},
                "current": None,
                "diff": {f: {"before": None, "after": v} for f, v in after.items()},
                "blast_radius": blast}
    created_by = pending.get((preview.record, str(record_id)))
    if created_by is not None:
        action_id, before = created_by
        record.update(state="pending_create", created_by=action_id,
                      note=f"not created yet: {action_id} creates it before this call runs; "
                           "before shows what it will create")
        current = None
    else:
        current, error = reader.read(preview.read_tool, preview.read_args(args))
        before = current or {}
        record.update(state="exists" if current is not None else "unreadable",
                      **({"error": error} if error else {}),
                      read_at=datetime.now(UTC).isoformat())
    after = preview.proposed(args, before)
    shown = redact(dict(before))  # identifiers stay, free text is scrubbed
    diff = {f: {"before": shown.get(f), "after": v}
            for f, v in after.items() if not _same(before.get(f), v)}
    return {"record": record, "current": shown if current is not None else None,
            "diff": diff, "blast_radius": blast}


def _same(a: Any, b: Any) -> bool:
    """Equal as values: 1400 == 1400.0, and ISO datetimes by instant, not by spelling."""
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    if isinstance(a, str) and isinstance(b, str) and a != b:
        try:
            return datetime.fromisoformat(a) == datetime.fromisoformat(b)
        except ValueError:
            return False
    return bool(a == b)


def _total(actions: list[dict[str, Any]], also: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything approving sets off: the held actions plus those that run with them."""
    records: list[str] = []
    notified: list[str] = []
    money = 0.0
    for a in [*actions, *also]:
        blast = a["blast_radius"]
        records += [r for r in blast["records"] if r not in records]
        notified += [n for n in blast["people_notified"] if n not in notified]
        money += blast["money_total"]
    return {"records": records, "record_count": len(records), "people_notified": notified,
            "people_notified_count": len(notified), "money_total": round(money, 2),
            "irreversible": [a["action_id"] for a in [*actions, *also]
                             if a["reversible"] is False]}


# --------------------------------------------------------------------------- trigger, evidence


def _run_trigger(services: Services, approval: Approval) -> dict[str, Any]:
    """The trigger from the `runs` row, when the checkpoint has no state to give."""
    with services.db.session(approval.tenant_id) as s:
        trigger = s.scalar(select(Run.trigger).where(Run.thread_id == approval.thread_id))
    return dict(trigger or {})


def _trigger(trigger: Mapping[str, Any]) -> dict[str, Any]:
    payload = trigger.get("payload") if isinstance(trigger.get("payload"), dict) else {}
    text = payload.get("text") or payload.get("description")
    return {"event_id": trigger.get("event_id"), "event_type": trigger.get("event_type"),
            "source": trigger.get("source"), "occurred_at": trigger.get("occurred_at"),
            "text": redact_text(str(text)) if text else None, "payload": redact(payload)}


class _Evidence:
    """The run's citable refs, with the stored (redacted) evidence records behind them."""

    def __init__(self, services: Services, tenant_id: str,
                 entries: list[dict[str, Any]]) -> None:
        self.by_ref = {e["ref"]: e for e in entries if isinstance(e, dict) and "ref" in e}
        ids = sorted({str(e["evidence_id"]) for e in self.by_ref.values()
                      if e.get("evidence_id")})
        self.rows: dict[str, Evidence] = {}
        if ids:
            with services.db.session(tenant_id) as s:
                self.rows = {r.id: r for r in s.scalars(select(Evidence).where(
                    Evidence.tenant_id == tenant_id, Evidence.id.in_(ids)))}

    def cited(self, refs: list[str]) -> list[dict[str, Any]]:
        out = []
        for ref in refs:
            entry = self.by_ref.get(ref)
            if entry is None:
                out.append({"ref": ref, "captured": False,
                            "note": "cited, but this run captured no such evidence"})
                continue
            row = self.rows.get(str(entry.get("evidence_id")))
            item: dict[str, Any] = {
                "ref": ref, "captured": True, "evidence_id": entry.get("evidence_id"),
                "source": row.source if row else entry.get("source", ""),
                "summary": row.summary if row else redact_text(str(entry.get("summary", ""))),
            }
            if row is not None:
                item.update(captured_at=row.captured_at.isoformat() if row.captured_at
                            else None, content_hash=row.content_hash,
                            record=_entity(row.content, ref))
            out.append(item)
        return out


def _entity(content: Any, ref: str) -> dict[str, Any] | None:
    """The record a `kind:id` ref names inside a stored (redacted) read: the read's own
    record, or the item with that id in one of its lists."""
    if not isinstance(content, dict) or ":" not in ref:
        return None
    wanted = ref.split(":", 1)[1]
    if content.get("id") == wanted:
        return content
    for value in content.values():
        if isinstance(value, list):
            for item in value:
                if isinstance(item, dict) and item.get("id") == wanted:
                    return item
    return None
