"""The condition data of a policy bundle (seed 001 section 6, seed 002 conditions), turned into
the flat `limits` record and the derived facts (local time, keyword screen) Cedar reads.

Policies compare numbers and flags; everything that needs a clock, a time zone, a regex or a
count is computed here (or by the gate) so that Cedar stays a pure decision over data.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, time
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from policy.schema import PolicyLoadError

DEFAULT_TIMEZONE = "America/New_York"
SCREEN_CATEGORIES = ("legal", "harassment", "discrimination", "injury", "eviction")
_TYPOGRAPHIC = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _cents(amount: float) -> int:
    return int(round(float(amount) * 100))


def _hhmm(value: str, where: str) -> time:
    try:
        return time.fromisoformat(value)
    except (TypeError, ValueError):
        raise PolicyLoadError([f"{where}: {value!r} is not a time like 21:00"]) from None


def zone(name: str, where: str = "timezone") -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyLoadError([f"{where}: {name!r} is not an IANA time zone"]) from None


def _section(config: dict[str, Any], key: str) -> dict[str, Any]:
    value = config.get(key, {})
    if not isinstance(value, dict):
        raise PolicyLoadError([f"{key}: must be an object"])
    return value


def limits_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """The `context.limits` record; a missing or mistyped key fails with its path."""
    try:
        spend = config["spend"]
        work_orders = config["workOrders"]
        messaging = _section(config, "messaging")
        quiet = messaging.get("quietHours", {})
        compliance = _section(config, "compliance")
        windows = _section(config, "windows")
        sla = _section(config, "sla").get("hoursByPriority", {})
        out = {
            "auto_approve_max_cents": _cents(spend["autoApproveMax"]),
            "require_approval_above_cents": _cents(spend["requireApprovalAbove"]),
            "hard_block_above_cents": _cents(spend["hardBlockAbove"]),
            "auto_assign_categories": [str(c) for c in work_orders["autoAssignAllowedCategories"]],
            "emergency_always_escalate": bool(work_orders["emergencyAlwaysEscalate"]),
            "max_open_per_vendor": int(work_orders["maxOpenPerVendor"]),
            "quiet_hours_tools": [str(t) for t in quiet.get("tools", [])],
            "allowed_auto_intents": [str(i) for i in messaging.get("allowedAutoIntents", [])],
            "legal_keywords_escalate": bool(messaging.get("legalKeywordsEscalate", True)),
            "compliance_critical_days": int(compliance.get("criticalDaysBeforeDue", 7)),
            "compliance_auto_create_tasks": bool(compliance.get("autoCreateTasks", True)),
            "compliance_overdue_escalate": bool(compliance.get("overdueAlwaysEscalate", True)),
            "window_minutes": int(windows.get("minutes", 60)),
            "tenant_rate_max": int(windows.get("perTenantWrites", 0)),
            "spend_window_max_cents": _cents(windows.get("perTenantSpend", 0)),
            "tool_rate_max": 0,  # per call: filled from windows.perToolWrites
            "sla_hours": {str(k): int(v) for k, v in sla.items()},
        }
    except KeyError as exc:
        raise PolicyLoadError([f"config: missing {exc.args[0]!r}"]) from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise PolicyLoadError([f"config: {exc}"]) from None
    if quiet:
        _hhmm(quiet.get("start"), "messaging.quietHours.start")
        _hhmm(quiet.get("end"), "messaging.quietHours.end")
    zone(_section(config, "tenant").get("timezone", DEFAULT_TIMEZONE), "tenant.timezone")
    if out["window_minutes"] <= 0:
        raise PolicyLoadError(["windows.minutes: must be positive"])
    _check_budgets(_section(config, "budgets"))
    out.update(custom_limits(config, set(out)))
    return out


LIMIT_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
FRAGMENTS_DIR = Path(__file__).parent / "defaults.d"


def shipped_limits() -> dict[str, Any]:
    """The `limits` the shipped fragments (`policy/defaults.d/*.json`) declare: the defaults
    of custom limits, as the code defaults are for built-in ones, so a policy that reads one
    never meets a config without it. Read once per process (the files ship with the code)."""
    return dict(_shipped_limits())


@lru_cache(maxsize=1)
def _shipped_limits() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for fragment in sorted(FRAGMENTS_DIR.glob("*.json")):
        try:
            section = json.loads(fragment.read_text()).get("limits", {})
        except (OSError, ValueError, AttributeError) as exc:
            raise PolicyLoadError([f"{fragment.name}: {exc}"]) from None
        out.update(section if isinstance(section, dict) else {})
    return out


def custom_limits(config: dict[str, Any], builtin: set[str]) -> dict[str, Any]:
    """The `limits` section: thresholds an autopilot adds for its own policies (in its
    `policy/defaults.d/<name>.json`), read as `context.limits.<name>`; a config may override
    them and falls back to the shipped values. Flat, so fragments merge key by key; each value
    is a whole number, a boolean, a string or a list of strings (Cedar has no floats), and no
    name may shadow a built-in limit."""
    problems: list[str] = []
    out: dict[str, Any] = {}
    for name, value in {**shipped_limits(), **_section(config, "limits")}.items():
        where = f"limits.{name}"
        if name == "_doc":
            continue
        if not LIMIT_NAME.match(name):
            problems.append(f"{where}: a limit name is lower_snake_case")
        elif name in builtin:
            problems.append(f"{where}: shadows a built-in limit")
        elif not (isinstance(value, bool | int | str) or (
                isinstance(value, list) and all(isinstance(v, str) for v in value))):
            problems.append(f"{where}: must be a whole number, boolean, string or list of "
                            "strings")
        else:
            out[name] = value
    if problems:
        raise PolicyLoadError(problems)
    return out


def _check_budgets(budgets: dict[str, Any]) -> None:
    """Gateway budgets per cost class (`tools.gateway`); validated with the bundle."""
    problems = []
    window = budgets.get("windowMinutes", 60)
    if not isinstance(window, int) or isinstance(window, bool) or window <= 0:
        problems.append("budgets.windowMinutes: must be a positive whole number")
    per = budgets.get("perTenant", {})
    if not isinstance(per, dict):
        problems.append("budgets.perTenant: must be an object")
        per = {}
    for cost_class, limit in per.items():
        if cost_class not in ("CHEAP", "MED", "EXP"):
            problems.append(f"budgets.perTenant.{cost_class}: not a cost class "
                            "(CHEAP, MED, EXP)")
        elif not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            problems.append(f"budgets.perTenant.{cost_class}: must be a whole number >= 0")
    tools = budgets.get("perTool", {})
    if not isinstance(tools, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in tools.values()):
        problems.append("budgets.perTool: must map tool names to whole numbers >= 0")
    if problems:
        raise PolicyLoadError(problems)


PER_CALL_LIMITS = frozenset({"tool_rate_max"})  # depend on the call, so stay in the context


def _cedar_literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # Non-ASCII stays UTF-8: Cedar strings do not accept JSON's \uXXXX escapes.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_cedar_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {_cedar_literal(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(f"no Cedar literal for {value!r}")


def inline_limits(cedar: str, limits: dict[str, Any], keep: frozenset[str]) -> str:
    """The policies with `context.limits.X` replaced by its value, for evaluation only.

    Validation runs on the original text against the schema; evaluating the specialised text
    keeps the bundle's constants out of every request (a third of the cost of a decision).
    """
    def literal(match: re.Match[str]) -> str:
        name = match.group(1)
        return match.group(0) if name in keep or name not in limits else _cedar_literal(
            limits[name])

    return re.sub(r"context\.limits\.(\w+)", literal, cedar)


def tool_rate_max(config: dict[str, Any], tool: str) -> int:
    return int(config.get("windows", {}).get("perToolWrites", {}).get(tool, 0))


def config_tools(config: dict[str, Any]) -> dict[str, list[str]]:
    """Tool names the config refers to, by where (checked against the registry at load)."""
    return {
        "messaging.quietHours.tools": list(
            config.get("messaging", {}).get("quietHours", {}).get("tools", [])),
        "windows.perToolWrites": list(config.get("windows", {}).get("perToolWrites", {})),
        "budgets.perTool": list(config.get("budgets", {}).get("perTool", {})),
    }


def time_facts(config: dict[str, Any], at: datetime, timezone: str) -> dict[str, Any]:
    """Local time of the call and whether it falls in the tenant's quiet hours."""
    tz_name = timezone or config.get("tenant", {}).get("timezone", DEFAULT_TIMEZONE)
    try:
        local = at.astimezone(ZoneInfo(tz_name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"time zone {tz_name!r} of the call is not an IANA time zone") from None
    quiet = config.get("messaging", {}).get("quietHours")
    in_quiet = False
    if quiet:
        start = _hhmm(quiet["start"], "messaging.quietHours.start")
        end = _hhmm(quiet["end"], "messaging.quietHours.end")
        now = local.time().replace(tzinfo=None)
        in_quiet = (start <= now < end) if start <= end else (now >= start or now < end)
    return {"timezone": tz_name, "local_minutes": local.hour * 60 + local.minute,
            "weekday": WEEKDAYS[local.weekday()], "in_quiet_hours": in_quiet}


class KeywordScreen:
    """Whole-word, case-insensitive keyword lists per category; `word*` matches a prefix."""

    def __init__(self, config: dict[str, Any]) -> None:
        lists = config.get("messaging", {}).get("keywords", {})
        unknown = sorted(set(lists) - set(SCREEN_CATEGORIES))
        if unknown:
            raise PolicyLoadError([f"messaging.keywords.{k}: unknown category (known: "
                                   f"{', '.join(SCREEN_CATEGORIES)})" for k in unknown])
        self._patterns: dict[str, re.Pattern[str]] = {}
        for category, words in lists.items():
            parts = [re.escape(w.rstrip("*")).replace(r"\ ", r"\s+") +
                     (r"\w*" if w.endswith("*") else r"\b") for w in words if w.strip("* ")]
            if parts:
                self._patterns[category] = re.compile(r"\b(?:" + "|".join(parts) + ")",
                                                      re.IGNORECASE)

    def screen(self, text: str) -> dict[str, Any]:
        text = text.translate(_TYPOGRAPHIC)
        out: dict[str, Any] = {c: False for c in SCREEN_CATEGORIES}
        matched: set[str] = set()
        for category, pattern in self._patterns.items():
            hits = {m.group(0).lower() for m in pattern.finditer(text)}
            if hits:
                out[category] = True
                matched |= {f"{category}:{h}" for h in hits}
        out["matched"] = sorted(matched)
        return out


def _minutes(quiet: dict[str, Any]) -> set[int]:
    if not quiet or "start" not in quiet or "end" not in quiet:
        return set()
    start, end = _hhmm(quiet["start"], "quietHours.start"), _hhmm(quiet["end"], "quietHours.end")
    a, b = start.hour * 60 + start.minute, end.hour * 60 + end.minute
    return set(range(a, b)) if a <= b else set(range(a, 1440)) | set(range(0, b))


def widening(broader: dict[str, Any], merged: dict[str, Any]) -> list[str]:
    """Where condition data of a narrower scope would allow more than the broader scope's.

    A narrower scope may lower limits, shorten allow-lists, lengthen watch-lists and turn
    escalations on, never the reverse. (Seed-002 rules are the deliberate exception: they
    resolve by priority; the Cedar guardrails still bound them.)
    """
    problems: list[str] = []

    def get(cfg: dict[str, Any], path: str, default: Any = None) -> Any:
        node: Any = cfg
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def at_most(path: str) -> None:  # a limit; 0 means "no limit" where noted by `unlimited`
        b, m = get(broader, path), get(merged, path)
        if b is not None and m is not None and m > b:
            problems.append(f"{path}: {m} is above the broader scope's {b}")

    def capped(path: str) -> None:  # a limit where 0 means unlimited
        b, m = get(broader, path, 0), get(merged, path, 0)
        if b and (not m or m > b):
            problems.append(f"{path}: {m or 'no limit'} is looser than the broader scope's {b}")

    def stays_on(path: str) -> None:
        if get(broader, path) is True and get(merged, path) is False:
            problems.append(f"{path}: cannot be turned off below the scope that turned it on")

    def stays_off(path: str) -> None:
        if get(broader, path) is False and get(merged, path) is True:
            problems.append(f"{path}: cannot be turned on below the scope that turned it off")

    def subset(path: str) -> None:
        b, m = get(broader, path), get(merged, path)
        if isinstance(b, list) and isinstance(m, list) and set(m) - set(b):
            problems.append(f"{path}: adds {sorted(set(m) - set(b))} to the broader allow-list")

    def superset(path: str) -> None:
        b, m = get(broader, path), get(merged, path)
        if isinstance(b, list) and isinstance(m, list) and set(b) - set(m):
            problems.append(f"{path}: drops {sorted(set(b) - set(m))} from the broader list")

    for key in ("autoApproveMax", "requireApprovalAbove", "hardBlockAbove"):
        at_most(f"spend.{key}")
    at_most("workOrders.maxOpenPerVendor")
    subset("workOrders.autoAssignAllowedCategories")
    stays_on("workOrders.emergencyAlwaysEscalate")
    subset("messaging.allowedAutoIntents")
    stays_on("messaging.legalKeywordsEscalate")
    superset("messaging.quietHours.tools")
    for category in SCREEN_CATEGORIES:
        superset(f"messaging.keywords.{category}")
    if _minutes(get(broader, "messaging.quietHours", {})) - _minutes(
            get(merged, "messaging.quietHours", {})):
        problems.append("messaging.quietHours: the window must cover the broader scope's")
    b_days, m_days = get(broader, "compliance.criticalDaysBeforeDue"), get(
        merged, "compliance.criticalDaysBeforeDue")
    if b_days is not None and m_days is not None and m_days < b_days:
        problems.append(f"compliance.criticalDaysBeforeDue: {m_days} is shorter than the "
                        f"broader scope's {b_days}")
    stays_off("compliance.autoCreateTasks")
    stays_on("compliance.overdueAlwaysEscalate")
    for section, window in (("windows", "minutes"), ("budgets", "windowMinutes")):
        b, m = get(broader, f"{section}.{window}"), get(merged, f"{section}.{window}")
        if b is not None and m is not None and m < b:
            problems.append(f"{section}.{window}: a shorter window than the broader {b}")
    capped("windows.perTenantWrites")
    capped("windows.perTenantSpend")
    for tool in get(broader, "windows.perToolWrites", {}) or {}:
        capped(f"windows.perToolWrites.{tool}")
    for cost in get(broader, "budgets.perTenant", {}) or {}:
        capped(f"budgets.perTenant.{cost}")
    for tool in get(broader, "budgets.perTool", {}) or {}:
        capped(f"budgets.perTool.{tool}")
    problems += _autonomy_widening(get(broader, "autonomy", {}) or {},
                                   get(merged, "autonomy", {}) or {})
    # An autopilot's own thresholds (`limits`) and drift rules have no known direction (a
    # higher number may be stricter or looser), so only the global policy may change them.
    for section in ("limits", "drift"):
        b, m = get(broader, section, {}) or {}, get(merged, section, {}) or {}
        changed = sorted(k for k in set(b) | set(m) if b.get(k) != m.get(k))
        if changed:
            problems.append(f"{section}: {', '.join(changed)} can only be changed by the "
                            "global policy (a narrower scope cannot show it only tightens)")
    return problems


def _autonomy_widening(broader: dict[str, Any], merged: dict[str, Any]) -> list[str]:
    from policy.autonomy import AutonomyTable

    before, after = AutonomyTable(broader), AutonomyTable(merged)
    problems = []
    graphs = set(broader.get("graphs", {})) | set(merged.get("graphs", {}))
    for graph in sorted(graphs | {"(other)"}):
        tools = set(broader.get("graphs", {}).get(graph, {}).get("tools", {})) | set(
            merged.get("graphs", {}).get(graph, {}).get("tools", {}))
        for tool in sorted(tools | {"(default)"}):
            if after.level(graph, tool) > before.level(graph, tool):
                problems.append(f"autonomy.graphs.{graph}.{tool}: L{after.level(graph, tool)} "
                                f"is above the broader scope's L{before.level(graph, tool)}")
    return problems
