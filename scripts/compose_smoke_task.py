"""One task through the public API of the compose stack (scripts/compose-smoke), as a client.

    python scripts/compose_smoke_task.py GATEWAY_URL API_KEY OUT_DIR

Submits a task with the offline scripted model, follows its events over SSE to the terminal one
(which must be task.succeeded), waits for its artifact and downloads it through the gateway (its
302 to the presigned URL), checking size and sha256. Exit 0 on success; the failing step on
stderr otherwise. Uses relay_ops' demo client: only the public API.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import httpx

from relay_ops.demo.client import DemoFailure, PublicApi

PROMPT = "Write a short report about Relay.\n/steps 3\n/sleep 1\n/artifact report.md"
ARTIFACT = "report.md"
DEADLINE_SECONDS = 180.0


async def run(gateway: str, key: str, out: Path) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=gateway, headers=headers, timeout=30.0) as http:
        api = PublicApi(http)
        started = time.monotonic()
        task = await api.submit(PROMPT)
        task_id = str(task["id"])
        print(f"task {task_id} submitted", flush=True)
        types = []
        async for event in api.timeline(task_id):
            types.append(str(event.get("type")))
        print(f"events: {' '.join(types)}", flush=True)
        if types[-1] != "task.succeeded":
            raise DemoFailure("follow the timeline", f"the terminal event is {types[-1]}")
        while True:
            items = {str(item["name"]): item for item in await api.artifacts(task_id)}
            if ARTIFACT in items:
                break
            if time.monotonic() - started > DEADLINE_SECONDS:
                raise DemoFailure("wait for the artifact", f"{ARTIFACT} never listed")
            await asyncio.sleep(0.5)
        saved = await api.download(items[ARTIFACT], out / task_id)
        print(
            f"artifact {ARTIFACT}: {saved.stat().st_size} bytes, sha256 checked, saved to {saved}"
            f" ({time.monotonic() - started:.1f} s after submission)",
            flush=True,
        )
        print(f"TASK_ID={task_id}", flush=True)


def main() -> int:
    gateway, key, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    try:
        asyncio.run(asyncio.wait_for(run(gateway, key, out), DEADLINE_SECONDS))
    except DemoFailure as exc:
        print(f"compose smoke task FAILED at '{exc.step}': {exc.detail}", file=sys.stderr)
        return 1
    except TimeoutError:
        print(f"compose smoke task FAILED: not done in {DEADLINE_SECONDS:.0f} s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
