"""Request body size limit (413) as ASGI middleware: checked on Content-Length before the body is read,
and counted while it streams (chunked uploads), so an oversized upload never fills the disk."""

from __future__ import annotations

import json

SLACK = 64 * 1024  # multipart headers and boundaries around the file


class UploadLimit:
    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT"):
            return await self.app(scope, receive, send)
        limit = self.max_bytes + SLACK
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return await self._reject(send)
        seen, exceeded, rejected = 0, False, False

        async def counted_receive():
            nonlocal seen, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:  # stop reading: the app sees a client that went away
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            nonlocal rejected
            if not exceeded:
                return await send(message)
            if not rejected:  # whatever the app answers to the cut-off body, the client gets 413
                rejected = True
                await self._reject(send)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not rejected:
            await self._reject(send)

    async def _reject(self, send) -> None:
        mb = round(self.max_bytes / (1024 * 1024), 3)
        body = json.dumps({"detail": f"the upload is larger than the limit of {mb:g} MB (dfm gui --max-upload-mb)"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
