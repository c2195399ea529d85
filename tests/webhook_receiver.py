"""A real HTTP/1.1 webhook receiver on 127.0.0.1, for the webhook tests and
bench/webhooks.py: it records every request (path, headers, body, arrival time),
answers the next planned status (200 once the plan is used up) or holds the
request (HANG) until `release` is set; `until` awaits a condition on what arrived."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

HANG = -1  # a planned status meaning: answer nothing until `release` is set


@dataclass
class Request:
    headers: dict[str, str]
    body: bytes
    path: str = "/hook"
    arrived: float = 0.0  # time.time() when its body was read


@dataclass
class Receiver:
    port: int = 0
    requests: list[Request] = field(default_factory=list)
    plan: deque[int] = field(default_factory=deque)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    keep_alive: bool = False  # True: answer many requests per connection, as most servers do
    _arrival: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def url(self) -> str:
        return self.url_for("/hook")

    def url_for(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._answer_one(reader, writer) and self.keep_alive:
                pass
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client went away (closed, or its process was killed)
        finally:
            writer.close()

    async def _answer_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = {
            k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in head[1:] if h)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        path = head[0].split(" ")[1] if " " in head[0] else ""
        self.requests.append(Request(headers, body, path, time.time()))
        async with self._arrival:
            self._arrival.notify_all()
        status = self.plan.popleft() if self.plan else 200
        if status == HANG:
            await self.release.wait()
            return False
        text = f"answer {status} " + "x" * 3000  # longer than the sender's excerpt keeps
        connection = "keep-alive" if self.keep_alive else "close"
        writer.write(
            f"HTTP/1.1 {status} Status\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(text)}\r\nConnection: {connection}\r\n\r\n{text}".encode()
        )
        await writer.drain()
        return True

    def ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.requests]

    async def until(self, condition: Callable[[list[Request]], bool], within: float) -> None:
        """Wait until `condition(self.requests)` holds (checked at each arrival)."""
        async with self._arrival:
            try:
                await asyncio.wait_for(
                    self._arrival.wait_for(lambda: condition(self.requests)), within
                )
            except TimeoutError:
                raise AssertionError(
                    f"receiver: condition not met within {within} s "
                    f"({len(self.requests)} requests arrived)"
                ) from None


@asynccontextmanager
async def serving(keep_alive: bool = False) -> AsyncIterator[Receiver]:
    """A receiver listening on a free port of 127.0.0.1 until the block ends."""
    receiver = Receiver(keep_alive=keep_alive)
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.close()
        await server.wait_closed()
