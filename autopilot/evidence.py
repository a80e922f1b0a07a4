"""The evidence store: immutable records of what an autopilot saw, named by content hash.

Perceive's reads (through the gateway) and the planner's evidence items are captured with
their source, provenance and time, PII-redacted, with the SHA-256 of the unredacted content
(so a record can be matched against its source without keeping the PII). Proposals cite
evidence by `ref`; the spine's grounding check flags a proposal that cites nothing or cites
something this run did not capture, and the policy gate holds such a proposal for a person.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select

from autopilot.db import Database
from autopilot.ledger import Ledger
from autopilot.models import Evidence
from autopilot.privacy import redact


def entity_refs(tool: str, output: Any) -> list[str]:
    """`kind:id` refs of the records a read returned: `get_vendor` -> `vendor:V-1`,
    `list_vendors` -> `vendor:<id>` for each item of its `vendors` list."""
    refs: list[str] = []
    if not isinstance(output, dict):
        return refs
    if "id" in output:
        refs.append(f"{tool.removeprefix('get_')}:{output['id']}")
    for key, value in output.items():
        if isinstance(value, list):
            kind = key[:-1] if key.endswith("s") else key
            refs += [f"{kind}:{item['id']}" for item in value
                     if isinstance(item, dict) and "id" in item]
    return refs


def content_hash(content: Any) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":"),
                                     default=str).encode()).hexdigest()


class EvidenceStore:
    def __init__(self, db: Database, ledger: Ledger) -> None:
        self.db = db
        self.ledger = ledger

    def capture_all(self, *, tenant_id: str, thread_id: str, trace_id: str,
                    items: list[dict[str, Any]], reads: list[dict[str, Any]],
                    principal: str = "") -> list[dict[str, Any]]:
        """Store the reads and the planner's evidence items; returns one entry per citable
        ref (`kind:id` of each record read, and each item's own ref) with its `evidence_id`
        (the state keeps these; the store keeps the content)."""
        out: list[dict[str, Any]] = []
        with self.db.session(tenant_id) as s:
            for read in reads:
                summary = f"{read['tool']}({json.dumps(read['args'], sort_keys=True)})"
                refs = entity_refs(read["tool"], read["output"]) or [f"read:{read['tool']}"]
                eid = self._put(s, tenant_id=tenant_id, thread_id=thread_id, trace_id=trace_id,
                                ref=", ".join(refs), source=f"tool:{read['tool']}",
                                summary=summary,
                                provenance={"tool": read["tool"], "args": read["args"],
                                            "principal": principal, "thread_id": thread_id},
                                content=read["output"])
                out += [{"ref": r, "source": f"tool:{read['tool']}", "summary": summary,
                         "evidence_id": eid} for r in refs]
            for item in items:
                eid = self._put(s, tenant_id=tenant_id, thread_id=thread_id, trace_id=trace_id,
                                ref=str(item["ref"]), source=str(item.get("source", "")),
                                summary=str(item.get("summary", "")),
                                provenance={"ref": item["ref"], "thread_id": thread_id,
                                            "principal": principal},
                                content=item)
                out.append({**item, "evidence_id": eid})
        return out

    def _put(self, s: Any, *, tenant_id: str, thread_id: str, trace_id: str, ref: str,
             source: str, summary: str, provenance: dict[str, Any], content: Any) -> str:
        digest = content_hash(content)
        eid = f"ev-{digest[:24]}"
        if s.get(Evidence, (tenant_id, eid)) is None:
            s.add(Evidence(tenant_id=tenant_id, id=eid, thread_id=thread_id, source=source,
                           summary=redact(summary), provenance=redact(provenance),
                           content=redact(content if isinstance(content, dict)
                                          else {"value": content}),
                           content_hash=digest))
            s.flush()
        self.ledger.append(s, tenant_id=tenant_id, event_type="EVIDENCE", thread_id=thread_id,
                           trace_id=trace_id, event_key=f"{thread_id}:evidence:{eid}",
                           payload={"evidence_id": eid, "ref": ref, "source": source,
                                    "summary": summary, "content_hash": digest})
        return eid

    def for_run(self, tenant_id: str, thread_id: str) -> list[Evidence]:
        with self.db.session(tenant_id) as s:
            return list(s.scalars(select(Evidence).where(Evidence.tenant_id == tenant_id,
                                                         Evidence.thread_id == thread_id)))
