"""HTTP plumbing shared by the routes: OpenAI-style errors for every failure, and a request body size limit."""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pixiu.serve.protocol import error_body
from pixiu.serve.validation import describe

log = logging.getLogger("pixiu.serve")


class ApiError(Exception):
    """An error answered with an OpenAI-style body and the given HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status, self.type, self.param, self.code, self.headers = status, type, param, code, headers

    def response(self) -> JSONResponse:
        """The error as a JSON response."""
        body = error_body(str(self), type=self.type, param=self.param, code=self.code)
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def install_error_handlers(app: FastAPI) -> None:
    """Answer malformed requests, unknown routes and `ApiError`s with an OpenAI-style body (`ServerError` the rest)."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = describe(exc.errors()[0])
        return ApiError(400, message, param=param).response()

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return ApiError(exc.status_code, str(exc.detail), headers=dict(exc.headers or {})).response()


class ServerError:
    """Answer any exception a route lets through with an OpenAI-style 500, logged once, and keep the connection.

    An `app.exception_handler(Exception)` runs inside Starlette's ServerErrorMiddleware, which sends the 500 and
    then re-raises, so uvicorn closes the keep-alive connection the client is about to reuse. This catches first.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; on an exception, log it and answer 500, or only log when the response already started."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            if not started:  # once the status line is out, the client can only see the body end early
                response = ApiError(500, "internal server error; see the server log", type="server_error").response()
                await response(scope, receive, send)


class BodyLimit:
    """Refuse request bodies over `limit` bytes with 413, before any route reads them; paths starting with one of
    `exempt` pass unread (their route streams and bounds the body itself, as uploads of training data do)."""

    def __init__(self, app: ASGIApp, limit: int, exempt: tuple[str, ...] = ()):
        self.app = app
        self.limit = limit
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Buffer the body up to the limit, then hand the app a receive that replays it."""
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left before sending the whole body
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._too_large(send)
                return
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        """Send the 413 response."""
        message = f"the request body is larger than {self.limit} bytes"
        body = json.dumps(error_body(message, code="request_too_large")).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
