"""background(): loops stop one at a time in the order given, each once the one before has
drained; the tails of their stops (a consumer handing back its abandoned long poll) overlap."""

from __future__ import annotations

import asyncio

from relay_shared.loops import background


class Draining:
    """A loop like a consumer: stopping drains at once (or when ``drain`` is set), then a tail
    runs until ``tail`` is set."""

    def __init__(self, name: str, stops: list[str]) -> None:
        self.name = name
        self.drain = asyncio.Event()
        self.tail = asyncio.Event()
        self._stops = stops
        self.stopping = asyncio.Event()
        self._drained = asyncio.Event()

    def stop(self) -> None:
        self._stops.append(self.name)
        self.stopping.set()

    async def drained(self) -> None:
        await self._drained.wait()

    async def run(self) -> None:
        await self.stopping.wait()
        await self.drain.wait()
        self._drained.set()
        await self.tail.wait()


class Plain:
    """A loop without a separate drain: its run returning is its drain."""

    def __init__(self, stops: list[str]) -> None:
        self._stops = stops
        self.stopping = asyncio.Event()

    def stop(self) -> None:
        self._stops.append("plain")
        self.stopping.set()

    async def run(self) -> None:
        await self.stopping.wait()


async def test_the_next_loop_stops_once_the_one_before_drained_not_once_its_tail_ended() -> None:
    stops: list[str] = []
    first, second, last = Draining("first", stops), Draining("second", stops), Plain(stops)
    first.drain.set()
    second.drain.set()

    async def leave() -> None:
        async with background([first, second, last], grace_seconds=5):
            await asyncio.sleep(0)

    leaving = asyncio.create_task(leave())
    # with the tails one after another, "second" would never be stopped
    await asyncio.wait_for(last.stopping.wait(), timeout=5)
    assert stops == ["first", "second", "plain"]
    assert not leaving.done()  # both tails still run: the exit waits for them
    first.tail.set()
    second.tail.set()
    await asyncio.wait_for(leaving, timeout=5)


async def test_a_loop_is_not_stopped_before_the_one_before_it_drained() -> None:
    stops: list[str] = []
    first, second = Draining("first", stops), Draining("second", stops)
    second.drain.set()
    second.tail.set()

    async def leave() -> None:
        async with background([first, second], grace_seconds=5):
            await asyncio.sleep(0)

    leaving = asyncio.create_task(leave())
    await asyncio.sleep(0.2)
    assert stops == ["first"]  # "first" still holds work
    first.drain.set()
    await asyncio.wait_for(second.stopping.wait(), timeout=5)
    assert stops == ["first", "second"]
    first.tail.set()
    await asyncio.wait_for(leaving, timeout=5)
