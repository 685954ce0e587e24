"""The background loops' sleep: until woken or the sweep interval passes."""

from __future__ import annotations

import asyncio
import contextlib


async def sleep_until_set(event: asyncio.Event, seconds: float) -> None:
    """Return when `event` is set or `seconds` have passed.

    Not `asyncio.wait_for`: on Python 3.11 a cancellation that arrives as the event is set
    is swallowed (wait_for returns the result instead), so a loop cancelled at shutdown ran
    on and the shutdown waited for it. `asyncio.timeout` re-raises the cancellation.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
