"""Settings read from the environment, so the same code runs embedded (SQLite) or on Postgres."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    """Process configuration. Empty `DATABASE_URL` means the embedded SQLite default."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    data_dir: Path = Field(default=Path(".autopilot"), alias="AUTOPILOT_DATA_DIR")
    database_url: str = Field(default="", alias="DATABASE_URL")
    tenant_id: str = Field(default="acme", alias="AUTOPILOT_TENANT")
    # Sandbox fault injection for chaos tests, e.g. {"create_work_order": {"delay_after_s": 30}}.
    sandbox_faults: str = Field(default="", alias="AUTOPILOT_SANDBOX_FAULTS")
    retry_initial_interval: float = Field(default=0.2, alias="AUTOPILOT_RETRY_INITIAL_INTERVAL")
    # Judge time-of-day policy conditions (quiet hours) as at this instant instead of the wall
    # clock: for tests, evals and demos that must not depend on when they run.
    policy_time: AwareDatetime | None = Field(default=None, alias="AUTOPILOT_POLICY_TIME")
    # development | production; production turns autonomous writes off unless
    # AUTONOMY_ENABLED says otherwise.
    environment: Literal["development", "production"] = Field(default="development",
                                                              alias="AUTOPILOT_ENV")
    autonomy_enabled_env: bool | None = Field(default=None, alias="AUTONOMY_ENABLED")
    log_level: str = Field(default="WARNING", alias="AUTOPILOT_LOG_LEVEL")
    # API keys -> principals, JSON: {"<key>": {"tenant": "acme", "subject": "...", "roles": [...]}}
    api_keys: str = Field(default="", alias="AUTOPILOT_API_KEYS", repr=False)
    # Pending approvals expire after this many seconds and escalate (0: never).
    approval_ttl_s: float = Field(default=86_400, ge=0, alias="AUTOPILOT_APPROVAL_TTL")
    # Workers (seed 002 names): jobs at once per worker, poll interval, stale-claim timeout.
    max_concurrent_jobs: int = Field(default=3, ge=1, le=256, alias="AGENT_MAX_CONCURRENT_JOBS")
    job_poll_interval_ms: int = Field(default=5000, ge=10, alias="AGENT_JOB_POLL_INTERVAL_MS")
    job_stale_timeout_ms: int = Field(default=300_000, ge=1000,
                                      alias="AGENT_JOB_STALE_TIMEOUT_MS")
    job_max_attempts: int = Field(default=5, ge=1, le=100, alias="AUTOPILOT_JOB_MAX_ATTEMPTS")
    job_retry_wait_s: float = Field(default=2.0, ge=0, alias="AUTOPILOT_JOB_RETRY_WAIT")
    # Scheduler ticks per autopilot, cron syntax (a 6th field is seconds), JSON object:
    # {"maintenance": "0 * * * *"}; an autopilot not named keeps its own default.
    # NoDecode: an empty value (as in .env.example) means "defaults", not a JSON error.
    schedules: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict,
                                                           alias="AUTOPILOT_SCHEDULES")
    # Encrypt checkpoints at rest with LangGraph's EncryptedSerializer (AES key, 16/24/32 bytes).
    aes_key: str = Field(default="", alias="LANGGRAPH_AES_KEY", repr=False)

    @field_validator("schedules", mode="before")
    @classmethod
    def _schedules_json(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except ValueError:
                raise ValueError("AUTOPILOT_SCHEDULES must be a JSON object of autopilot -> "
                                 'cron, e.g. {"maintenance": "0 * * * *"}') from None
        return value

    @field_validator("schedules")
    @classmethod
    def _valid_crons(cls, value: dict[str, str]) -> dict[str, str]:
        from croniter import croniter

        for graph, cron in value.items():
            if not croniter.is_valid(cron):
                raise ValueError(f"AUTOPILOT_SCHEDULES[{graph!r}]: {cron!r} is not a cron "
                                 "expression")
        return value

    @field_validator("autonomy_enabled_env", "policy_time", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value and not value.startswith(("postgresql://", "postgres://", "sqlite://")):
            raise ValueError(
                "DATABASE_URL must start with postgresql:// (or be empty for the SQLite default)"
            )
        return value

    @property
    def autonomy_enabled(self) -> bool:
        """The environment's part of the kill switch (see `autopilot.killswitch`)."""
        if self.autonomy_enabled_env is not None:
            return self.autonomy_enabled_env
        return self.environment != "production"

    @property
    def uses_postgres(self) -> bool:
        return self.database_url.startswith(("postgresql://", "postgres://"))

    @property
    def postgres_conninfo(self) -> str:
        """The libpq URL psycopg and PostgresSaver take."""
        return self.database_url.replace("postgres://", "postgresql://", 1)

    @cached_property
    def sqlalchemy_url(self) -> str:
        if self.uses_postgres:
            return "postgresql+psycopg://" + self.postgres_conninfo.split("://", 1)[1]
        if self.database_url.startswith("sqlite://"):
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'autopilot.sqlite').resolve()}"

    @property
    def checkpoint_path(self) -> Path:
        return (self.data_dir / "checkpoints.sqlite").resolve()
