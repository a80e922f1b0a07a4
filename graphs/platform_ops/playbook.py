"""Deterministic platform-ops playbooks (seed 004 task types): perceive through read tools,
then propose mitigations with evidence, confidence, a risk score, the blast radius the tool's
`Preview` declares, and a rollback plan. Whether a proposal runs on its own, waits for a
person or is refused is the policy gate's call, never the playbook's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

from graphs.platform_ops.events import (
    DataPipeline,
    GrowthOps,
    ReliabilityTriage,
    SafetyTriage,
    SupportAssist,
)
from graphs.spine import NodeIO, Perception
from graphs.state import Escalation, PlanResult, Proposal, VerifySpec
from graphs.trigger import TriggerEnvelope, stable_id
from tools.catalog import build_registry
from tools.platform_ops import (
    RESET_RISK,
    backfill_risk,
    ban_risk,
    flag_recipients,
    flag_risk,
    friction_risk,
    remove_risk,
    resolve_risk,
    restart_risk,
    revoke_risk,
    throttle_risk,
)

SUSPECT_WINDOW = timedelta(minutes=60)  # a change this long before a breach is a suspect
SURGE = 1.3  # current traffic above 1.3x normal is a surge worth shedding
FRICTION_FOR = timedelta(hours=24)
DOGPILE_REPLIES = 20
CAMPAIGN_STAGE_PCT = 10  # a campaign starts at a 10% stage, enough to measure lift
MAX_RESTARTS = 3
BACKFILL_AFTER = timedelta(minutes=60)  # hourly aggregates built during the stall are short


def dedupe_ref(envelope: TriggerEnvelope, payload: BaseModel) -> tuple[str, str]:
    if isinstance(payload, ReliabilityTriage):
        return payload.alert_id, payload.service
    if isinstance(payload, SafetyTriage):
        return payload.signal_id, payload.content_id
    if isinstance(payload, SupportAssist):
        return payload.ticket_id, payload.user_id
    if isinstance(payload, GrowthOps):
        return payload.signal_id, payload.dashboard_id
    if isinstance(payload, DataPipeline):
        return payload.alert_id, payload.queue
    raise TypeError(f"no dedupe rule for {type(payload).__name__}")


# --------------------------------------------------------------------------- perceive


def perceive(io: NodeIO, envelope: TriggerEnvelope, payload: BaseModel) -> Perception:
    signal = {"ref": f"signal:{envelope.event_id}", "source": envelope.source,
              "summary": f"{envelope.event_type}: {payload.model_dump_json()[:240]}"}
    if isinstance(payload, ReliabilityTriage):
        return _perceive_reliability(io, payload, signal)
    if isinstance(payload, SafetyTriage):
        content = io.read("get_content_360", content_id=payload.content_id)
        queue = io.read("get_queue_state", queue="moderation.reports")
        worst = next((r for r in content["reply_samples"] if r["status"] == "VISIBLE"), None)
        offender = io.read("get_user_360", user_id=worst["author_id"]) if worst else None
        return Perception({"kind": "safety", "content": content, "queue": queue,
                           "worst": worst, "offender": offender}, [signal])
    if isinstance(payload, SupportAssist):
        return _perceive_support(io, payload, signal)
    if isinstance(payload, GrowthOps):
        return Perception({"kind": "growth",
                           "dashboard": io.read("get_dashboard_snapshot",
                                                dashboard_id=payload.dashboard_id),
                           "flag": io.read("get_feature_flag", flag_key=payload.flag_key)},
                          [signal])
    assert isinstance(payload, DataPipeline)
    queue = io.read("get_queue_state", queue=payload.queue)
    dashboard = (io.read("get_dashboard_snapshot", dashboard_id=payload.dashboard_id)
                 if payload.dashboard_id else None)
    return Perception({"kind": "pipeline", "queue": queue, "dashboard": dashboard}, [signal])


def _perceive_reliability(io: NodeIO, p: ReliabilityTriage,
                          signal: dict[str, Any]) -> Perception:
    dashboard = io.read("get_dashboard_snapshot", dashboard_id=p.dashboard_id)
    trace = io.read("trace_lookup", correlation_id=p.correlation_id) if p.correlation_id else None
    endpoint = io.read("get_endpoint", route=p.route, service=p.service)
    changes = io.read("search_audit_logs", query="feature_flag.updated", since_hours=6)["logs"]
    flags: dict[str, Any] = {}
    for change in changes:
        key = change["target"].removeprefix("flag:")
        if change["target"].startswith("flag:") and key not in flags:
            flags[key] = io.read("get_feature_flag", flag_key=key)
    return Perception({"kind": "reliability", "dashboard": dashboard, "trace": trace,
                       "endpoint": endpoint, "changes": changes, "flags": flags}, [signal])


def _perceive_support(io: NodeIO, p: SupportAssist, signal: dict[str, Any]) -> Perception:
    ticket = {"ref": f"ticket:{p.ticket_id}", "source": "helpdesk", "summary": p.text[:280]}
    user = io.read("get_user_360", user_id=p.user_id)
    logins = io.read("search_audit_logs", query="auth.", target=f"user:{p.user_id}",
                     since_hours=48)["logs"]
    ctx: dict[str, Any] = {"kind": "support", "issue": p.issue, "user": user, "logins": logins,
                           "text": p.text}
    if p.appeal_id:
        appeal = io.read("get_appeal", appeal_id=p.appeal_id)
        ctx["appeal"] = appeal
        if appeal["content_id"]:
            ctx["content"] = io.read("get_content_360", content_id=appeal["content_id"])
            ctx["removal"] = io.read("search_audit_logs", query="content.removed",
                                     target=f"content:{appeal['content_id']}",
                                     since_hours=720)["logs"]
    return Perception(ctx, [signal, ticket])


# --------------------------------------------------------------------------- plan


def plan(io: NodeIO, envelope: TriggerEnvelope, payload: BaseModel,
         seen: Perception) -> PlanResult:
    ctx = seen.context
    signal = f"signal:{envelope.event_id}"
    if ctx["kind"] == "reliability":
        assert isinstance(payload, ReliabilityTriage)
        return _plan_reliability(io, payload, ctx, signal)
    if ctx["kind"] == "safety":
        return _plan_safety(io, ctx, signal)
    if ctx["kind"] == "support":
        assert isinstance(payload, SupportAssist)
        return _plan_support(io, payload, ctx, signal)
    if ctx["kind"] == "growth":
        return _plan_growth(ctx, signal)
    return _plan_pipeline(io, ctx, signal)


def _radius(tool: str, args: dict[str, Any]) -> str:
    """The blast radius the tool's Preview declares, in words."""
    preview = build_registry().get(tool).preview
    if preview is None:
        return "undeclared"
    radius = preview.blast_radius(args)
    parts = [", ".join(radius["records"]) or "no record"]
    if radius["people_notified_count"]:
        parts.append(f"notifies {', '.join(radius['people_notified'])}")
    return "; ".join(parts)


def _proposal(action_id: str, tool: str, args: dict[str, Any], *, what: str, risk: int,
              reach: str, confidence: float, reasoning: str, refs: list[str], expected: str,
              rollback: str, verify: VerifySpec, depends_on: list[str] | None = None
              ) -> Proposal:
    return Proposal(
        action_id=action_id, tool=tool, args=args,
        description=f"{what} [risk {risk}/100; blast radius: {_radius(tool, args)}; {reach}]",
        confidence=confidence, reasoning=f"{reasoning} Risk score {risk}/100.",
        evidence_refs=refs, expected_outcome=expected, rollback_plan=rollback,
        depends_on=depends_on or [], verify=verify)


def _at(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _plan_reliability(io: NodeIO, p: ReliabilityTriage, ctx: dict[str, Any],
                      signal: str) -> PlanResult:
    facts = {"category": "RELIABILITY", "priority": p.severity}
    dash, endpoint, trace = ctx["dashboard"], ctx["endpoint"], ctx["trace"]
    breaching = [m for m in dash["metrics"] if m["breaching"]]
    if not breaching:
        return PlanResult(run_facts=facts, summary=f"{p.alert_id}: {dash['title']} is within "
                                                   "its SLOs again; nothing to mitigate")
    started = min(_at(m["breach_started_at"]) or io.now for m in breaching)
    worst = max(breaching, key=lambda m: m["change_pct"])
    symptom = (f"{worst['name']} at {worst['current']:g} against its SLO "
               f"{worst['slo_max'] if worst['slo_max'] is not None else worst['slo_min']:g} "
               f"since {started:%H:%M}Z (baseline {worst['baseline']:g})")
    refs = [signal, f"dashboard_snapshot:{dash['id']}"]
    traced = {s.get("flag") for s in (trace or {}).get("spans", []) if s.get("status") in (
        "timeout", "error") and s.get("flag")}
    proposals: list[Proposal] = []
    suspect = None
    for change in ctx["changes"]:  # newest first
        key = change["target"].removeprefix("flag:")
        flag = ctx["flags"].get(key)
        at = _at(change["at"])
        if flag is None or at is None or not started - SUSPECT_WINDOW <= at <= started:
            continue
        to = (change.get("detail") or {}).get("to") or {}
        if (flag["value"], flag["rollout"]) != (to.get("value"), to.get("rollout")) or (
                (flag["value"], flag["rollout"]) == (flag["previous_value"],
                                                     flag["previous_rollout"])):
            continue  # the flag no longer holds what that change set (e.g. rolled back)
        if key in traced or flag["owner_service"] == p.service:
            suspect = (flag, change)
            break
    if suspect is not None:
        flag, change = suspect
        current, previous = (flag["value"], flag["rollout"]), (flag["previous_value"],
                                                               flag["previous_rollout"])
        args = {"flag_key": flag["flag_key"], "value": previous[0], "rollout": previous[1]}
        minutes = round((started - _at(change["at"])).total_seconds() / 60)  # type: ignore[operator]
        trace_note = (f" Trace {trace['id']} shows {', '.join(sorted(traced))} timing out on "
                      f"{trace['route']} ({trace['status_code']})." if flag["flag_key"] in traced
                      else "")
        proposals.append(_proposal(
            "rollback_flag", "toggle_feature_flag", args,
            what=f"Roll {flag['flag_key']} back to value={previous[0]}, rollout={previous[1]}%",
            risk=flag_risk(current, previous, previous), confidence=0.9 if trace_note else 0.75,
            reach=f"~{flag['audience'] * flag['rollout'] // 100:,} users back on the old path",
            reasoning=f"{symptom}. {flag['flag_key']} went from {previous} to {current} by "
                      f"{change['actor']} {minutes} min before the breach.{trace_note} Rolling "
                      "back to the last known-good state is the fastest mitigation.",
            refs=[*refs, f"log:{change['id']}", f"feature_flag:{flag['flag_key']}",
                  *([f"trace_lookup:{trace['id']}"] if trace_note else [])],
            expected=f"{flag['flag_key']} at value={previous[0]}, rollout={previous[1]}%; "
                     f"{worst['name']} back under its SLO within minutes",
            rollback=f"toggle_feature_flag({flag['flag_key']}, value={current[0]}, "
                     f"rollout={current[1]}) re-applies the change once the cause is fixed",
            verify=VerifySpec(tool="get_feature_flag", args={"flag_key": flag["flag_key"]},
                              expect={"value": previous[0], "rollout": previous[1]})))
    limit = max(endpoint["min_limit_rps"], endpoint["baseline_rps"])
    already = endpoint["limit"] is not None and endpoint["limit"] <= limit
    if endpoint["current_rps"] > SURGE * endpoint["baseline_rps"] and not already:
        args = {"service": p.service, "route": p.route, "limit": limit,
                "reason_code": "SHED_RETRY_STORM"}
        shed = endpoint["current_rps"] - limit
        proposals.append(_proposal(
            "throttle", "throttle_endpoint", args,
            what=f"Limit {p.route} on {p.service} to {limit} rps",
            risk=throttle_risk(limit, endpoint["baseline_rps"]), confidence=0.8,
            reach=f"sheds ~{shed:,} rps of retries, none of the normal "
                  f"{endpoint['baseline_rps']:,}",
            reasoning=f"{symptom}. Traffic is {endpoint['current_rps']:,} rps against a normal "
                      f"{endpoint['baseline_rps']:,}: clients are retrying failed requests. A "
                      "limit at the normal rate sheds the retry storm while the service "
                      "recovers.",
            refs=[*refs, f"endpoint:{endpoint['id']}"],
            expected=f"{p.route} limited to {limit} rps at the edge",
            rollback=f"Lift the limit (previous: {endpoint['limit'] or 'none'}) once "
                     f"{worst['name']} is back under its SLO",
            verify=VerifySpec(tool="get_endpoint", args={"route": p.route,
                                                        "service": p.service},
                              expect={"limit": limit})))
    if not proposals:
        return PlanResult(run_facts=facts, summary=f"{p.alert_id}: no known cause",
                          escalation=Escalation(
                              severity="CRITICAL" if p.severity == "SEV1" else "HIGH",
                              category="SYSTEM", title=f"{p.service}: {symptom}",
                              details="No flag change in the hour before the breach still "
                                      "in force, and no unshed traffic surge" + (
                                          f" ({p.route} is already limited to "
                                          f"{endpoint['limit']} rps)" if already else "")
                                      + ": the playbook has no further safe mitigation.",
                              decision_requested="Page the service's on-call engineer",
                              evidence_refs=refs))
    return PlanResult(proposals=proposals, run_facts=facts,
                      summary=f"{p.severity} {p.service} {p.route}: {symptom}")


def _plan_safety(io: NodeIO, ctx: dict[str, Any], signal: str) -> PlanResult:
    content, worst, offender = ctx["content"], ctx["worst"], ctx["offender"]
    facts = {"category": "SAFETY", "priority": "SEV3"}
    stats = content["reply_stats"]
    refs = [signal, f"content_360:{content['id']}"]
    if content["status"] == "REMOVED":
        return PlanResult(run_facts=facts, summary=f"{content['id']} is already removed")
    pattern = (f"{stats['replies']} replies from {stats['distinct_repliers']} accounts in "
               f"{stats['window_minutes']} min, {stats['new_account_share_pct']}% of them "
               f"less than a week old, mean toxicity {stats['mean_toxicity']}")
    dogpile = stats["replies"] >= DOGPILE_REPLIES and (
        stats["new_account_share_pct"] >= 50 or stats["mean_toxicity"] >= 60)
    if not dogpile:
        return PlanResult(run_facts=facts, summary=f"{content['id']}: {pattern}; not a pile-on")
    proposals: list[Proposal] = []
    friction_type = ("NEW_ACCOUNT_REPLY_BLOCK" if stats["new_account_share_pct"] >= 50
                     else "REPLY_RATE_LIMIT")
    if not any(f["status"] == "ACTIVE" and f["friction_type"] == friction_type
               for f in content["frictions"]):
        target, expires = f"content:{content['id']}", io.now + FRICTION_FOR
        fid = stable_id("FR", io.thread_id, "friction")
        args = {"friction_id": fid, "target": target, "friction_type": friction_type,
                "expires_at": expires.isoformat(), "reason_code": "DOGPILE_REPLY_BURST"}
        proposals.append(_proposal(
            "friction", "apply_friction", args,
            what=f"{friction_type} on {content['id']} by @{content['author_handle']} until "
                 f"{expires:%a %H:%M}Z",
            risk=friction_risk(target, FRICTION_FOR.total_seconds() / 3600), confidence=0.85,
            reach=f"slows repliers to one post; {content['author_followers']:,} followers "
                  "still read it",
            reasoning=f"{pattern}: the pattern of a pile-on. Friction on entry slows it "
                      "without removing anyone's speech, and lifts by itself.",
            refs=refs, expected=f"{friction_type} active on {content['id']} for 24 h",
            rollback=f"Lifts by itself at {expires:%Y-%m-%d %H:%M}Z; to end it sooner set "
                     f"friction {fid} to LIFTED",
            verify=VerifySpec(tool="get_friction", args={"friction_id": fid},
                              expect={"status": "ACTIVE", "target": target,
                                      "friction_type": friction_type})))
    if worst is not None and worst["toxicity"] >= 90 and worst["reports"] >= 10:
        args = {"content_id": worst["id"], "reason_code": "TARGETED_HARASSMENT"}
        proposals.append(_proposal(
            "remove_reply", "remove_content", args,
            what=f"Remove reply {worst['id']} by @{worst['author_handle']}",
            risk=remove_risk(worst["author_followers"]), confidence=0.8,
            reach=f"one reply; its author (@{worst['author_handle']}) gets a strike",
            reasoning=f"Reply {worst['id']} scores {worst['toxicity']} on toxicity with "
                      f"{worst['reports']} reports, inside the pile-on on {content['id']}.",
            refs=[*refs, f"reply_sample:{worst['id']}"],
            expected=f"{worst['id']} removed; @{worst['author_handle']} has one more strike",
            rollback="Irreversible: the author is told; only an appeal (resolve_appeal "
                     "OVERTURNED) restores it",
            verify=VerifySpec(tool="get_content_360", args={"content_id": worst["id"]},
                              expect={"status": "REMOVED"})))
        if offender is not None and offender["status"] == "ACTIVE" and (
                offender["strikes"] + 1 >= 3):
            strikes = offender["strikes"] + 1
            days = 30 if strikes >= 4 else 7
            args = {"user_id": offender["id"], "duration_days": days,
                    "reason_code": "REPEATED_HARASSMENT"}
            proposals.append(_proposal(
                "ban_offender", "ban_user", args,
                what=f"Ban @{offender['handle']} for {days} days",
                risk=ban_risk(offender["followers"], days), confidence=0.75,
                reach=f"one account with {offender['followers']:,} followers",
                reasoning=f"With this removal @{offender['handle']} reaches {strikes} strikes "
                          f"(trust score {offender['trust_score']}).",
                refs=[*refs, f"user_360:{offender['id']}"],
                expected=f"@{offender['handle']} banned for {days} days",
                rollback="Irreversible: the user is told and signed out; an appeal "
                         "(resolve_appeal OVERTURNED) lifts it",
                depends_on=["remove_reply"],
                verify=VerifySpec(tool="get_user_360", args={"user_id": offender["id"]},
                                  expect={"status": "BANNED"})))
    if not proposals:
        return PlanResult(run_facts=facts, summary=f"{content['id']}: {pattern}; friction "
                                                   "already in force")
    return PlanResult(proposals=proposals, run_facts=facts,
                      summary=f"Pile-on on {content['id']} by @{content['author_handle']}: "
                              f"{pattern}")


def _plan_support(io: NodeIO, p: SupportAssist, ctx: dict[str, Any],
                  signal: str) -> PlanResult:
    user = ctx["user"]
    facts = {"category": "SUPPORT", "priority": "SEV4", "text": p.text}
    refs = [signal, f"ticket:{p.ticket_id}", f"user_360:{user['id']}"]
    if p.issue == "appeal":
        return _plan_appeal(ctx, facts, refs)
    if user["status"] == "BANNED":
        return PlanResult(run_facts=facts, summary=f"@{user['handle']} is banned",
                          escalation=Escalation(
                              severity="MEDIUM", category="SAFETY",
                              title=f"Banned account @{user['handle']} asks for access",
                              details=f"Ticket {p.ticket_id} ({p.issue}); ban reason "
                                      f"{user['ban_reason']}.",
                              decision_requested="Route the user to the appeals process",
                              evidence_refs=refs))
    new_devices = [d for d in user["devices"]
                   if io.now - datetime.fromisoformat(d["first_seen_at"]) < timedelta(hours=48)]
    failures = [e for e in ctx["logins"] if e["action"] == "auth.login_failed"]
    suspicious = user["failed_logins_24h"] >= 5 and bool(new_devices)
    proposals: list[Proposal] = []
    if suspicious or p.issue == "push_spam":
        devices = ", ".join(d["device_label"] for d in user["devices"])
        why = (f"{user['failed_logins_24h']} failed logins in 24 h and a device first seen "
               f"{', '.join(d['device_label'] for d in new_devices)} registered a push token: "
               "someone else may hold a session." if suspicious else
               "The user reports unwanted notifications on a device.")
        proposals.append(_proposal(
            "revoke_push", "revoke_push_tokens", {"user_id": user["id"]},
            what=f"Revoke the {user['active_push_tokens']} push tokens of @{user['handle']}",
            risk=revoke_risk(user["active_push_tokens"]), confidence=0.85,
            reach=f"devices: {devices}",
            reasoning=f"{why} Revoking every token stops alerts to unknown devices; the "
                      "owner's devices register again at the next login.",
            refs=[*refs, *(f"device:{d['id']}" for d in new_devices),
                  *(f"log:{e['id']}" for e in failures[:3])],
            expected=f"@{user['handle']} has no active push tokens",
            rollback=f"Restore the tokens this call revoked (listed in its output) for "
                     f"{user['id']}",
            verify=VerifySpec(tool="get_user_360", args={"user_id": user["id"]},
                              expect={"active_push_tokens": 0})))
    if p.issue == "cannot_login" and not user["password_reset_pending"]:
        proposals.append(_proposal(
            "reset_link", "send_password_reset", {"user_id": user["id"]},
            what=f"Send @{user['handle']} a password-reset link",
            risk=RESET_RISK, confidence=0.9, reach="one user",
            reasoning="The user cannot log in" + (
                " and the account shows signs of takeover: a fresh password ends any "
                "session the other device holds." if suspicious else
                "; a reset link is the standard way back in."),
            refs=refs, expected=f"a reset link is pending for @{user['handle']}",
            rollback="Irreversible: the message cannot be unsent; the link expires in 24 h",
            depends_on=["revoke_push"] if proposals else [],
            verify=VerifySpec(tool="get_user_360", args={"user_id": user["id"]},
                              expect={"password_reset_pending": True})))
    if not proposals:
        return PlanResult(run_facts=facts, summary=f"@{user['handle']}: a reset link is "
                                                   "already pending")
    return PlanResult(proposals=proposals, run_facts=facts,
                      summary=f"Ticket {p.ticket_id}: @{user['handle']} "
                              f"{p.issue.replace('_', ' ')}")


def _plan_appeal(ctx: dict[str, Any], facts: dict[str, Any], refs: list[str]) -> PlanResult:
    appeal, content = ctx["appeal"], ctx.get("content")
    refs = [*refs, f"appeal:{appeal['id']}"]
    if appeal["status"] != "OPEN":
        return PlanResult(run_facts=facts, summary=f"Appeal {appeal['id']} is already "
                                                   f"{appeal['resolution']}")
    if content is None:
        return PlanResult(run_facts=facts, summary=f"Appeal {appeal['id']} ({appeal['kind']})",
                          escalation=Escalation(
                              severity="MEDIUM", category="SAFETY",
                              title=f"Appeal {appeal['id']} of a {appeal['kind'].lower()}",
                              details="Ban appeals are reviewed by a person.",
                              decision_requested="Review the appeal", evidence_refs=refs))
    refs += [f"content_360:{content['id']}", *(f"log:{e['id']}" for e in ctx["removal"][:1])]
    automated = content["removed_by"] == "automod"
    if automated and content["toxicity"] < 50 and content["reports"] <= 2:
        resolution = "OVERTURNED"
        why = (f"{content['id']} was removed by automod ({content['removed_reason']}) with a "
               f"toxicity of {content['toxicity']} and {content['reports']} report(s): a false "
               "positive of the classifier.")
    elif content["toxicity"] >= 80 or content["reports"] >= 10:
        resolution = "UPHELD"
        why = (f"{content['id']} scores {content['toxicity']} on toxicity with "
               f"{content['reports']} reports; the removal ({content['removed_reason']}) stands.")
    else:
        return PlanResult(run_facts=facts, summary=f"Appeal {appeal['id']}: borderline",
                          escalation=Escalation(
                              severity="MEDIUM", category="SAFETY",
                              title=f"Appeal {appeal['id']} needs a reviewer",
                              details=f"Toxicity {content['toxicity']}, {content['reports']} "
                                      f"reports, removed by {content['removed_by']}: no rule "
                                      "decides it.",
                              decision_requested="Decide the appeal", evidence_refs=refs))
    args = {"appeal_id": appeal["id"], "resolution": resolution, "note": why}
    return PlanResult(
        proposals=[_proposal(
            "resolve", "resolve_appeal", args,
            what=f"Resolve appeal {appeal['id']} of {content['id']} as {resolution}",
            risk=resolve_risk(resolution), confidence=0.85, reach="one user is told",
            reasoning=why, refs=refs,
            expected=f"appeal {appeal['id']} RESOLVED as {resolution}"
                     + ("; the post is visible again" if resolution == "OVERTURNED" else ""),
            rollback="Irreversible: the user is told the outcome; a new removal would need a "
                     "new decision",
            verify=VerifySpec(tool="get_appeal", args={"appeal_id": appeal["id"]},
                              expect={"status": "RESOLVED", "resolution": resolution}))],
        run_facts=facts, summary=f"Appeal {appeal['id']} of {content['id']}: {resolution}")


def _plan_growth(ctx: dict[str, Any], signal: str) -> PlanResult:
    dash, flag = ctx["dashboard"], ctx["flag"]
    facts = {"category": "GROWTH", "priority": "SEV4"}
    refs = [signal, f"dashboard_snapshot:{dash['id']}", f"feature_flag:{flag['flag_key']}"]
    low = [m for m in dash["metrics"] if m["breaching"] and m["slo_min"] is not None]
    if not low:
        return PlanResult(run_facts=facts, summary=f"{dash['title']}: on target")
    m = low[0]
    gap = f"{m['name']} at {m['current']:g} against a target of {m['slo_min']:g}"
    if not flag["sends_notifications"]:
        return PlanResult(run_facts=facts, summary=gap, escalation=Escalation(
            severity="LOW", category="SYSTEM", title=f"{flag['flag_key']} is not a campaign",
            details=f"{gap}; the flag named by the signal sends no notifications.",
            decision_requested="Name the campaign flag for this surface", evidence_refs=refs))
    if flag["value"] and flag["rollout"] >= CAMPAIGN_STAGE_PCT:
        return PlanResult(run_facts=facts, summary=f"{gap}; {flag['flag_key']} already runs "
                                                   f"at {flag['rollout']}%")
    current, new = (flag["value"], flag["rollout"]), (True, CAMPAIGN_STAGE_PCT)
    reach = flag_recipients(flag["audience"], True, current, new) or 0
    args = {"flag_key": flag["flag_key"], "value": True, "rollout": CAMPAIGN_STAGE_PCT}
    return PlanResult(proposals=[_proposal(
        "campaign", "toggle_feature_flag", args,
        what=f"Start the {flag['flag_key']} campaign at {CAMPAIGN_STAGE_PCT}%",
        risk=flag_risk(current, new, (flag["previous_value"], flag["previous_rollout"])),
        confidence=0.75, reach=f"notifies ~{reach:,} of {flag['audience']:,} eligible users",
        reasoning=f"{gap} since {m['breach_started_at'] or 'this window'}; the reminder push is "
                  f"off. A {CAMPAIGN_STAGE_PCT}% stage reaches ~{reach:,} users, enough to "
                  "measure lift before a wider rollout.",
        refs=refs, expected=f"{flag['flag_key']} on at {CAMPAIGN_STAGE_PCT}%",
        rollback=f"toggle_feature_flag({flag['flag_key']}, value=False, rollout=0) stops "
                 "further sends (pushes already sent stay sent)",
        verify=VerifySpec(tool="get_feature_flag", args={"flag_key": flag["flag_key"]},
                          expect={"value": True, "rollout": CAMPAIGN_STAGE_PCT}))],
        run_facts=facts, summary=f"{dash['title']}: {gap}")


def _plan_pipeline(io: NodeIO, ctx: dict[str, Any], signal: str) -> PlanResult:
    q, dash = ctx["queue"], ctx["dashboard"]
    facts = {"category": "DATA_PIPELINE", "priority": "SEV3"}
    refs = [signal, f"queue_state:{q['id']}"] + ([f"dashboard_snapshot:{dash['id']}"]
                                                 if dash else [])
    lag = f"lag {q['lag_seconds'] // 60} min against a {q['slo_lag_seconds'] // 60} min SLO"
    if q["consumer_status"] == "RUNNING" and not q["lag_over_slo"]:
        return PlanResult(run_facts=facts, summary=f"{q['id']}: {lag}; healthy")
    if q["restarts_24h"] >= MAX_RESTARTS:
        return PlanResult(run_facts=facts, summary=f"{q['id']} keeps failing",
                          escalation=Escalation(
                              severity="HIGH", category="SYSTEM",
                              title=f"{q['id']} failed after {q['restarts_24h']} restarts",
                              details=f"{lag}; consumer {q['consumer_status']}, last error: "
                                      f"{q['last_error']}.",
                              decision_requested="Have a data engineer inspect the consumer "
                                                 "(poison message, schema change)",
                              evidence_refs=refs))
    proposals: list[Proposal] = []
    if q["consumer_status"] in ("STALLED", "CRASH_LOOP"):
        args = {"queue": q["id"], "reason_code": "CONSUMER_STALLED"}
        proposals.append(_proposal(
            "restart", "restart_consumer", args,
            what=f"Restart the {q['id']} consumer",
            risk=restart_risk(q["consumer_status"]), confidence=0.8,
            reach=f"{q['depth']:,} queued events resume from the committed offset",
            reasoning=f"{q['id']}: consumer {q['consumer_status']} since {q['stalled_since']} "
                      f"({q['last_error']}); {lag}.",
            refs=refs, expected=f"{q['id']} consumer RUNNING and the lag falling",
            rollback="Nothing to undo: the consumer resumes from its committed offset; if it "
                     "fails again, stop it and page the data engineer",
            verify=VerifySpec(tool="get_queue_state", args={"queue": q["id"]},
                              expect={"consumer_status": "RUNNING"})))
    stalled = _at(q["stalled_since"])
    if stalled is not None and io.now - stalled >= BACKFILL_AFTER and q["backfill_status"] not in (
            "SCHEDULED", "RUNNING"):
        args = {"queue": q["id"], "from_at": stalled.isoformat(), "to_at": io.now.isoformat()}
        hours = (io.now - stalled).total_seconds() / 3600
        proposals.append(_proposal(
            "backfill", "start_backfill", args,
            what=f"Backfill {q['id']} from {stalled:%H:%M}Z to {io.now:%H:%M}Z",
            risk=backfill_risk(hours), confidence=0.8,
            reach=f"recomputes {hours:.1f} h of warehouse aggregates",
            reasoning=f"The hourly aggregates built during the {hours:.1f} h stall are missing "
                      "events; the backfill rebuilds them once the consumer has caught up.",
            refs=refs, expected=f"a backfill of {q['id']} scheduled",
            rollback="Cancel the backfill before it runs; its upserts are idempotent after",
            depends_on=["restart"] if proposals else [],
            verify=VerifySpec(tool="get_queue_state", args={"queue": q["id"]},
                              expect={"backfill_status": "SCHEDULED"})))
    if not proposals:
        return PlanResult(run_facts=facts, summary=f"{q['id']}: {lag}; consumer running, "
                                                   "catching up")
    return PlanResult(proposals=proposals, run_facts=facts, summary=f"{q['id']}: {lag}")
