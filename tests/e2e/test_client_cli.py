"""The command-line client (`relay-client`, clients/python) run as a user runs it: a real process
against the session's `relay up`, its output and exit code read back."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import stat
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from relay_ops.stack.process import RunningStack

pytestmark = pytest.mark.e2e

# installed beside this Python (the project's environment; `pip install './clients/python[cli]'`)
CLI = str(Path(sys.executable).with_name("relay-client"))


def run(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def env(stack: RunningStack, api_key: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "RELAY_URL": stack.gateway_url,
        "RELAY_API_KEY": api_key,
        "RELAY_PROFILE_FILE": str(tmp_path / "profiles.json"),
        "COLUMNS": "200",
    }


def test_submit_follow_download_shows_progress_and_exits_0_with_the_files(
    env: dict[str, str], stack: RunningStack, api_key: str, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    done = run(
        "tasks", "submit", "A report from the shell.\n/steps 3\n/artifact report.md",
        "--metadata", "source=cli", "--follow", "--download", str(out_dir), env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Submitted ")
    task_id = lines[0].split()[1]
    shown = [line.split()[1] for line in lines if line.strip().startswith("#")]
    assert shown[0] == "task.submitted"
    assert shown[-1] == "task.succeeded"
    assert shown.count("task.progressed") >= 3
    assert lines[-1] == "succeeded"

    (artifact,) = httpx.get(
        f"{stack.gateway_url}/v1/tasks/{task_id}/artifacts",
        headers={"Authorization": f"Bearer {api_key}"},
    ).json()["items"]
    saved = out_dir / "report.md"
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == artifact["sha256"]


def test_a_task_that_fails_exits_1_and_says_why(env: dict[str, str]) -> None:
    done = run("tasks", "submit", "Doomed.\n/fail the disk is full", "--follow", env=env)
    assert done.returncode == 1
    assert "failed: " in done.stdout.splitlines()[-1]
    assert "the disk is full" in done.stdout


def test_json_output_parses_one_object_per_line(env: dict[str, str]) -> None:
    submitted = run("tasks", "submit", "For scripts.", "--json", env=env)
    assert submitted.returncode == 0, submitted.stderr
    task = json.loads(submitted.stdout)
    listed = run("tasks", "ls", "--json", "--limit", "3", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert 1 <= len(rows) <= 3
    assert task["id"] in [row["id"] for row in rows]
    events = run("tasks", "events", task["id"], "--json", env=env)
    seqs = [json.loads(line)["seq"] for line in events.stdout.splitlines()]
    assert seqs == list(range(1, len(seqs) + 1))
    assert len(seqs) >= 3


def test_follow_shows_the_question_and_tasks_input_answers_it(env: dict[str, str]) -> None:
    """`--follow` prints the question with how to answer it and keeps following; `tasks input`
    (another process, as a person in another shell) answers, and the follow ends succeeded."""
    follow = subprocess.Popen(
        [CLI, "tasks", "submit", "Pick a region\n/ask Which region?\n/steps 1",
         "--max-wait-seconds", "600", "--follow"],
        env={**env, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in follow.stdout or []])
    reader.start()
    try:
        seen = _lines_until(lines, "answer it: ", within=60)
        task_id = seen[0].split()[1]
        assert seen[-2].strip() == "? Which region?"
        assert seen[-1].strip() == f'answer it: relay-client tasks input {task_id} "<answer>"'
        assert follow.poll() is None  # still following

        answered = run("tasks", "input", task_id, "eu-west-1", "--json", env=env)
        assert answered.returncode == 0, answered.stderr
        assert json.loads(answered.stdout)["status"] == "running"
        assert follow.wait(timeout=60) == 0, follow.stderr.read() if follow.stderr else ""
    finally:
        follow.kill()
        reader.join()
    rest = _lines_until(lines, "", within=0)
    assert rest[-1].strip() == "succeeded"
    assert any("task.input_provided" in line and "eu-west-1" in line for line in rest)
    task = json.loads(run("tasks", "get", task_id, "--json", env=env).stdout)
    assert "eu-west-1" in task["result"]["summary"]
    assert task["limits"]["max_wait_seconds"] == 600

    again = run("tasks", "input", task_id, "us-east-1", env=env)
    assert again.returncode == 3  # the API refused it
    assert "409" in again.stderr
    blank = run("tasks", "input", task_id, " ", env=env)
    assert blank.returncode == 2


def _lines_until(lines: queue.Queue[str], marker: str, *, within: float) -> list[str]:
    """Lines from ``lines`` up to the first that holds ``marker`` ("": every line there is)."""
    deadline = time.monotonic() + within
    taken: list[str] = []
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            assert not marker, f"no {marker!r} line in {taken}"
            return taken
        taken.append(line.rstrip("\n"))
        if marker and marker in line:
            return taken


def test_usage_errors_exit_2_and_api_errors_exit_3(env: dict[str, str]) -> None:
    bad_option = run("tasks", "ls", "--status", "sleeping", env=env)
    assert bad_option.returncode == 2
    assert "--status" in bad_option.stderr

    missing = run("tasks", "get", str(uuid.uuid4()), env=env)
    assert missing.returncode == 3
    assert "404" in missing.stderr

    no_key = run("tasks", "ls", env={**env, "RELAY_API_KEY": ""})
    assert no_key.returncode == 2
    assert "RELAY_API_KEY" in no_key.stderr


def test_configure_writes_a_profile_only_its_owner_reads_and_it_is_used(
    env: dict[str, str], stack: RunningStack, api_key: str
) -> None:
    configured = run("configure", "--url", stack.gateway_url, "--api-key", api_key, env=env)
    assert configured.returncode == 0, configured.stderr
    assert api_key not in configured.stdout
    profile = Path(env["RELAY_PROFILE_FILE"])
    assert stat.S_IMODE(profile.stat().st_mode) == 0o600
    bare = {k: v for k, v in env.items() if k not in ("RELAY_URL", "RELAY_API_KEY")}
    listed = run("tasks", "ls", "--json", "--limit", "1", env=bare)
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 1
