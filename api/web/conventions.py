"""HTTP conventions every answer keeps, whichever route (or none) answered it: an ASGI
wrapper around the whole application.

- HEAD is answered as GET without the body (RFC 9110 §9.3.2), on every GET route.
- ``X-Content-Type-Options: nosniff`` on every answer.
- A 200 with an ``ETag`` becomes ``304 Not Modified`` when the request's ``If-None-Match``
  names that tag (RFC 9110 §13.1.2): usage answers and the page's assets alike.
- A refused CORS preflight, which Litestar answers in plain text, is a problem like every
  other error (RFC 9457).
"""

import msgspec
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api.web.problems import PROBLEM_JSON, problem

_NOSNIFF = (b"x-content-type-options", b"nosniff")
# Headers a 304 keeps (RFC 9110 §15.4.5): the rest describe a body it does not have.
_KEPT_BY_304 = {b"etag", b"cache-control", b"vary", b"expires", b"content-location", b"date"}


def http_conventions(app: ASGIApp) -> ASGIApp:
    async def conventions(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        is_head = scope["method"] == "HEAD"
        if is_head:
            scope["method"] = "GET"
        wanted_tags = _if_none_match(scope)
        body_dropped = is_head
        preflight_refusal: Message | None = None

        async def send_conventionally(message: Message) -> None:
            nonlocal body_dropped, preflight_refusal
            if preflight_refusal is not None:
                # The refusal's text, as the detail of a problem.
                detail = message.get("body", b"").decode("utf-8", "replace")
                body = msgspec.json.encode(problem(400, detail or "CORS preflight refused"))
                headers = [
                    (n, v)
                    for n, v in preflight_refusal["headers"]
                    if n.lower() not in (b"content-type", b"content-length")
                ]
                headers += [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                ]
                await send({**preflight_refusal, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != _NOSNIFF[0]
                ]
                headers.append(_NOSNIFF)
                if message["status"] == 200 and _matches(headers, wanted_tags):
                    body_dropped = True
                    message = {**message, "status": 304}
                    headers = [(n, v) for n, v in headers if n.lower() in _KEPT_BY_304]
                    headers.append(_NOSNIFF)
                message = {**message, "headers": headers}
                if _is_preflight(scope) and message["status"] == 400:
                    preflight_refusal = message
                    return
            elif message["type"] == "http.response.body" and body_dropped:
                message = {**message, "body": b""}
            await send(message)

        await app(scope, receive, send_conventionally)

    return conventions


def _if_none_match(scope: Scope) -> set[bytes]:
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            return {_opaque(tag) for tag in value.split(b",") if tag.strip()}
    return set()


def _opaque(tag: bytes) -> bytes:
    """A tag without its weakness: If-None-Match compares weakly."""
    return tag.strip().removeprefix(b"W/")


def _matches(headers: list[tuple[bytes, bytes]], wanted: set[bytes]) -> bool:
    if not wanted:
        return False
    if b"*" in wanted:
        return True
    return any(name.lower() == b"etag" and _opaque(value) in wanted for name, value in headers)


def _is_preflight(scope: Scope) -> bool:
    return scope["method"] == "OPTIONS" and any(
        name == b"access-control-request-method" for name, _ in scope["headers"]
    )
