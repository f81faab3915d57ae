"""7. The serverless edge: the gateway's Lambda entry point (gateway/lambda_http.py) beside the
ECS gateway, in the same run. A fresh Python process plays one Lambda execution environment:
its cold start (imports, the app, its start-up: secrets from moto, the PostgreSQL pool, the
migration check) and then warm invocations of the same request the ECS gateway answers over
HTTP keep-alive. API Gateway's own latency and Lambda's sandbox start are not on this machine
and are not counted."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from typing import Any

import httpx

from relay_devkit.bench.common import Bench
from relay_devkit.bench.report import Section, ms, table
from relay_devkit.bench.stats import Latency, ratio

REQUESTS = 300
QUICK_REQUESTS = 100

# Run in the child process: one execution environment, timed from before the first import.
PROBE = """
import json, sys, time
began = time.perf_counter()
from gateway.lambda_http import LambdaGateway
from relay_devkit.apigateway import LambdaHttpClient
imported = time.perf_counter() - began
handler = LambdaGateway(ready_timeout=60)
client = LambdaHttpClient(handler, sys.argv[1])
path, count = sys.argv[2], int(sys.argv[3])
first = time.perf_counter()
status = client.request("GET", path).status
first = time.perf_counter() - first
warm, cpu = [], time.process_time()
for _ in range(count):
    t = time.perf_counter()
    if client.request("GET", path).status != 200:
        raise SystemExit("a warm request failed")
    warm.append(time.perf_counter() - t)
cpu = time.process_time() - cpu
handler.close()
print(json.dumps({"status": status, "imports": imported, "start": handler.cold_start_seconds,
                  "first": first, "warm": warm, "cpu_per_request": cpu / count}))
"""


def _probe(bench: Bench, path: str, count: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, bench.key, path, str(count)],
        env=bench.stack.gateway_lambda_environment() | {"RELAY_LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the Lambda probe failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _ecs(bench: Bench, path: str, count: int) -> list[float]:
    seconds = []
    with httpx.Client(base_url=bench.url, headers=bench.headers, timeout=30) as client:
        client.get(path).raise_for_status()  # the connection is open: keep-alive, as a client
        for _ in range(count):
            began = time.perf_counter()
            client.get(path).raise_for_status()
            seconds.append(time.perf_counter() - began)
    return seconds


async def serverless_edge(bench: Bench) -> Section:
    count = QUICK_REQUESTS if bench.quick else REQUESTS
    async with httpx.AsyncClient(base_url=bench.url, headers=bench.headers) as client:
        created = await client.post("/v1/tasks", json={"prompt": "/steps 1"})
        created.raise_for_status()
    path = f"/v1/tasks/{created.json()['id']}"
    probe = await asyncio.to_thread(_probe, bench, path, count)
    ecs = Latency.of(await asyncio.to_thread(_ecs, bench, path, count))
    warm = Latency.of(probe["warm"])
    cold = probe["imports"] + probe["start"] + probe["first"]
    return Section(
        title="The serverless edge: the gateway as a Lambda function",
        method=f"`GET {path.rsplit('/', 1)[0]}/{{id}}` (auth, a call to tasks), {count} times: "
        "through the Lambda entry point (API Gateway HTTP API events, payload 2.0, in a fresh "
        "process playing one execution environment, signing key read from moto's Secrets "
        "Manager) beside the ECS gateway over HTTP keep-alive. API Gateway's own latency and "
        "Lambda's sandbox start are not on this machine and not counted.",
        body=[
            table(
                ["cold start", "ms"],
                [
                    ["imports (FastAPI, the gateway, Mangum)", ms(probe["imports"])],
                    ["app start-up (secrets, pool, migration check)", ms(probe["start"])],
                    ["first request", ms(probe["first"])],
                    ["total, before the first answer", ms(cold)],
                ],
            ),
            table(
                ["warm request", "p50 ms", "p99 ms", "vs ECS p50"],
                [
                    ["ECS gateway (HTTP)", ms(ecs.p50), ms(ecs.p99), 1.0],
                    [
                        "Lambda entry point (in-process)",
                        ms(warm.p50),
                        ms(warm.p99),
                        ratio(warm.p50, ecs.p50),
                    ],
                    ["Lambda CPU per request", ms(probe["cpu_per_request"]), None, None],
                ],
            ),
        ],
        reading="A warm invocation costs what the app costs (Mangum's translation is small); "
        "the cold start is dominated by imports and opening the database pool, paid once per "
        "execution environment. Provisioned concurrency removes it where it matters.",
    )
