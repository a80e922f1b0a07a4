"""Human-in-the-loop request and decision shapes, following LangChain v1's HITL middleware.

Request: `action_requests` [{name, args, description}] + `review_configs`
[{action_name, allowed_decisions, args_schema}], plus our context pack.
Response: `{"decisions": [{"type": "approve"} | {"type": "edit", "edited_action": {name, args}}
| {"type": "reject", "message": ...}]}`, one decision per action request, in order.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

DecisionType = Literal["approve", "edit", "reject"]


class ActionRequest(BaseModel):
    name: str
    args: dict[str, Any]
    description: str


class ReviewConfig(BaseModel):
    action_name: str
    allowed_decisions: list[DecisionType]
    args_schema: dict[str, Any] | None = None


class ApproveDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["approve"]


class EditedAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    args: dict[str, Any]


class EditDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["edit"]
    edited_action: EditedAction


class RejectDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["reject"]
    message: str = Field(min_length=1, description="why; fed back to the autopilot's authors")


Decision = Annotated[ApproveDecision | EditDecision | RejectDecision, Field(discriminator="type")]


class HITLResponse(BaseModel):
    """The resume value of an approval interrupt."""

    model_config = ConfigDict(extra="forbid")
    decisions: list[Decision] = Field(min_length=1)
    reviewer: str | None = Field(default=None, description="set by the runtime, not the client")
    approval_id: str | None = Field(default=None, description="set by the runtime")


class HITLRequest(BaseModel):
    """The interrupt value: LangChain v1 fields plus the context a reviewer needs."""

    action_requests: list[ActionRequest]
    review_configs: list[ReviewConfig]
    action_ids: list[str]
    summary: str
    severity: Literal["LOW", "MEDIUM", "HIGH", "CRITICAL"]
    risk: str
    policy: list[dict[str, Any]]
    evidence_refs: list[str]
    reasoning: list[str]
    rollback_plans: list[str]
    also_runs_on_approval: list[dict[str, Any]]
    round: int
