"""How the HTTP API answers errors, said once: each of our errors by its class's ``http_status``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from lineage.errors import LineageError
from lineage.server.limits import NOT_JSON


def install(app: FastAPI) -> None:
    """Answer our errors with their class's status and message; FastAPI's own body parse errors as ours."""

    @app.exception_handler(LineageError)
    async def lineage_error(request: Request, exc: LineageError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.http_status)  # said once, by its class

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(e.get("type") == "json_invalid" for e in exc.errors()):  # FastAPI's own parse of a body
            return JSONResponse({"detail": f"{NOT_JSON}: {exc.errors()[0].get('ctx', {}).get('error', '')}"}, 400)
        return await request_validation_exception_handler(request, exc)
