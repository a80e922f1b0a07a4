"""HTTP adapter (tools/http_adapter.py) against a real HTTP server started here.

The server is a small FastAPI app run by uvicorn on a free port in a thread; it serves its own
OpenAPI document, counts every call, records the Authorization and Idempotency-Key headers it
receives, fails on purpose when told to (503/429 with Retry-After, a lost response), sleeps
when told to, and deduplicates credits by Idempotency-Key as a real payment API would. The
tools go through the real registry, ToolGateway (exactly-once record, authorisation by a
recorded execute-stage policy decision) and PolicyGate.
"""

from __future__ import annotations

import asyncio
import copy
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

import pytest
import uvicorn
import yaml
from fastapi import FastAPI, Header, HTTPException, Query, Response
from pydantic import BaseModel, Field

from autopilot.db import Database, migrate
from autopilot.killswitch import KillSwitch
from autopilot.ledger import Ledger
from policy.engine import PolicyBundle
from policy.gate import PolicyGate
from policy.store import PolicyStore
from tests.conftest import make_settings, settings_env
from tests.helpers import TENANT
from tools import http_adapter
from tools.catalog import build_registry
from tools.faults import SandboxFaults
from tools.gateway import Authorization, Principal, ToolGateway
from tools.http_adapter import (
    AdapterConfigError,
    load_adapter,
    register_adapter,
    remote_idempotency_key,
)
from tools.registry import (
    PermanentToolError,
    ToolArgumentError,
    ToolContext,
    ToolKind,
    ToolRegistry,
    TransientToolError,
)

TOKEN_ENV = "TEST_BILLING_TOKEN"
TOKEN = "s3cret-token"
ACME = Principal.autopilot("maintenance", TENANT)
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "http_adapter"

# --------------------------------------------------------------------------- the remote API


class Invoice(BaseModel):
    id: str
    customer: str
    amount: float
    status: Literal["open", "paid", "void"]
    due: date
    memo: str | None = None


class InvoiceList(BaseModel):
    items: list[Invoice]
    total: int


class CreditIn(BaseModel):
    amount: float = Field(gt=0, le=10000, description="credit in the invoice currency")
    currency: Literal["USD", "EUR"]
    reason: str = Field(min_length=3, max_length=200)
    notify_customer: bool = False


class Credit(BaseModel):
    credit_id: str
    invoice_id: str
    amount: float
    currency: str
    reason: str


INVOICES = {
    "INV-1": Invoice(id="INV-1", customer="Grand St Holdings", amount=1200.0, status="open",
                     due=date(2026, 12, 1)),
    "INV-2": Invoice(id="INV-2", customer="Elm Court LLC", amount=80.0, status="paid",
                     due=date(2026, 11, 1), memo="paid by card"),
}


@dataclass
class RemoteState:
    url: str = ""
    token: str = TOKEN
    calls: Counter[str] = field(default_factory=Counter)
    seen: list[dict[str, Any]] = field(default_factory=list)
    # What the next calls do, one entry per call: "503" / "429" fail before acting; "lose"
    # acts, then answers 503 (the response is lost on the way back).
    script: list[str] = field(default_factory=list)
    retry_after: str | None = None
    sleep_s: float = 0.0
    credits: dict[str, Credit] = field(default_factory=dict)  # by Idempotency-Key
    effects: int = 0  # credits actually created

    def reset(self) -> None:
        self.__dict__.update(RemoteState(url=self.url).__dict__)


def build_app(state: RemoteState) -> FastAPI:
    app = FastAPI(title="Billing (test)", version="1.0.0", servers=[{"url": state.url}])

    def guard(op: str, authorization: str | None, key: str | None = None,
              query: dict[str, Any] | None = None) -> str:
        state.calls[op] += 1
        state.seen.append({"op": op, "authorization": authorization, "key": key,
                           "query": query or {}})
        step = state.script.pop(0) if state.script else ""
        if step in ("503", "429"):
            headers = {"Retry-After": state.retry_after} if state.retry_after else None
            raise HTTPException(int(step), "try again later", headers=headers)
        if authorization != f"Bearer {state.token}":
            raise HTTPException(401, "missing or wrong API token")
        return step

    @app.get("/invoices/{invoice_id}", operation_id="getInvoice", response_model=Invoice,
             summary="One invoice")
    def get_invoice(invoice_id: str, authorization: str | None = Header(None)) -> Invoice:
        guard("getInvoice", authorization)
        if invoice_id not in INVOICES:
            raise HTTPException(404, f"invoice {invoice_id} not found")
        return INVOICES[invoice_id]

    @app.get("/invoices", operation_id="listInvoices", response_model=InvoiceList,
             summary="Invoices, optionally by status")
    def list_invoices(status: Literal["open", "paid", "void"] | None = None,
                      limit: int = Query(10, ge=1, le=50),
                      authorization: str | None = Header(None)) -> InvoiceList:
        guard("listInvoices", authorization, query={"status": status, "limit": limit})
        items = [i for i in INVOICES.values() if status is None or i.status == status]
        return InvoiceList(items=items[:limit], total=len(items))

    @app.post("/invoices/{invoice_id}/credits", operation_id="createCredit",
              response_model=Credit, status_code=201, summary="Credit an invoice")
    def create_credit(invoice_id: str, body: CreditIn,
                      authorization: str | None = Header(None),
                      idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
                      ) -> Credit:
        step = guard("createCredit", authorization, idempotency_key)
        if idempotency_key in state.credits:  # the remote deduplicates a repeated request
            return state.credits[idempotency_key]
        invoice = INVOICES.get(invoice_id)
        if invoice is None:
            raise HTTPException(404, f"invoice {invoice_id} not found")
        if body.amount > invoice.amount:
            raise HTTPException(422, "credit exceeds the invoice balance")
        state.effects += 1
        credit = Credit(credit_id=f"CR-{state.effects}", invoice_id=invoice_id,
                        amount=body.amount, currency=body.currency, reason=body.reason)
        if idempotency_key:
            state.credits[idempotency_key] = credit
        if step == "lose":
            raise HTTPException(503, "the response was lost")
        return credit

    @app.get("/reports/slow", operation_id="slowReport", summary="A report that takes a while")
    async def slow_report(authorization: str | None = Header(None)) -> dict[str, Any]:
        guard("slowReport", authorization)
        await asyncio.sleep(state.sleep_s)
        return {"ok": True, "slept": state.sleep_s}

    @app.get("/invoices/{invoice_id}/summary", operation_id="invoiceSummary",
             responses={200: {"model": Invoice}}, summary="Declares an Invoice, sends less")
    def invoice_summary(invoice_id: str, authorization: str | None = Header(None),
                        ) -> dict[str, Any]:
        guard("invoiceSummary", authorization)
        return {"id": invoice_id, "amount": "a lot"}

    @app.delete("/invoices/{invoice_id}/hold", operation_id="releaseHold", status_code=204,
                summary="Release a hold")
    def release_hold(invoice_id: str, authorization: str | None = Header(None),
                     idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
                     ) -> Response:
        guard("releaseHold", authorization, idempotency_key)
        return Response(status_code=204)

    return app


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="module")
def remote() -> Iterator[RemoteState]:
    sock = _free_socket()
    state = RemoteState(url=f"http://127.0.0.1:{sock.getsockname()[1]}")
    server = uvicorn.Server(uvicorn.Config(build_app(state), log_level="error", lifespan="off",
                                           timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.02)
    yield state
    server.should_exit = True
    thread.join(timeout=5)
    sock.close()


# --------------------------------------------------------------------------- adapter files


MAPPING: dict[str, Any] = {
    "auth": {"env": TOKEN_ENV, "scheme": "Bearer"},
    "defaults": {"timeout_s": 5, "retries": 3, "backoff_s": 0.02},
    "tools": [
        {"operation": "getInvoice", "name": "billing_get_invoice", "kind": "read"},
        {"operation": "listInvoices", "name": "billing_list_invoices", "kind": "read",
         "cost_class": "med"},
        {"operation": "createCredit", "name": "billing_create_credit", "kind": "write",
         "reversible": False, "risk": "HIGH", "cost_class": "MED", "timeout_s": 8,
         "policy_facts": {"money": "amount", "external": True,
                          "category": "BILLING"}},
        {"operation": "slowReport", "name": "billing_slow_report", "kind": "read",
         "timeout_s": 0.6},
        {"operation": "releaseHold", "name": "billing_release_hold", "kind": "write"},
        {"operation": "invoiceSummary", "name": "billing_invoice_summary", "kind": "read"},
    ],
}


@pytest.fixture(scope="module")
def files(remote: RemoteState, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The server's OpenAPI document saved as YAML, and the mapping."""
    import httpx

    folder = tmp_path_factory.mktemp("adapter")
    doc = httpx.get(f"{remote.url}/openapi.json").json()
    (folder / "billing.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    (folder / "mapping.yaml").write_text(yaml.safe_dump(MAPPING, sort_keys=False))
    return {"openapi": folder / "billing.yaml", "mapping": folder / "mapping.yaml",
            "folder": folder}


@dataclass
class Stack:
    registry: ToolRegistry
    gateway: ToolGateway
    gate: PolicyGate
    db: Database


PERMIT = """
@id("BILLING_AUTONOMOUS_WRITES")
permit (principal == Autopilot::"maintenance", action == Action::"execute", resource)
when {
  ["billing_create_credit", "billing_release_hold"].contains(context.tool.name) &&
  context.facts.spend_cents <= context.limits.auto_approve_max_cents
};
"""


@pytest.fixture(scope="module")
def stack(files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A migrated SQLite backend with the adapter's tools behind the real gateway and gate.

    A new write tool only ever gets WRITE_WITH_APPROVAL from the shipped policies; the
    operator permits it by policy, as here (a global version = shipped bundle + one permit,
    and autonomy L4 for the irreversible credit).
    """
    from graphs import autopilots

    settings = make_settings(settings_env(tmp_path_factory.mktemp("backend")))
    db = Database(settings)
    owner = db.migration_engine()
    migrate(owner)
    owner.dispose()
    registry = ToolRegistry()
    register_adapter(registry, files["openapi"], files["mapping"])
    ledger = Ledger(db)
    store = PolicyStore(db, set(build_registry().names()) | set(registry.names()),
                        set(autopilots()))
    bundle = PolicyBundle.load()
    config = copy.deepcopy(bundle.config)  # the credit is irreversible: it needs L4 to run alone
    config["autonomy"]["graphs"]["maintenance"]["tools"]["billing_create_credit"] = "L4"
    store.create(scope_type="global", cedar=bundle.cedar + PERMIT, config=config,
                 author="test", note="let the billing credit run within the auto limit",
                 activate=True)
    gateway = ToolGateway(db, registry, SandboxFaults(), ledger)
    pinned = settings.policy_time
    gate = PolicyGate(db, registry, gateway, store, ledger,
                      KillSwitch(db, ledger, settings.autonomy_enabled),
                      clock=(lambda: pinned) if pinned is not None else None)
    yield Stack(registry, gateway, gate, db)
    db.dispose()


@pytest.fixture(autouse=True)
def _fresh(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.delenv(http_adapter.ENV_VAR, raising=False)
    if "remote" in request.fixturenames:
        request.getfixturevalue("remote").reset()


def authorize(stack: Stack, thread_id: str, action_id: str, tool: str,
              args: dict[str, Any]) -> Authorization:
    """What `execute` does before a write: a recorded execute-stage decision that allows it."""
    d = stack.gate.decide(graph="maintenance", tenant_id=TENANT, thread_id=thread_id,
                          action_id=action_id, tool=tool, args=args, run_facts={},
                          stage="execute")
    assert d.outcome.value == "ALLOW" and d.decision_id is not None, d
    return Authorization(decision_id=d.decision_id, reason_code=",".join(d.reasons),
                         policy_version=d.policy_version)


CREDIT = {"invoice_id": "INV-1", "amount": 50, "currency": "USD", "reason": "late delivery"}

# --------------------------------------------------------------------------- tests


def test_tools_are_registered_with_kinds_schemas_and_classes(stack: Stack) -> None:
    reg = stack.registry
    assert reg.names(ToolKind.READ) == ["billing_get_invoice", "billing_invoice_summary",
                                        "billing_list_invoices", "billing_slow_report"]
    assert reg.names(ToolKind.WRITE) == ["billing_create_credit", "billing_release_hold"]
    credit = reg.get("billing_create_credit").describe()
    assert (credit["kind"], credit["reversible"], credit["risk"], credit["cost_class"],
            credit["timeout_s"]) == ("write", False, "HIGH", "MED", 8)
    assert "HTTP POST /invoices/{invoice_id}/credits" in credit["description"]
    schema = credit["input_schema"]
    assert schema["additionalProperties"] is False
    assert sorted(schema["required"]) == ["amount", "currency", "invoice_id", "reason"]
    # Headers the adapter sets itself (credential, idempotency key) are never arguments.
    assert set(schema["properties"]) == {"invoice_id", "amount", "currency", "reason",
                                         "notify_customer"}
    assert schema["properties"]["currency"]["enum"] == ["USD", "EUR"]
    assert schema["properties"]["amount"]["exclusiveMinimum"] == 0
    assert schema["properties"]["amount"]["maximum"] == 10000
    assert set(credit["output_schema"]["required"]) == {"credit_id", "invoice_id", "amount",
                                                        "currency", "reason"}
    listing = reg.get("billing_list_invoices").describe()
    assert (listing["kind"], listing["cost_class"], listing["reversible"]) == ("read", "MED",
                                                                               True)
    limit = listing["input_schema"]["properties"]["limit"]  # optional: int in [1, 50] or null
    assert limit["default"] == 10 and {"type": "null"} in limit["anyOf"]
    assert {"type": "integer", "minimum": 1, "maximum": 50} in limit["anyOf"]
    json.dumps(reg.catalogue())  # the JSON Schema export works for generated tools too


def test_read_goes_through_the_gateway_and_returns_the_servers_json(
        stack: Stack, remote: RemoteState) -> None:
    out = stack.gateway.read(ACME, "billing_get_invoice", {"invoice_id": "INV-2"})
    assert out == INVOICES["INV-2"].model_dump(mode="json")
    listed = stack.gateway.read(ACME, "billing_list_invoices", {"status": "open", "limit": 5})
    assert listed == {"items": [INVOICES["INV-1"].model_dump(mode="json")], "total": 1}
    assert remote.seen[-1]["query"] == {"status": "open", "limit": 5}
    # The credential comes from the environment, never from the document; reads carry no key.
    assert {s["authorization"] for s in remote.seen} == {f"Bearer {TOKEN}"}
    assert all(s["key"] is None for s in remote.seen)


def test_the_auth_header_comes_from_the_env_var(stack: Stack, remote: RemoteState,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "rotated-token")
    remote.token = "rotated-token"
    stack.gateway.read(ACME, "billing_get_invoice", {"invoice_id": "INV-1"})
    assert remote.seen[-1]["authorization"] == "Bearer rotated-token"
    monkeypatch.setenv(TOKEN_ENV, "wrong")
    with pytest.raises(PermanentToolError, match="HTTP 401: missing or wrong API token"):
        stack.gateway.read(ACME, "billing_get_invoice", {"invoice_id": "INV-1"})
    monkeypatch.delenv(TOKEN_ENV)
    before = sum(remote.calls.values())
    with pytest.raises(PermanentToolError, match=f"environment variable {TOKEN_ENV} is not set"):
        stack.gateway.read(ACME, "billing_get_invoice", {"invoice_id": "INV-1"})
    assert sum(remote.calls.values()) == before  # nothing was sent without a credential


def test_a_per_tenant_credential(files: dict[str, Path], remote: RemoteState,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = files["folder"] / "per_tenant.yaml"
    path.write_text(yaml.safe_dump({**MAPPING, "auth": {"env": "TEST_BILLING_{tenant}_KEY",
                                                        "scheme": "Bearer"}}))
    spec = {s.name: s for s in load_adapter(files["openapi"], path)}["billing_get_invoice"]
    monkeypatch.setenv("TEST_BILLING_ACME_CO_KEY", TOKEN)
    ctx = ToolContext(session=None, tenant_id="acme-co",  # type: ignore[arg-type]
                      now=datetime.now(UTC))
    spec.handler(ctx, spec.input_model.model_validate({"invoice_id": "INV-1"}))
    assert remote.seen[-1]["authorization"] == f"Bearer {TOKEN}"
    other = ToolContext(session=None, tenant_id="globex",  # type: ignore[arg-type]
                        now=datetime.now(UTC))
    with pytest.raises(PermanentToolError, match="TEST_BILLING_GLOBEX_KEY is not set"):
        spec.handler(other, spec.input_model.model_validate({"invoice_id": "INV-1"}))
    assert remote.calls["getInvoice"] == 1


def test_a_response_that_breaks_its_schema_is_a_permanent_failure(
        stack: Stack, remote: RemoteState) -> None:
    with pytest.raises(PermanentToolError, match="does not match the document's schema: "
                                                 "customer: Field required; amount: "):
        stack.gateway.read(ACME, "billing_invoice_summary", {"invoice_id": "INV-1"})
    assert remote.calls["invoiceSummary"] == 1


def test_bad_arguments_are_refused_with_the_field_named_before_any_http_call(
        stack: Stack, remote: RemoteState) -> None:
    cases = [
        ("billing_list_invoices", {"limit": 0}, "limit"),
        ("billing_list_invoices", {"status": "lost"}, "status"),
        ("billing_list_invoices", {"bogus": 1}, "bogus"),
        ("billing_get_invoice", {}, "invoice_id"),
    ]
    for tool, args, fld in cases:
        with pytest.raises(ToolArgumentError) as err:
            stack.gateway.read(ACME, tool, args)
        assert [f["field"] for f in err.value.fields] == [fld], (tool, args)
    writes = [({**CREDIT, "currency": "GBP"}, "currency"), ({**CREDIT, "amount": 0}, "amount"),
              ({**CREDIT, "amount": "lots"}, "amount"), ({**CREDIT, "tenant_id": "x"},
                                                         "tenant_id")]
    for args, fld in writes:
        with pytest.raises(ToolArgumentError) as err:
            stack.gateway.write(ACME, "billing_create_credit", args, thread_id="run-bad",
                                action_id="credit", authorization=None)
        assert [f["field"] for f in err.value.fields] == [fld]
    assert sum(remote.calls.values()) == 0


def test_a_write_sends_the_same_idempotency_key_on_retries_and_reruns(
        stack: Stack, remote: RemoteState) -> None:
    key = remote_idempotency_key(TENANT, "billing_create_credit", "run-1:credit")
    auth = authorize(stack, "run-1", "credit", "billing_create_credit", CREDIT)
    # 1. The first two calls get 503: the adapter retries with the same key and succeeds.
    remote.script = ["503", "503"]
    out, replayed = stack.gateway.write(ACME, "billing_create_credit", CREDIT,
                                        thread_id="run-1", action_id="credit",
                                        authorization=auth)
    assert not replayed and out == {"credit_id": "CR-1", "invoice_id": "INV-1", "amount": 50.0,
                                    "currency": "USD", "reason": "late delivery"}
    assert [s["key"] for s in remote.seen] == [key, key, key]
    assert remote.effects == 1
    # 2. The same (run, action) again: the gateway's record answers; the remote is not called.
    again, replayed = stack.gateway.write(ACME, "billing_create_credit", CREDIT,
                                          thread_id="run-1", action_id="credit",
                                          authorization=auth)
    assert replayed and again == out and remote.calls["createCredit"] == 3
    # 3. A call that acted remotely but whose response was lost, then failed on every retry,
    #    is re-run (the spine's retry, or a resume after a crash): it sends the same key, and
    #    the remote applies the credit once.
    key2 = remote_idempotency_key(TENANT, "billing_create_credit", "run-2:credit")
    auth2 = authorize(stack, "run-2", "credit", "billing_create_credit", CREDIT)
    remote.script = ["lose", "503", "503", "503"]
    with pytest.raises(TransientToolError, match="HTTP 503.*gave up after 4 attempts"):
        stack.gateway.write(ACME, "billing_create_credit", CREDIT, thread_id="run-2",
                            action_id="credit", authorization=auth2)
    assert remote.calls["createCredit"] == 3 + 4 and remote.effects == 2
    assert stack.gateway.recorded("run-2:credit", TENANT) is None
    out2, replayed = stack.gateway.write(ACME, "billing_create_credit", CREDIT,
                                         thread_id="run-2", action_id="credit",
                                         authorization=auth2)
    assert not replayed and out2["credit_id"] == "CR-2"
    assert [s["key"] for s in remote.seen[3:]] == [key2] * 5
    assert remote.effects == 2  # one credit per action, whatever the retries and re-runs
    assert key != key2 and key.startswith("ap-") and "run-1" not in key


def test_retry_after_is_respected_for_503_and_429(stack: Stack, remote: RemoteState) -> None:
    remote.script, remote.retry_after = ["429"], "1"
    started = time.monotonic()
    out = stack.gateway.read(ACME, "billing_get_invoice", {"invoice_id": "INV-1"})
    assert out["id"] == "INV-1" and remote.calls["getInvoice"] == 2
    assert time.monotonic() - started >= 0.95  # waited as told, not the 0.02 s backoff
    # A Retry-After beyond the tool's timeout is not waited for: it fails now, retryably.
    remote.script, remote.retry_after = ["503"], "30"
    started = time.monotonic()
    with pytest.raises(TransientToolError, match="HTTP 503: try again later.*no time left"):
        stack.gateway.read(ACME, "billing_get_invoice", {"invoice_id": "INV-1"})
    assert time.monotonic() - started < 1


def test_a_timeout_is_a_transient_failure(stack: Stack, remote: RemoteState) -> None:
    remote.sleep_s = 2.0  # the tool's timeout is 0.6 s
    started = time.monotonic()
    with pytest.raises(TransientToolError, match="timed out after 0.6s"):
        stack.gateway.read(ACME, "billing_slow_report", {})
    assert time.monotonic() - started < 1.5
    remote.sleep_s = 0.0
    assert stack.gateway.read(ACME, "billing_slow_report", {}) == {"ok": True, "slept": 0.0}


def test_4xx_is_a_permanent_failure_with_the_servers_message(stack: Stack,
                                                             remote: RemoteState) -> None:
    with pytest.raises(PermanentToolError, match="HTTP 404: invoice INV-404 not found"):
        stack.gateway.read(ACME, "billing_get_invoice", {"invoice_id": "INV-404"})
    assert remote.calls["getInvoice"] == 1  # not retried
    args = {**CREDIT, "amount": 500, "invoice_id": "INV-2"}  # more than the invoice's 80
    auth = authorize(stack, "run-422", "credit", "billing_create_credit", args)
    with pytest.raises(PermanentToolError, match="HTTP 422: credit exceeds the invoice balance"):
        stack.gateway.write(ACME, "billing_create_credit", args, thread_id="run-422",
                            action_id="credit", authorization=auth)
    assert remote.calls["createCredit"] == 1 and remote.effects == 0
    assert stack.gateway.recorded("run-422:credit", TENANT) is None


def test_connection_errors_are_retried_then_transient(files: dict[str, Path]) -> None:
    dead = _free_socket()  # bound, never listening: connections are refused
    port = dead.getsockname()[1]
    mapping = files["folder"] / "dead.yaml"
    mapping.write_text(yaml.safe_dump({**MAPPING, "base_url": f"http://127.0.0.1:{port}",
                                       "tools": MAPPING["tools"][:1]}))
    [spec] = load_adapter(files["openapi"], mapping)
    ctx = ToolContext(session=None, tenant_id=TENANT,  # type: ignore[arg-type]
                      now=datetime.now(UTC))
    try:
        with pytest.raises(TransientToolError, match="connection error.*gave up after 4"):
            spec.handler(ctx, spec.input_model.model_validate({"invoice_id": "INV-1"}))
    finally:
        dead.close()


def test_policy_facts_come_from_the_mapping(stack: Stack) -> None:
    facts = stack.gateway.policy_facts(TENANT, "billing_create_credit",
                                       {**CREDIT, "amount": 12.5})
    assert facts == {"spend_cents": 1250, "external": True, "category": "BILLING"}
    big = {**CREDIT, "amount": 900}  # above the 750 auto limit: a person must approve
    d = stack.gate.decide(graph="maintenance", tenant_id=TENANT, thread_id="run-big",
                          action_id="credit", tool="billing_create_credit", args=big,
                          run_facts={}, stage="execute")
    assert d.outcome.value == "REQUIRE_APPROVAL" and "SPEND_OVER_AUTO_LIMIT" in d.reasons


def test_a_write_without_a_gateway_key_is_refused_before_any_call(
        stack: Stack, remote: RemoteState) -> None:
    spec = stack.registry.get("billing_release_hold")
    ctx = ToolContext(session=None, tenant_id=TENANT,  # type: ignore[arg-type]
                      now=datetime.now(UTC))
    with pytest.raises(PermanentToolError, match="idempotency key"):
        spec.handler(ctx, spec.input_model.model_validate({"invoice_id": "INV-1"}))
    assert remote.calls["releaseHold"] == 0
    auth = authorize(stack, "run-hold", "release", "billing_release_hold",
                         {"invoice_id": "INV-1"})
    out, _ = stack.gateway.write(ACME, "billing_release_hold", {"invoice_id": "INV-1"},
                                 thread_id="run-hold", action_id="release",
                                 authorization=auth)
    assert out == {}  # 204: nothing to return
    assert remote.seen[-1]["key"] == remote_idempotency_key(TENANT, "billing_release_hold",
                                                             "run-hold:release")


def test_loading_the_document_from_the_servers_url(remote: RemoteState,
                                                   files: dict[str, Path]) -> None:
    specs = load_adapter(f"{remote.url}/openapi.json", files["mapping"])
    spec = {s.name: s for s in specs}["billing_get_invoice"]
    ctx = ToolContext(session=None, tenant_id=TENANT,  # type: ignore[arg-type]
                      now=datetime.now(UTC))
    out = spec.handler(ctx, spec.input_model.model_validate({"invoice_id": "INV-1"}))
    assert out.model_dump(mode="json") == INVOICES["INV-1"].model_dump(mode="json")
    assert remote.calls["getInvoice"] == 1  # the base URL came from the document's servers


def test_start_up_configuration_from_the_environment(files: dict[str, Path],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    registry = ToolRegistry()
    http_adapter.register(registry)  # unset: nothing
    assert registry.names() == []
    monkeypatch.setenv(http_adapter.ENV_VAR, json.dumps(
        [{"openapi": str(files["openapi"]), "mapping": str(files["mapping"])}]))
    http_adapter.register(registry)
    assert "billing_create_credit" in registry.names() and len(registry.names()) == 6
    for raw, match in [("{}", "JSON list"), ("[{\"openapi\": \"x\"}]", r"\[0\]: mapping"),
                       ("not json", "JSON list"),
                       (json.dumps([{"openapi": str(files["openapi"]),
                                     "mapping": str(files["folder"] / "nope.yaml")}]),
                        r"\[0\]: .*nope.yaml: cannot read")]:
        monkeypatch.setenv(http_adapter.ENV_VAR, raw)
        with pytest.raises(AdapterConfigError, match=match):
            http_adapter.register(ToolRegistry())


@pytest.mark.parametrize("change, match", [
    ({"tools": [{"operation": "nope", "kind": "read"}]}, "no operationId 'nope'"),
    ({"tools": [{"operation": "getInvoice", "kind": "maybe"}]}, "tools.0.kind"),
    ({"tools": [{"operation": "getInvoice", "kind": "read", "reversible": False}]},
     "read tool cannot be irreversible"),
    ({"tools": [{"operation": "createCredit", "kind": "write",
                 "policy_facts": {"money": "price"}}]}, "no argument 'price'"),
    ({"tools": [{"operation": "createCredit", "kind": "write",
                 "policy_facts": {"spend": 3}}]}, "policy_facts.spend: unknown fact"),
    ({"tools": [{"operation": "getInvoice", "kind": "read", "surprise": 1}]},
     "tools.0.surprise"),
    ({"auth": {"env": "lower-case-dash"}}, "auth.env"),
])
def test_mapping_mistakes_are_named(files: dict[str, Path], change: dict[str, Any],
                                    match: str) -> None:
    path = files["folder"] / "bad.yaml"
    path.write_text(yaml.safe_dump({**MAPPING, **change}))
    with pytest.raises(AdapterConfigError, match=match):
        load_adapter(files["openapi"], path)


def test_the_shipped_example_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    specs = load_adapter(EXAMPLES / "billing.openapi.yaml", EXAMPLES / "billing.mapping.yaml")
    by_name = {s.name: s for s in specs}
    assert {n: s.kind.value for n, s in by_name.items()} == {
        "billing_get_invoice": "read", "billing_list_invoices": "read",
        "billing_issue_credit": "write"}
    credit = by_name["billing_issue_credit"]
    assert (credit.reversible, credit.risk.value, credit.cost_class.value) == (False, "HIGH",
                                                                              "MED")
    assert credit.policy_facts is not None
    args = credit.input_model.model_validate({"invoice_id": "INV-1", "amount": 19.99,
                                              "currency": "USD", "reason": "late delivery"})
    assert credit.policy_facts(None, args)["spend_cents"] == 1999  # type: ignore[arg-type]
    assert credit.preview is not None and credit.preview.money == ("amount",)
    assert by_name["billing_get_invoice"].input_model.model_json_schema()["properties"][
        "invoice_id"]["pattern"] == "^INV-[0-9]+$"  # a path parameter declared by $ref
