"""What the two web apps (`serve`, `review`) share below FastAPI: handing a body their guard middleware has
already read (and size-checked) on to the app, as if it were still arriving."""
from __future__ import annotations


def replaying(body: bytes, receive):
    """An ASGI `receive` that yields `body` once as the whole request, then defers to the real `receive`
    (which then reports the client's disconnect)."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return replay
