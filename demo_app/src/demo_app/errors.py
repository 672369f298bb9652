"""One error shape for every role: each 4xx of ours and FastAPI's request validation
errors answer {"error": "<message>", "details": [{"field", "message"}]} (ErrorBody),
declared in the OpenAPI schema so generated tests can check it; and JsonInt, an integer
field as that schema says ("type": "integer")."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator
from starlette.exceptions import HTTPException as StarletteHTTPException


def _json_integer(value: object) -> object:
    """JSON Schema's integer: 3 and 3.0 are, "3", 3.5 and true are not."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be an integer")
        return int(value)
    return value


# An integer field as its OpenAPI schema ("type": "integer") says.
JsonInt = Annotated[int, BeforeValidator(_json_integer)]


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorBody(BaseModel):
    error: str
    details: list[ErrorDetail] | None = None


def error_response(status: int, message: str, details: list[dict] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if details:
        body["details"] = details
    return JSONResponse(body, status_code=status, headers=headers)


def validation_details(errors: list[dict]) -> list[dict]:
    """Pydantic errors as [{"field": "body.quantity", "message": ...}]."""
    return [{"field": ".".join(str(p) for p in e.get("loc", ())) or "body", "message": e.get("msg", "")}
            for e in errors]


def install_error_handlers(app: FastAPI) -> None:
    """Request validation errors (path, query, body models) become a 400 in our shape;
    Starlette's own 404/405 get the same shape."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        details = validation_details(exc.errors())
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
        return error_response(400, f"invalid request: {summary}", details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            # Starlette names only the first route of the path; a path served by several
            # routes (GET, POST and DELETE /admin/faults) allows all of their methods.
            methods = {m for r in request.app.router.routes
                       if getattr(r, "methods", None) and r.path_regex.match(request.url.path)
                       for m in r.methods}
            headers["Allow"] = ", ".join(sorted(methods))
        return error_response(exc.status_code, str(exc.detail), headers=headers or None)
