"""Long-lived responses (job events, streamed answers) within a budget, off the request threads.

A stream waits most of its life: for a job to change, or for a language model's next piece. Run as
a plain iterator, each wait would hold one of the threads that serve every ordinary request, and a
few dozen open streams from one key would stall searches for everybody. So a stream here

- needs a slot: at most ``per_key`` open at once for one key and ``total`` for the service; beyond
  either, `RateLimited` (429 with ``Retry-After``) before any work is done;
- waits in a thread of its own pool (``total`` threads, one per slot), never in the request pool;
- keeps its slot until its thread is free again: a client that disconnects while the thread waits
  does not get the slot back before the wait ends, so the pool can never run out of threads.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncGenerator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from cairn.auth import Principal
from cairn.errors import RateLimited

__all__ = ["StreamBudget", "StreamSlot"]

# Seconds a refused client is told to wait: streams end when their job or answer does, not on a clock.
_RETRY_AFTER_S = 5.0
_END = object()


class StreamBudget:
    """Slots for open streams, per key and in all, and the threads their waits run in."""

    def __init__(self, *, per_key: int, total: int) -> None:
        if per_key < 1 or total < 1:
            raise ValueError(f"stream limits must be at least 1 (per key {per_key}, total {total})")
        self.per_key = per_key
        self.total = total
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()
        self._threads = ThreadPoolExecutor(max_workers=total, thread_name_prefix="cairn-stream")

    def reserve(self, principal: Principal | None) -> StreamSlot:
        """A slot for one stream of *principal*'s key; `RateLimited` when its key or the service is at the cap."""
        key = principal.key_id if principal is not None else "local"
        with self._lock:
            mine = self._open.get(key, 0)
            if mine >= self.per_key:
                raise RateLimited(
                    f"this key already has {mine} open streams (the limit is {self.per_key}); close one and retry",
                    retry_after=_RETRY_AFTER_S,
                )
            if sum(self._open.values()) >= self.total:
                raise RateLimited(
                    f"the service has {self.total} open streams, its limit; retry shortly", retry_after=_RETRY_AFTER_S
                )
            self._open[key] = mine + 1
        return StreamSlot(self, key)

    def open_streams(self, principal: Principal | None = None) -> int:
        """Streams open now: of *principal*'s key, or in all."""
        with self._lock:
            if principal is None:
                return sum(self._open.values())
            return self._open.get(principal.key_id, 0)

    def _release(self, key: str) -> None:
        with self._lock:
            left = self._open.get(key, 0) - 1
            if left > 0:
                self._open[key] = left
            else:
                self._open.pop(key, None)

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)


class StreamSlot:
    """One reserved stream. Use as a context manager around the work that prepares the stream: leaving
    the block without `respond` (an exception, or an answer that is not a stream) gives the slot back."""

    def __init__(self, budget: StreamBudget, key: str) -> None:
        self._budget = budget
        self._key = key
        self._released = False
        self._responded = False
        self._pumping = False
        self._lock = threading.Lock()

    def __enter__(self) -> StreamSlot:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if not self._responded:
            self.release()

    def release(self) -> None:
        """Give the slot back (once; later calls do nothing)."""
        with self._lock:
            if self._released:
                return
            self._released = True
        self._budget._release(self._key)

    def respond(self, events: Iterator[str], *, media_type: str = "text/event-stream") -> StreamingResponse:
        """A response streaming *events*, each pulled in the budget's threads; the slot goes back when it ends."""
        self._responded = True
        response = _SlotResponse(self._pump(events), media_type=media_type, slot=self)
        # A response that is dropped unsent (the client left first) still gives its slot back.
        weakref.finalize(response, self.release_unstarted)
        return response

    def release_unstarted(self) -> None:
        """Give the slot back if the stream never started (once started, its end gives the slot back)."""
        if not self._pumping:
            self.release()

    async def _pump(self, events: Iterator[str]) -> AsyncGenerator[str, None]:
        self._pumping = True
        waiting: Future[object] | None = None
        try:
            while True:
                waiting = self._budget._threads.submit(next, events, _END)
                item = await asyncio.wrap_future(waiting)
                waiting = None
                if item is _END:
                    return
                assert isinstance(item, str)
                yield item
        finally:
            if waiting is not None and not waiting.done():
                # Cancelled (the client left) while a thread waits for the next event: the iterator is
                # closed and the slot given back when that wait ends, so threads never run short.
                waiting.add_done_callback(lambda _: self._finish(events))
            else:
                self._finish(events)

    def _finish(self, events: Iterator[str]) -> None:
        try:
            close = getattr(events, "close", None)
            if close is not None:
                close()
        finally:
            self.release()


class _SlotResponse(StreamingResponse):
    """A streaming response that ends its stream, and so gives its slot back, however sending ends."""

    def __init__(self, content: AsyncGenerator[str, None], *, media_type: str, slot: StreamSlot) -> None:
        super().__init__(content, media_type=media_type)
        self._events = content
        self._slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._events.aclose()  # runs the pump's cleanup if sending stopped at one of its events
            self._slot.release_unstarted()
