"""The fault suite's client side: submitting and waiting like a careful API client that rides
out the moments a service is away, and recording the figures for docs/reliability.md."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from relay_devkit.api_client import PublicApi

RESULTS = Path(__file__).parent / "results"


async def submit(api: PublicApi, prompt: str, *, key: str | None = None) -> str:
    """Submit like a careful client: an Idempotency-Key, and retries while the API is down or
    past the tenant's rate limit."""
    key = key or f"fault-{uuid.uuid4().hex}"
    for attempt in range(120):
        try:
            response = await api.http.post(
                "/v1/tasks",
                json={"prompt": prompt},
                headers={"Idempotency-Key": key},
            )
        except httpx.TransportError:
            response = None
        if response is not None and response.status_code == 202:
            return str(response.json()["id"])
        assert response is None or response.status_code in {409, 429, 502, 503}, response.text
        if response is not None and response.status_code == 429:  # the tenant's submit rate
            await asyncio.sleep(float(response.headers["Retry-After"]))
            continue
        await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
    raise AssertionError(f"could not submit {prompt!r}")


async def submit_many(api: PublicApi, prompts: list[str], *, at_once: int = 10) -> list[str]:
    limit = asyncio.Semaphore(at_once)

    async def one(prompt: str) -> str:
        async with limit:
            return await submit(api, prompt)

    return list(await asyncio.gather(*(one(p) for p in prompts)))


async def all_terminal(
    api: PublicApi,
    task_ids: list[str],
    *,
    within: float,
    explain: Callable[[list[str]], str] | None = None,
) -> float:
    """Poll until every task is terminal, riding out the moments a killed service is away;
    returns when (time.monotonic()). At the deadline, fail saying where the stragglers are."""
    deadline = time.monotonic() + within
    pending = set(task_ids)
    last_seen: dict[str, str] = {}
    while pending:
        for task_id in list(pending)[:50]:
            try:
                response = await api.http.get(f"/v1/tasks/{task_id}")
            except httpx.TransportError:
                break
            if response.status_code in {502, 503}:
                break
            assert response.status_code == 200, response.text
            last_seen[task_id] = response.json()["status"]
            if last_seen[task_id] in {"succeeded", "failed", "cancelled"}:
                pending.discard(task_id)
        if not pending:
            break
        if time.monotonic() > deadline:
            stragglers = {t: last_seen.get(t, "?") for t in sorted(pending)[:10]}
            details = explain(sorted(pending)) if explain else ""
            raise AssertionError(
                f"{len(pending)} tasks not terminal after {within}s: {stragglers}\n{details}"
            )
        await asyncio.sleep(0.5)
    return time.monotonic()


def record(name: str, figures: dict[str, object]) -> None:
    """Figures for docs/reliability.md, kept beside the tests (not checked in)."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
