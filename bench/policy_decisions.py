"""Policy gate cost: decisions per second and latency of one decision with 50 policies loaded.

The shipped bundle is padded with generated policies (forbid/permit rules on other tools and
thresholds, all valid against the schema) up to `--policies` in total, so the figure reflects
a realistic policy set, not the handful we ship. Each decision is the full gate call: two Cedar
questions (`execute`, `execute_with_approval`) plus reason-code mapping.

    .venv/bin/python bench/policy_decisions.py            # 50 policies, 20 000 decisions
    .venv/bin/python bench/policy_decisions.py --policies 200 --decisions 50000
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from rich.console import Console
from rich.table import Table

from policy.engine import (
    ActionFacts,
    PolicyBundle,
    PolicyEngine,
    PolicyRequest,
    RunFacts,
    ToolFacts,
)
from tools.catalog import build_registry

CATEGORIES = ["PLUMBING", "HVAC", "ELECTRICAL", "GENERAL", "PEST", "APPLIANCE", "STRUCTURAL"]


def padded_bundle(total: int) -> PolicyBundle:
    base = PolicyBundle.load()
    have = base.cedar.count("@id(")
    extra = []
    for i in range(max(0, total - have)):
        if i % 2:
            extra.append(f'@id("BENCH_FORBID_{i}")\n'
                         f'forbid (principal, action == Action::"execute", resource) when {{ '
                         f'context.facts.spend_cents > {100_000 + i * 997} && '
                         f'context.facts.category == "{CATEGORIES[i % len(CATEGORIES)]}" && '
                         f'context.run.priority == "P{i}" }};')
        else:
            extra.append(f'@id("BENCH_PERMIT_{i}")\npermit (principal == Autopilot::"bench{i}", '
                         f'action == Action::"execute", resource) when {{ '
                         f'context.facts.vendor_open_work_orders < {i} }};')
    cedar = base.cedar + "\n// file: bench.cedar\n" + "\n".join(extra)
    return base.model_copy(update={"cedar": cedar, "version": f"bench-{total}"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", type=int, default=50)
    parser.add_argument("--decisions", type=int, default=20_000)
    opts = parser.parse_args()
    registry = build_registry()
    bundle = padded_bundle(opts.policies)
    engine = PolicyEngine(bundle, known_tools=set(registry.names()), strict=True)
    loaded = engine.bundle.cedar.count("@id(")
    tools = [registry.get(n) for n in registry.names()]
    rng = random.Random(7)
    requests = []
    for _ in range(1000):
        spec = rng.choice(tools)
        requests.append(PolicyRequest(
            graph="maintenance", tenant_id="bench",
            tool=ToolFacts(name=spec.name, kind=spec.kind.value, reversible=spec.reversible,
                           cost_class=spec.cost_class.value, risk=spec.risk.value),
            facts=ActionFacts(spend_cents=rng.randrange(0, 800_000),
                              category=rng.choice(CATEGORIES),
                              vendor_open_work_orders=rng.randrange(0, 30)),
            run=RunFacts(is_emergency=rng.random() < 0.1)))
    for r in requests[:200]:
        engine.evaluate(r)
    samples = []
    outcomes: dict[str, int] = {}
    started = time.perf_counter()
    for i in range(opts.decisions):
        t0 = time.perf_counter()
        decision = engine.evaluate(requests[i % len(requests)])
        samples.append(time.perf_counter() - t0)
        outcomes[decision.outcome.value] = outcomes.get(decision.outcome.value, 0) + 1
    elapsed = time.perf_counter() - started
    samples.sort()
    q = statistics.quantiles(samples, n=100)
    table = Table(title=f"Policy gate: {loaded} policies, {opts.decisions} decisions")
    for col in ("decisions/s", "p50 ms", "p99 ms", "max ms", "outcomes"):
        table.add_column(col)
    table.add_row(f"{opts.decisions / elapsed:,.0f}", f"{q[49] * 1000:.3f}",
                  f"{q[98] * 1000:.3f}", f"{samples[-1] * 1000:.3f}",
                  ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    Console().print(table)


if __name__ == "__main__":
    main()
