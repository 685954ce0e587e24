"""The background loops' sleep ends on a wake-up or the interval, and never eats a cancellation
(asyncio.wait_for on Python 3.11 returned instead when both came at once: shutdown hung)."""

from __future__ import annotations

import asyncio

import pytest

from backend.app.waiting import sleep_until_set


async def test_returns_when_woken() -> None:
    event = asyncio.Event()
    sleeper = asyncio.create_task(sleep_until_set(event, 60))
    await asyncio.sleep(0)

    event.set()

    await asyncio.wait_for(sleeper, 5)


async def test_returns_when_the_interval_passes() -> None:
    await sleep_until_set(asyncio.Event(), 0.01)


async def test_a_cancellation_that_comes_with_a_wake_up_still_cancels() -> None:
    event = asyncio.Event()
    sleeper = asyncio.create_task(sleep_until_set(event, 60))
    await asyncio.sleep(0)

    event.set()
    sleeper.cancel()

    with pytest.raises(asyncio.CancelledError):
        await sleeper
