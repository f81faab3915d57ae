"""The demo, start to end: stack up in the background, an API key for tenant "demo", one sample
task submitted and watched live, its artifacts downloaded and verified, the stack stopped."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from rich.console import Console
from rich.live import Live
from rich.text import Text

from relay_ops.demo.client import DemoFailure, PublicApi
from relay_ops.demo.view import TimelineView, size
from relay_ops.stack.config import StackConfig
from relay_ops.stack.environment import console_link
from relay_ops.stack.errors import StackError
from relay_ops.stack.local import LocalStack
from relay_ops.stack.report import show_failure

TENANT = "demo"


@dataclass(frozen=True)
class SampleTask:
    """A prompt for the scripted model, and what it is expected to produce."""

    prompt: str
    steps: int
    artifacts: tuple[str, ...]


SAMPLE = SampleTask(
    prompt="Write a short report about Relay.\n/steps 3\n/sleep 0.4\n/artifact report.md",
    steps=3,
    artifacts=("report.md",),
)

# Whose logs explain a failed step (the first word of the step names it).
STEP_SERVICES: dict[str, tuple[str, ...]] = {
    "create": ("gateway",),
    "submit": ("gateway", "tasks"),
    "read": ("gateway", "tasks"),
    "follow": ("notifier", "agent", "tasks", "gateway"),
    "run": ("agent", "tasks"),
    "list": ("artifacts", "agent", "gateway"),
    "wait": ("artifacts", "agent"),
    "download": ("gateway", "artifacts"),
}


def services_for(step: str) -> tuple[str, ...]:
    return STEP_SERVICES.get(step.split(" ", 1)[0], ("gateway",))


@dataclass(frozen=True)
class DemoResult:
    task_id: str
    saved: tuple[Path, ...]
    elapsed: float


async def create_api_key(env: Mapping[str, str], tenant: str = TENANT) -> str:
    """A key from the gateway's admin command, run the way an operator would run it."""
    step = "create an API key"
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "relay_ops", "admin", "create-key", "--tenant", tenant),
        env=dict(env),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    except TimeoutError:
        process.kill()
        raise DemoFailure(step, "`relay admin create-key` did not finish within 60s") from None
    key = out.decode().strip()
    if process.returncode != 0 or not key:
        detail = err.decode().strip()[-1500:] or f"exit code {process.returncode}, no key printed"
        raise DemoFailure(step, detail)
    return key


async def run_sample(
    api: PublicApi,
    console: Console,
    *,
    output_dir: Path,
    time_limit: float,
    sample: SampleTask = SAMPLE,
) -> DemoResult:
    step = "submit the task"
    started = time.monotonic()
    try:
        async with asyncio.timeout(time_limit):
            task = await api.submit(sample.prompt)
            task_id = str(task["id"])
            step = "follow the timeline"
            view = TimelineView(task_id, expected_steps=sample.steps)
            with Live(view, console=console, refresh_per_second=8):
                async for event in api.timeline(task_id):
                    view.add(event)
            if not console.is_terminal:  # Live ends its last frame without a newline there
                console.line()
            if view.outcome != "task.succeeded":
                step = "run the task"
                final = await api.task(task_id)
                raise DemoFailure(step, f"it ended {final['status']}: {final.get('error')}")
            step = "wait for the artifacts"
            artifacts = await _published(api, task_id, sample.artifacts)
            saved = []
            for artifact in artifacts:
                step = f"download {artifact['name']}"
                saved.append(await api.download(artifact, output_dir / task_id))
    except TimeoutError:
        raise DemoFailure(step, f"not done within {time_limit:g}s") from None
    except httpx.HTTPError as exc:
        raise DemoFailure(step, repr(exc)) from exc
    return DemoResult(task_id, tuple(saved), time.monotonic() - started)


async def _published(
    api: PublicApi, task_id: str, names: tuple[str, ...]
) -> list[dict[str, object]]:
    """The expected artifacts, once all are listed: publishing may trail the terminal event."""
    while True:
        items = {str(item["name"]): item for item in await api.artifacts(task_id)}
        if all(name in items for name in names):
            return [items[name] for name in names]
        await asyncio.sleep(0.5)


async def run_demo(
    config: StackConfig, console: Console, *, output_dir: Path, time_limit: float
) -> int:
    """The whole demo; the exit code. The stack always stops, whatever happened."""
    stack = LocalStack(config)
    try:
        with console.status(f"Starting the local stack (logs in {config.log_dir}) …"):
            await stack.start()
    except StackError as exc:
        show_failure(console, f"the stack did not start: {exc}", stack, exc.services)
        return 1
    console.print(f"Relay is up: {stack.gateway_url} (logs in {config.log_dir})")
    for store in (stack.database, stack.redis):
        if store is not None and store.throwaway:
            console.print(f"  using a {store.summary}")
    try:
        key = await create_api_key(stack.service_environment("gateway"))
        console.print(f"Created an API key for tenant {TENANT!r}.")
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(
            base_url=stack.gateway_url, headers=headers, timeout=30
        ) as http:
            result = await run_sample(
                PublicApi(http), console, output_dir=output_dir, time_limit=time_limit
            )
    except DemoFailure as failure:
        show_failure(console, f"demo failed at: {failure}", stack, services_for(failure.step))
        return 1
    finally:
        with console.status("Stopping the stack …"):
            await stack.stop()
        console.print("Stack stopped.")
    for path in result.saved:
        console.print(
            Text.assemble(
                ("✓ ", "bold green"),
                f"task {result.task_id} done in {result.elapsed:.1f}s; ",
                f"{path.name} ({size(path.stat().st_size)}) saved to ",
                (str(path), "bold"),
            ),
            soft_wrap=True,
        )
    console.print(f"Its trace, through all five services: .venv/bin/relay trace {result.task_id}")
    console.print(f"The web console: `make up`, then open {console_link(config)}")
    return 0
