"""BackgroundTasks: the one helper behind the cache's stores and the rate limiter's
settles — never raises into the request, logs failures, and drain() waits for all."""

from __future__ import annotations

import asyncio
import logging

from heliograph.proxy.background import BackgroundTasks

log = logging.getLogger("test.background")


def test_failures_are_logged_not_raised_and_others_finish(caplog):
    done: list[str] = []

    async def fails() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("store down")

    async def works() -> None:
        await asyncio.sleep(0.01)
        done.append("works")

    async def main() -> int:
        tasks = BackgroundTasks(log)
        tasks.start(fails(), "storing a thing")
        tasks.start(works(), "settling")
        in_flight = len(tasks)
        await tasks.drain()
        assert len(tasks) == 0
        return in_flight

    with caplog.at_level(logging.ERROR, logger="test.background"):
        assert asyncio.run(main()) == 2
    assert done == ["works"]
    assert "storing a thing failed" in caplog.text and "store down" in caplog.text
    assert "settling failed" not in caplog.text


def test_drain_waits_for_tasks_started_while_draining():
    done: list[int] = []

    async def main() -> None:
        tasks = BackgroundTasks(log)

        async def second() -> None:
            await asyncio.sleep(0.01)
            done.append(2)

        async def first() -> None:
            await asyncio.sleep(0.01)
            done.append(1)
            tasks.start(second(), "second")

        tasks.start(first(), "first")
        await tasks.drain()

    asyncio.run(main())
    assert done == [1, 2]


def test_tasks_are_kept_alive_until_done():
    # The loop holds tasks weakly: the helper must hold them, or a collected task would
    # vanish mid-flight.
    import gc
    done: list[bool] = []

    async def slow() -> None:
        await asyncio.sleep(0.02)
        done.append(True)

    async def main() -> None:
        tasks = BackgroundTasks(log)
        tasks.start(slow(), "slow")
        gc.collect()
        await asyncio.sleep(0.05)
        assert len(tasks) == 0

    asyncio.run(main())
    assert done == [True]
