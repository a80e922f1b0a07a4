"""Typed tool layer: the only way graph nodes reach a domain system."""

from tools.registry import (
    CostClass,
    PermanentToolError,
    RiskClass,
    ToolArgumentError,
    ToolContext,
    ToolError,
    ToolKind,
    ToolRegistry,
    ToolSpec,
    TransientToolError,
    UnauthorizedWriteError,
    UnknownToolError,
)

__all__ = [
    "CostClass",
    "PermanentToolError",
    "RiskClass",
    "ToolArgumentError",
    "ToolContext",
    "ToolError",
    "ToolKind",
    "ToolRegistry",
    "ToolSpec",
    "TransientToolError",
    "UnauthorizedWriteError",
    "UnknownToolError",
]
