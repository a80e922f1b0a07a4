"""Every error is a JSON body: `{"error": {"code", "message", "fields": [{field, message}]}}`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException


class FieldError(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: list[FieldError] = []


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    """Raise from an endpoint: becomes `status` with a code and, if given, the field(s)."""

    def __init__(self, status: int, code: str, message: str, *, field: str | None = None,
                 fields: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.fields = fields or ([{"field": field, "message": message}] if field else [])


def not_found(kind: str, ident: str) -> ApiError:
    return ApiError(404, "not_found", f"no {kind} {ident!r}")


def _body(code: str, message: str, fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields}}


def _loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:] if parts[0] == "body" else parts
    return ".".join(parts) or "(root)"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(_body(exc.code, exc.message, exc.fields), status_code=exc.status,
                            headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [{"field": _loc(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()]
        return JSONResponse(_body("invalid_request", "the request is not valid: " + "; ".join(
            f"{f['field']}: {f['message']}" for f in fields), fields), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(_body(code, str(exc.detail), []), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        import structlog

        structlog.get_logger("api").exception("unhandled_error", error=str(exc))
        return JSONResponse(_body("internal_error", "an unexpected error occurred; it was "
                                  "logged", []), status_code=500)


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": desc} for code, desc in (
        (401, "missing or invalid API key"), (403, "the key's roles do not allow this"),
        (404, "not found (or another tenant's)"), (422, "invalid input; fields named"))}
