"""What every benchmark uses: the running stack and its API key, submitting and following a
task, and the processes' peak memory."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from relay_devkit.bench.procstat import rss_bytes
from relay_devkit.bench.sse import Followed, follow
from relay_ops.stack.config import SERVICES
from relay_ops.stack.process import RunningStack

MIB = 1024 * 1024
TENANT = "bench"


@dataclass
class Bench:
    """One run: the stack under test, a tenant's API key, and whether to run the short way."""

    stack: RunningStack
    key: str
    quick: bool
    tenant: str = TENANT  # the key's tenant
    profile: Path | None = None  # write py-spy profiles of the services here
    profile_format: str = "flamegraph"  # one of PROFILE_FORMATS

    @property
    def url(self) -> str:
        return self.stack.gateway_url

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def session(self, limit: int = 100, *, force_close: bool = False) -> aiohttp.ClientSession:
        """``force_close``: a connection per request, never one a finished stream left idle
        (which the server may close just as it is reused)."""
        return aiohttp.ClientSession(
            base_url=self.url,
            headers=self.headers,
            connector=aiohttp.TCPConnector(limit=limit, force_close=force_close),
        )

    def pids(self) -> dict[str, int]:
        return {name: self.stack.pid(name) for name in (*SERVICES, "moto")}


async def submit(session: aiohttp.ClientSession, prompt: str) -> tuple[str, float]:
    """Submit a task; its id and when the request started (time.time())."""
    began = time.time()
    async with session.post("/v1/tasks", json={"prompt": prompt}) as response:
        body = await response.json()
        if response.status != 202:
            raise RuntimeError(f"submit answered {response.status}: {body}")
    return str(body["id"]), began


async def run_task(
    session: aiohttp.ClientSession, prompt: str, *, within: float = 120
) -> tuple[str, float, Followed]:
    """Submit a task and follow it to its end, for up to ``within`` seconds."""
    task_id, began = await submit(session, prompt)
    return task_id, began, await follow(session, f"/v1/tasks/{task_id}/events", within=within)


@contextlib.asynccontextmanager
async def rss_peaks(bench: Bench, programs: Iterable[str]) -> AsyncIterator[dict[str, int]]:
    """Sample RSS every 0.2 s while the block runs; the dict holds each program's peak."""
    pids = {p: bench.stack.pid(p) for p in programs}
    peaks = {p: rss_bytes(pid) for p, pid in pids.items()}
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            for p, pid in pids.items():
                peaks[p] = max(peaks[p], rss_bytes(pid))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)

    sampler = asyncio.create_task(sample())
    try:
        yield peaks
    finally:
        stop.set()
        await sampler


# py-spy's output formats (--profile-format): a flame graph to look at, or the collapsed stacks
# ("frame;frame;... count" per line) to add up
PROFILE_FORMATS = {"flamegraph": "svg", "raw": "txt", "speedscope": "json"}


def _samplers(
    bench: Bench, name: str, programs: Iterable[str], seconds: float, *, client: bool
) -> list[subprocess.Popen[bytes]]:
    """py-spy sampling each program (100 Hz) for ``seconds``, writing ``<name>-<program>.<ext>``
    into ``bench.profile``. Only a thread holding the GIL is sampled: an event loop idle in
    uvloop's C code, or sampled without pausing the process (``--nonblocking``), showed the last
    Python frame it ran as if it were still running (a Redis write as 14 % of the notifier)."""
    assert bench.profile is not None
    bench.profile.mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    pids = {program: bench.stack.pid(program) for program in programs}
    if client:
        pids["client"] = os.getpid()
    extension = PROFILE_FORMATS[bench.profile_format]
    return [
        subprocess.Popen(
            [
                str(spy),
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(math.ceil(seconds)),
                "--rate",
                "100",
                "--gil",
                "--format",
                bench.profile_format,
                "--output",
                str(bench.profile / f"{name}-{program}.{extension}"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for program, pid in pids.items()
    ]


@contextlib.contextmanager
def profiled(
    bench: Bench, name: str, programs: Iterable[str], seconds: float, *, client: bool = False
) -> Iterator[None]:
    """With ``bench.profile``: py-spy samples each program for ``seconds`` from now and writes
    a profile of where its CPU went (a flame graph unless ``--profile-format`` says otherwise);
    with ``client`` the bench's own process too (``<name>-client``: the load it makes)."""
    if bench.profile is None:
        yield
        return
    samplers = _samplers(bench, name, programs, seconds, client=client)
    try:
        yield
    finally:
        for sampler in samplers:
            sampler.wait(timeout=seconds + 60)


@contextlib.asynccontextmanager
async def profiled_from(
    bench: Bench,
    begin: asyncio.Event,
    name: str,
    programs: Iterable[str],
    seconds: float,
    *,
    client: bool = False,
) -> AsyncIterator[None]:
    """``profiled``, sampling for ``seconds`` from the moment ``begin`` is set (if the block
    has not ended by then): a steady window rather than the block's start."""
    if bench.profile is None:
        yield
        return
    programs = tuple(programs)

    async def sample() -> None:
        await begin.wait()
        samplers = _samplers(bench, name, programs, seconds, client=client)
        await asyncio.to_thread(lambda: [s.wait(timeout=seconds + 60) for s in samplers])

    sampling = asyncio.create_task(sample())
    try:
        yield
    finally:
        if begin.is_set():
            await sampling
        else:
            sampling.cancel()
