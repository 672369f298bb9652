"""RequestLimits (pure ASGI middleware) refuses, before the app sees a request:
- a body above max_body_bytes: 413 from Content-Length before reading, or while the body
  streams in (chunked uploads have no Content-Length);
- a POST/PUT/PATCH whose Content-Type is not application/json: 415. This also keeps web
  pages in the user's browser out: they can only send "simple" cross-site requests
  (form or text/plain bodies), never application/json without a CORS preflight;
- JSON that is not UTF-8 (a charset parameter, or a UTF-16/32 body, which Python's json
  would decode by itself): 415. JSON is UTF-8 (RFC 8259), and only in UTF-8 can the depth
  scan below see every bracket;
- JSON nested deeper than max_json_depth: 400 (deep nesting makes json parsers recurse
  until they fail; the depth is counted by a scan, before any parser runs).

A refused body is read to its end (discarded, up to DRAIN_MAX_BYTES) before the answer, so
the client gets the readable JSON error instead of a connection reset.
"""

from __future__ import annotations

import json

from starlette.routing import Match

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# How much of a refused body is read and thrown away so that the answer reaches the client
# (closing a socket with unread data resets the connection); a larger one is cut off.
DRAIN_MAX_BYTES = 64 * 1024 * 1024


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """True when JSON `body` nests arrays/objects deeper than `limit` (brackets inside
    strings do not count). Linear, no recursion, stops at the first excess."""
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


class RequestLimits:
    """Pure ASGI middleware enforcing the limits above on requests that a route takes
    (others go on to the app, which answers 404 or 405); `on_reject(reason)` is called
    for every refused request (a metric in the alert sink)."""

    def __init__(self, app, router, max_body_bytes: int, max_json_depth: int, on_reject=None):
        self.app = app
        self.routes = router.routes
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth
        self.on_reject = on_reject

    def _routed(self, scope) -> bool:
        return any(route.matches(scope)[0] == Match.FULL for route in self.routes)

    async def _refuse(self, send, status: int, reason: str, message: str) -> None:
        if self.on_reject is not None:
            self.on_reject(reason)
        body = json.dumps({"error": message}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def _drain(self, receive, seen: int) -> None:
        """Reads what is left of a refused body, keeping none of it."""
        while seen <= DRAIN_MAX_BYTES:
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                return
            seen += len(message.get("body", b""))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS or not self._routed(scope):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or ())
        media_type, _, params = headers.get(b"content-type", b"").partition(b";")
        charset = dict((k.strip().lower(), v.strip().strip(b'"').lower()) for k, _, v in
                       (p.partition(b"=") for p in params.split(b";")) if k.strip()).get(b"charset", b"utf-8")
        if media_type.strip().lower() != b"application/json":
            await self._drain(receive, 0)
            return await self._refuse(send, 415, "unsupported_media_type",
                                      "Content-Type must be application/json")
        if charset not in (b"utf-8", b"utf8"):
            await self._drain(receive, 0)
            return await self._refuse(send, 415, "unsupported_media_type", "JSON must be UTF-8")
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                return await self._refuse(send, 400, "bad_request", "Content-Length is not a number")
            if declared > self.max_body_bytes:
                await self._drain(receive, 0)
                return await self._refuse(send, 413, "too_large",
                                          f"body of {declared} bytes exceeds the {self.max_body_bytes}-byte limit")
        # Read the body here, bounded, then hand it to the app in one message.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                if message.get("more_body", False):
                    await self._drain(receive, size)
                return await self._refuse(send, 413, "too_large",
                                          f"body exceeds the {self.max_body_bytes}-byte limit")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body and json.detect_encoding(body) not in ("utf-8", "utf-8-sig"):
            return await self._refuse(send, 415, "unsupported_media_type", "JSON must be UTF-8")
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            return await self._refuse(send, 400, "bad_request", f"body is not valid UTF-8 (byte {exc.start})")
        if json_depth_exceeds(body, self.max_json_depth):
            return await self._refuse(send, 400, "too_deep",
                                      f"JSON nested deeper than {self.max_json_depth} levels")
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
