"""Seed 002 policy rules (action, effect, conditions, priority) compiled to Cedar.

Rules are the short form a platform team edits most: "send_confirmation: allow",
"auto_cancel_no_show: deny", "send_reminder: allow if at least 60 minutes ahead". They live in
a version's config (`rules`) at any scope and compile to ordinary Cedar policies whose @id is
the rule id, so they are validated, tested and reported like hand-written ones.

Where two rules for the same action disagree, the higher `priority` wins; on equal priority
the narrower scope (property > portfolio > tenant > global) wins; on a full tie `deny` wins.
That ordering is compiled in: a rule only fires when no rule ranked above it with a different
effect applies. The Cedar guardrails (spend, autonomy level, kill switch ...) are forbids and
stay absolute: an `allow` rule can never lift them.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from policy.schema import PolicyLoadError

SCOPE_RANK = {"global": 0, "tenant": 1, "portfolio": 2, "property": 3}
EFFECT_RANK = {"allow": 0, "require_approval": 1, "deny": 2}  # the stricter wins a full tie


class Conditions(BaseModel):
    """The condition vocabulary a rule may use; each compiles to one Cedar expression."""

    model_config = ConfigDict(extra="forbid")
    min_lead_time_minutes: int | None = Field(default=None, ge=0)
    no_show_after_minutes: int | None = Field(default=None, ge=0)
    max_attempts: int | None = Field(default=None, ge=1)
    max_spend: float | None = Field(default=None, ge=0)
    categories: list[str] | None = None
    intents: list[str] | None = None
    outside_quiet_hours: bool | None = None
    emergency: bool | None = None

    def cedar(self) -> list[str]:
        f = "context.facts"
        out: list[str] = []
        if self.min_lead_time_minutes is not None:
            out.append(f"({f} has lead_time_minutes && "
                       f"{f}.lead_time_minutes >= {self.min_lead_time_minutes})")
        if self.no_show_after_minutes is not None:
            out.append(f"({f} has minutes_since_start && "
                       f"{f}.minutes_since_start >= {self.no_show_after_minutes})")
        if self.max_attempts is not None:
            out.append(f"{f}.attempt < {self.max_attempts}")
        if self.max_spend is not None:
            out.append(f"{f}.spend_cents <= {int(round(self.max_spend * 100))}")
        if self.categories is not None:
            cats = json.dumps(self.categories, ensure_ascii=False)
            out.append(f"{cats}.contains({f}.category)")
        if self.intents is not None:
            intents = json.dumps(self.intents, ensure_ascii=False)
            out.append(f"{intents}.contains(context.run.intent)")
        if self.outside_quiet_hours is not None:
            out.append(("!" if self.outside_quiet_hours else "") + "context.time.in_quiet_hours")
        if self.emergency is not None:
            out.append(("" if self.emergency else "!") + "context.run.is_emergency")
        return out


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$", description="reason code, e.g. BOOKING_X")
    action: str = Field(min_length=1, description="the tool the rule is about")
    autopilot: str | None = None  # None: any autopilot calling that tool
    effect: Literal["allow", "require_approval", "deny"]
    conditions: Conditions = Field(default_factory=Conditions)
    priority: int = 0
    active: bool = True
    description: str = ""
    scope: Literal["global", "tenant", "portfolio", "property"] = "global"  # set by the store

    def rank(self) -> tuple[int, int, int]:
        return (self.priority, SCOPE_RANK[self.scope], EFFECT_RANK[self.effect])

    def applies(self) -> str:
        parts = [f'context.tool.name == "{self.action}"']
        if self.autopilot:
            parts.append(f'context.graph == "{self.autopilot}"')
        return " && ".join(parts + self.conditions.cedar())

    def principal(self) -> str:
        return f'principal == Autopilot::"{self.autopilot}"' if self.autopilot else "principal"


def parse_rules(raw: Any, scope: str = "global") -> list[Rule]:
    """Validate a config's `rules` list; errors name the rule index and field."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise PolicyLoadError(["rules: must be a list"])
    rules, problems = [], []
    for i, item in enumerate(raw):
        try:
            rules.append(Rule.model_validate({"scope": scope, **item}
                                             if isinstance(item, dict) else item))
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                rid = item.get("id", "?") if isinstance(item, dict) else "?"
                problems.append(f"rules.{i} ({rid}).{loc}: {err['msg']}")
    if problems:
        raise PolicyLoadError(problems)
    return rules


def check_rules(rules: list[Rule], known_tools: set[str] | None,
                installed_graphs: set[str] | None) -> None:
    """Refuse duplicate ids and rules about tools that are not registered.

    A rule for an autopilot this deployment does not install (or, when `installed_graphs` is
    None, any autopilot-specific rule) is kept but inert: it can only match that autopilot's
    calls. A rule for an installed autopilot, or for any, must name a registered tool.
    """
    problems = []
    seen: dict[tuple[str, str], str] = {}
    for rule in rules:
        key = (rule.id, rule.scope)
        if key in seen:
            problems.append(f"rules: id {rule.id} appears twice at {rule.scope} scope")
        seen[key] = rule.id
        installed = rule.autopilot is None or (
            installed_graphs is not None and rule.autopilot in installed_graphs)
        if known_tools is not None and installed and rule.action not in known_tools:
            problems.append(f"rules ({rule.id}): action {rule.action!r} is not a registered tool")
    if problems:
        raise PolicyLoadError(problems)


def compile_rules(rules: list[Rule]) -> str:
    """Cedar text for the active rules, with priority resolved into each rule's condition."""
    active = [r for r in rules if r.active]
    out = []
    for rule in sorted(active, key=lambda r: (r.action, r.id, r.scope)):
        beaten_by = [o for o in active if o.action == rule.action and o.effect != rule.effect
                     and o.rank() > rule.rank()]
        cond = rule.applies()
        for other in beaten_by:
            cond += f" &&\n  !({other.applies()})"
        who = rule.principal()
        head = {
            "allow": f'permit ({who}, action == Action::"execute", resource)',
            "require_approval": f'forbid ({who}, action == Action::"execute", resource)',
            "deny": f"forbid ({who}, action, resource)",
        }[rule.effect]
        out.append(f'@id("{rule.id}")\n{head}\nwhen {{\n  {cond}\n}};')
    return "\n\n".join(out)
