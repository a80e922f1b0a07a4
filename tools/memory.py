"""Scoped memory tools: `recall_memory` (read) and `remember` (write), over the LangGraph
store (autopilot/memory.py). Memory is only ever changed through `remember`, so each change is
proposed, gated, recorded exactly once and ledgered like any other write; reads are evidence.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from autopilot.memory import Scope, namespace
from tools.registry import (
    CostClass,
    PermanentToolError,
    Preview,
    RiskClass,
    ToolContext,
    ToolKind,
    ToolRegistry,
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecallMemory(_Strict):
    scope: Scope
    scope_id: str = Field(min_length=1, max_length=100)
    key: str | None = Field(default=None, min_length=1, max_length=100,
                            description="one entry; all of the scope's entries when omitted")


class MemoryItem(_Strict):
    key: str
    value: dict[str, Any]
    updated_at: datetime | None
    updated_by_run: str | None


class MemoryOut(_Strict):
    scope: str
    scope_id: str
    items: dict[str, MemoryItem]
    value: dict[str, Any] | None = Field(default=None, description="the value of `key`, when "
                                         "one entry was asked for")


class Remember(_Strict):
    scope: Scope
    scope_id: str = Field(min_length=1, max_length=100)
    key: str = Field(min_length=1, max_length=100, pattern=r"^[a-z][a-z0-9_]*$")
    value: dict[str, Any] = Field(description="JSON object; replaces the entry's value")
    reason: str = Field(min_length=1, max_length=500, description="why this is worth keeping")


MEMORY_ENTRY = Preview(record="memory", read_tool="recall_memory", key="scope_id",
                       also_read=("scope", "key"), sets={"value": "value"})


def _store(ctx: ToolContext, tool: str) -> Any:
    if ctx.memory is None:
        raise PermanentToolError(tool, "no memory store is configured for this process")
    return ctx.memory


def _items(ctx: ToolContext, scope: str, scope_id: str, key: str | None,
           tool: str) -> dict[str, MemoryItem]:
    store, ns = _store(ctx, tool), namespace(ctx.tenant_id, scope, scope_id)
    found = [store.get(ns, key)] if key else store.search(ns, limit=100)
    return {item.key: MemoryItem(key=item.key, value=item.value.get("value", {}),
                                 updated_at=item.updated_at,
                                 updated_by_run=item.value.get("thread_id"))
            for item in found if item is not None}


def register(registry: ToolRegistry) -> None:
    @registry.tool(name="recall_memory", kind=ToolKind.READ, input_model=RecallMemory,
                   output_model=MemoryOut, description="What is remembered about a property, "
                   "resident, vendor or account (context snapshots, learned preferences).")
    def recall_memory(ctx: ToolContext, args: RecallMemory) -> MemoryOut:
        items = _items(ctx, args.scope, args.scope_id, args.key, "recall_memory")
        value = items[args.key].value if args.key and args.key in items else None
        return MemoryOut(scope=args.scope, scope_id=args.scope_id, items=items, value=value)

    @registry.tool(name="remember", kind=ToolKind.WRITE, reversible=True,
                   input_model=Remember, output_model=MemoryOut, preview=MEMORY_ENTRY,
                   cost_class=CostClass.CHEAP, risk=RiskClass.LOW,
                   description="Keep a fact about a property, resident, vendor or account "
                   "for later runs (replaces the entry; reversible by remembering the "
                   "previous value).")
    def remember(ctx: ToolContext, args: Remember) -> MemoryOut:
        # The store is not in the app transaction; a put is idempotent (same key, same
        # value), so a retried or re-run call converges on the same entry.
        _store(ctx, "remember").put(namespace(ctx.tenant_id, args.scope, args.scope_id),
                                    args.key, {"value": args.value, "reason": args.reason,
                                               "thread_id": ctx.thread_id})
        items = _items(ctx, args.scope, args.scope_id, args.key, "remember")
        return MemoryOut(scope=args.scope, scope_id=args.scope_id, items=items,
                         value=items[args.key].value if args.key in items else None)
