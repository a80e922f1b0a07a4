"""API keys and principals.

A key is `ap_<id>_<secret>`; only its SHA-256 hash is stored (`api_keys`), mapped to a principal
(subject, tenant, roles). Keys come from `autopilot keys create`, or for development from
`AUTOPILOT_API_KEYS` (hashed in memory at start-up, never stored). The tenant always comes from
the key, never from the request.

Roles: `viewer` reads; `ingest` (a system feeding events) may also post events and start runs;
`approver` may also decide approvals and exceptions, cancel and replay runs; `admin` may do
everything, including policies, the kill switch and keys.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select

from api.errors import ApiError
from autopilot.db import ALL_TENANTS, Database
from autopilot.models import ApiKey
from tools.gateway import Principal

ROLES = ("viewer", "ingest", "approver", "admin")
# permission -> the roles that hold it
PERMISSIONS: dict[str, frozenset[str]] = {
    "read": frozenset({"viewer", "ingest", "approver", "admin"}),
    "ingest": frozenset({"ingest", "approver", "admin"}),
    "decide": frozenset({"approver", "admin"}),
    "admin": frozenset({"admin"}),
}


class KeyGrant(BaseModel):
    tenant: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    subject: str = Field(min_length=1, max_length=200)
    roles: list[str] = Field(default=["viewer"], min_length=1)

    def model_post_init(self, _context: object) -> None:
        unknown = sorted(set(self.roles) - set(ROLES))
        if unknown:
            raise ValueError(f"unknown role(s) {unknown}; roles are {', '.join(ROLES)}")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def load_env_keys(raw: str) -> dict[str, KeyGrant]:
    """Parse `AUTOPILOT_API_KEYS` into hash -> grant; a malformed value names the problem."""
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("must be a JSON object of key -> grant")
        return {hash_key(key): KeyGrant.model_validate(grant) for key, grant in data.items()}
    except (ValueError, ValidationError) as exc:
        raise ValueError(f"AUTOPILOT_API_KEYS is not valid: {exc}") from None


def create_key(db: Database, grant: KeyGrant, *, created_by: str) -> tuple[str, ApiKey]:
    """Mint a key; the plaintext is returned once and never stored."""
    key_id = secrets.token_hex(4)
    key = f"ap_{key_id}_{secrets.token_urlsafe(32)}"
    row = ApiKey(id=key_id, key_hash=hash_key(key), tenant_id=grant.tenant,
                 subject=grant.subject, roles=list(grant.roles), created_by=created_by,
                 created_at=datetime.now(UTC))
    with db.session(grant.tenant) as s:
        s.add(row)
    return key, row


def revoke_key(db: Database, key_id: str) -> bool:
    with db.session(ALL_TENANTS) as s:
        row = s.get(ApiKey, key_id)
        if row is None or row.revoked_at is not None:
            return False
        row.revoked_at = datetime.now(UTC)
        return True


def list_keys(db: Database, tenant_id: str | None = None) -> list[ApiKey]:
    with db.session(tenant_id or ALL_TENANTS) as s:
        q = select(ApiKey).order_by(ApiKey.created_at)
        if tenant_id:
            q = q.where(ApiKey.tenant_id == tenant_id)
        return list(s.scalars(q))


_bearer = HTTPBearer(auto_error=False)


def authenticate(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None,
                                                    Depends(_bearer)]) -> Principal:
    if creds is None:
        raise ApiError(401, "unauthenticated", "an API key is required "
                       "(Authorization: Bearer <key>)", field="Authorization")
    digest = hash_key(creds.credentials)
    grant: KeyGrant | None = request.app.state.env_keys.get(digest)
    if grant is None:
        with request.app.state.runner.services.db.session(ALL_TENANTS) as s:
            row = s.scalar(select(ApiKey).where(ApiKey.key_hash == digest,
                                                ApiKey.revoked_at.is_(None)))
        if row is not None:
            grant = KeyGrant(tenant=row.tenant_id, subject=row.subject, roles=row.roles)
    if grant is None:
        raise ApiError(401, "invalid_api_key", "the API key is not valid or was revoked",
                       field="Authorization")
    return Principal("user", grant.subject, grant.tenant, frozenset(grant.roles))


def require(permission: str):  # type: ignore[no-untyped-def]
    """Dependency: the caller, if one of its roles holds `permission` (else 403)."""
    allowed = PERMISSIONS[permission]

    def check(caller: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if not allowed & caller.roles:
            raise ApiError(403, "forbidden", f"this needs one of the roles "
                           f"{', '.join(sorted(allowed))}; the key has "
                           f"{', '.join(sorted(caller.roles))}")
        return caller

    return check


Reader = Annotated[Principal, Depends(require("read"))]
Ingester = Annotated[Principal, Depends(require("ingest"))]
Approver = Annotated[Principal, Depends(require("decide"))]
Admin = Annotated[Principal, Depends(require("admin"))]
