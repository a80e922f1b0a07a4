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
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

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
        (the state keeps these; the store keeps the content).

        All rows are inserted first, in id order and skipping ids already stored (two runs
        that saw the same content share the record), then the ledger entries are appended:
        concurrent runs neither deadlock nor collide on the primary key.
        """
        records: list[dict[str, Any]] = []  # one per stored record
        out: list[dict[str, Any]] = []
        for read in reads:
            summary = f"{read['tool']}({json.dumps(read['args'], sort_keys=True)})"
            refs = entity_refs(read["tool"], read["output"]) or [f"read:{read['tool']}"]
            rec = self._record(tenant_id, thread_id, ", ".join(refs), f"tool:{read['tool']}",
                               summary, {"tool": read["tool"], "args": read["args"],
                                         "principal": principal, "thread_id": thread_id},
                               read["output"])
            records.append(rec)
            out += [{"ref": r, "source": rec["source"], "summary": summary,
                     "evidence_id": rec["id"]} for r in refs]
        for item in items:
            rec = self._record(tenant_id, thread_id, str(item["ref"]),
                               str(item.get("source", "")), str(item.get("summary", "")),
                               {"ref": item["ref"], "thread_id": thread_id,
                                "principal": principal}, item)
            records.append(rec)
            out.append({**item, "evidence_id": rec["id"]})
        with self.db.session(tenant_id) as s:
            rows = {r["id"]: r["row"] for r in records}
            if rows:
                insert = (pg_insert if self.db.is_postgres else sqlite_insert)(Evidence)
                s.execute(insert.on_conflict_do_nothing(index_elements=["tenant_id", "id"]),
                          [rows[k] for k in sorted(rows)])
            for rec in records:
                self.ledger.append(
                    s, tenant_id=tenant_id, event_type="EVIDENCE", thread_id=thread_id,
                    trace_id=trace_id, event_key=f"{thread_id}:evidence:{rec['id']}",
                    payload={"evidence_id": rec["id"], "ref": rec["ref"],
                             "source": rec["source"], "summary": rec["summary"],
                             "content_hash": rec["row"]["content_hash"]})
        return out

    @staticmethod
    def _record(tenant_id: str, thread_id: str, ref: str, source: str, summary: str,
                provenance: dict[str, Any], content: Any) -> dict[str, Any]:
        digest = content_hash(content)
        eid = f"ev-{digest[:24]}"
        row = {"tenant_id": tenant_id, "id": eid, "thread_id": thread_id, "source": source,
               "summary": redact(summary), "provenance": redact(provenance),
               "content": redact(content if isinstance(content, dict) else {"value": content}),
               "content_hash": digest, "captured_at": datetime.now(UTC)}
        return {"id": eid, "ref": ref, "source": source, "summary": summary, "row": row}

    def for_run(self, tenant_id: str, thread_id: str) -> list[Evidence]:
        with self.db.session(tenant_id) as s:
            return list(s.scalars(select(Evidence).where(Evidence.tenant_id == tenant_id,
                                                         Evidence.thread_id == thread_id)))
