"""aiohttp's request body written in the step that sends the request, on Python 3.11 too.

aiohttp writes a request's body (with its buffered head) from a task of its own
(ClientRequest.write_bytes). From Python 3.12 it starts that task eagerly (`eager_start`):
the first step runs at once, and a small body, all of a proxied call, is on the wire
before `send` returns. Python 3.11 has no eager tasks, so there the write waits for the
event loop's next turn: one more pass of the loop (an epoll call), a task scheduled and
stepped, every request later on the wire. `install(loop)` gives a 3.11 loop a task
factory that starts that one coroutine eagerly, as 3.12 does; every other task is made as
the loop makes it. On 3.12 and later nothing is installed (aiohttp does it itself).

Only while the call is the worker's one call in progress (CALLS.in_progress, kept by the
HTTP client): then the worker has nothing else to do and the body's loop turn is pure
latency. With several calls in progress, the bodies written together in the next turn
wake the provider once for all of them: at 32 connections, eager writes cost 15% of the
requests a second (bench/README.md, session 18).
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import types
from collections.abc import Coroutine, Generator
from typing import Any

from aiohttp.client_reqrep import ClientRequest

# The body writer's code object: a task for any other coroutine is made as usual. A
# release of aiohttp without it (or that writes bodies otherwise) only loses the saving.
_BODY_WRITER = getattr(getattr(ClientRequest, "write_bytes", None), "__code__", None)


class _Calls:
    """Provider calls of this worker under way (sent, or being sent, and not yet
    answered): counted by HttpClient around each call, read by the task factory."""

    __slots__ = ("in_progress",)

    def __init__(self) -> None:
        self.in_progress = 0


CALLS = _Calls()


def install(loop: asyncio.AbstractEventLoop) -> bool:
    """On Python 3.11, where the loop has no task factory of another's: start aiohttp's
    body writer eagerly. True when installed (or already)."""
    if sys.version_info >= (3, 12) or _BODY_WRITER is None:
        return False
    current = loop.get_task_factory()
    if current is _task_factory:
        return True
    if current is not None:
        return False    # someone else's factory: theirs to keep
    loop.set_task_factory(_task_factory)
    return True


def _task_factory(loop: asyncio.AbstractEventLoop, coro: Any,
                  context: contextvars.Context | None = None) -> asyncio.Future:
    if getattr(coro, "cr_code", None) is not _BODY_WRITER or CALLS.in_progress > 1:
        return asyncio.Task(coro, loop=loop, context=context)
    return _start_eagerly(loop, coro, context)


def _start_eagerly(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any],
                   context: contextvars.Context | None) -> asyncio.Future:
    """The coroutine's first step now, in its own copy of the context as a task's would
    be: a finished future when it ran to its end (aiohttp then keeps no writer), else a
    task that resumes it where it waits."""
    if context is None:
        context = contextvars.copy_context()
    try:
        waiting_on = context.run(coro.send, None)
    except StopIteration as stop:
        done = loop.create_future()
        done.set_result(stop.value)
        return done
    except BaseException as exc:  # noqa: BLE001  the task's outcome, as a task would keep it
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        failed = loop.create_future()
        failed.set_exception(exc)
        return failed
    return asyncio.Task(_resumed(coro, waiting_on), loop=loop, context=context)


@types.coroutine
def _resumed(coro: Coroutine[Any, Any, Any], waiting_on: Any) -> Generator[Any, Any, Any]:
    """Drive `coro` from where its eager first step left it: first the future it waits
    on goes to the task, then what the task sends or throws goes into `coro`."""
    while True:
        try:
            value = yield waiting_on
        except BaseException as exc:  # cancellation included: coro decides what it means
            try:
                waiting_on = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                waiting_on = coro.send(value)
            except StopIteration as stop:
                return stop.value
