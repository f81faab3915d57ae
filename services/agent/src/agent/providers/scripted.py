"""The ``scripted`` provider: a deterministic, offline stand-in for a model.

It reads directives from the prompt (the first user message), one per line, and ignores other
text. It is stateless: which reply to give follows from how many assistant turns the
conversation already holds, so a re-run of a task replays exactly the same script.

    /steps N        tool-using replies before the end (default 2, at least 1)
    /sleep S        seconds of think time before every reply (default 0)
    /artifact NAME  a file to write (repeatable; default one result.md)
    /fail MESSAGE   end with ProviderError("scripted_failure", MESSAGE) instead of a summary
    /ask QUESTION   first ask the user QUESTION (ask_user) and wait for the answer, then go on;
                    the summary quotes the answer
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from agent.providers.base import ModelReply, ModelRequest, ProviderError, TextBlock, ToolUseBlock
from relay_shared.events import Usage

DEFAULT_STEPS = 2
DEFAULT_ARTIFACT = "result.md"
DEFAULT_FAILURE = "scripted failure"

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Script:
    title: str = ""
    steps: int = DEFAULT_STEPS
    sleep: float = 0.0
    artifacts: tuple[str, ...] = (DEFAULT_ARTIFACT,)
    fail: str | None = None
    ask: str | None = None

    def writes_on(self, turn: int) -> list[str]:
        """Artifact names written on reply ``turn``: all of them on the last step, where a model
        writes up its result; the earlier steps look around (list_files)."""
        return list(self.artifacts) if turn == self.steps else []

    def summary(self, answer: str | None = None) -> str:
        plural = "" if self.steps == 1 else "s"
        done = f"Completed {self.steps} step{plural}; wrote {', '.join(self.artifacts)}."
        if self.ask is None:
            return done
        return f"{done} Asked {self.ask!r}; the answer was {answer!r}."

    def artifact_content(self, name: str, turn: int) -> str:
        return (
            f"# {name}\n\n"
            f"Task: {self.title or '(untitled)'}\n\n"
            f"Written by the scripted model in step {turn} of {self.steps}.\n"
        )


@dataclass
class _Draft:
    steps: int = DEFAULT_STEPS
    sleep: float = 0.0
    artifacts: list[str] = field(default_factory=list)
    fail: str | None = None
    ask: str | None = None


def _invalid(directive: str, value: str, expected: str) -> ProviderError:
    return ProviderError(
        "invalid_directive", f"/{directive} {value!r}: expected {expected}", retryable=False
    )


def _set_steps(draft: _Draft, value: str) -> None:
    try:
        steps = int(value)
    except ValueError:
        raise _invalid("steps", value, "a whole number") from None
    draft.steps = max(1, steps)  # at least one step, because at least one artifact is written


def _set_sleep(draft: _Draft, value: str) -> None:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise _invalid("sleep", value, "a number of seconds >= 0")
    draft.sleep = seconds


def _add_artifact(draft: _Draft, value: str) -> None:
    if not value:
        raise _invalid("artifact", value, "a file name")
    draft.artifacts.append(value)


def _set_fail(draft: _Draft, value: str) -> None:
    draft.fail = value or DEFAULT_FAILURE


def _set_ask(draft: _Draft, value: str) -> None:
    if not value:
        raise _invalid("ask", value, "a question")
    draft.ask = value


DIRECTIVES: dict[str, Callable[[_Draft, str], None]] = {
    "steps": _set_steps,
    "sleep": _set_sleep,
    "artifact": _add_artifact,
    "fail": _set_fail,
    "ask": _set_ask,
}


def parse_script(prompt: str) -> Script:
    """The script a prompt describes; raises ProviderError("invalid_directive") on bad values."""
    draft = _Draft()
    for line in prompt.splitlines():
        word, _, value = line.strip().partition(" ")
        apply = DIRECTIVES.get(word[1:]) if word.startswith("/") else None
        if apply is not None:
            apply(draft, value.strip())
    lines = prompt.strip().splitlines()
    return Script(
        title=lines[0].strip() if lines else "",
        steps=draft.steps,
        sleep=draft.sleep,
        artifacts=tuple(draft.artifacts) or (DEFAULT_ARTIFACT,),
        fail=draft.fail,
        ask=draft.ask,
    )


def prompt_of(request: ModelRequest) -> str:
    """The text of the first user message (a string or a list of content blocks)."""
    first = next((m for m in request.messages if m.get("role") == "user"), None)
    content: Any = first.get("content", "") if first else ""
    if isinstance(content, str):
        return content
    return "\n".join(b.get("text", "") for b in content if b.get("type") == "text")


ASK_ID = "toolu_scripted_ask"


def answer_of(request: ModelRequest) -> str | None:
    """The answer the conversation holds to the scripted question, if any."""
    for message in request.messages:
        content = message.get("content")
        if message.get("role") != "user" or not isinstance(content, list):
            continue
        for block in content:
            if block.get("type") == "tool_result" and block.get("tool_use_id") == ASK_ID:
                answer = block.get("content")
                return answer if isinstance(answer, str) else None
    return None


def usage_for(turn: int) -> Usage:
    return Usage(input_tokens=100 + 10 * turn, output_tokens=20)


class ScriptedProvider:
    def __init__(self, *, sleep: Sleep = asyncio.sleep) -> None:
        self._sleep = sleep

    async def complete(self, request: ModelRequest) -> ModelReply:
        script = parse_script(prompt_of(request))
        replies = sum(1 for m in request.messages if m.get("role") == "assistant")
        if script.sleep:
            await self._sleep(script.sleep)
        if script.ask is not None:
            if replies == 0:
                ask = ToolUseBlock(id=ASK_ID, name="ask_user", input={"question": script.ask})
                return ModelReply(content=[ask], stop_reason="tool_use", usage=usage_for(0))
            replies -= 1  # the question was a reply of its own before the script's steps
        turn = 1 + replies
        if turn <= script.steps:
            return ModelReply(
                content=self._tool_uses(script, turn), stop_reason="tool_use", usage=usage_for(turn)
            )
        if script.fail is not None:
            raise ProviderError("scripted_failure", script.fail, retryable=False)
        return ModelReply(
            content=[TextBlock(text=script.summary(answer_of(request)))],
            stop_reason="end_turn",
            usage=usage_for(turn),
        )

    @staticmethod
    def _tool_uses(script: Script, turn: int) -> list[TextBlock | ToolUseBlock]:
        writes = script.writes_on(turn)
        if not writes:
            return [ToolUseBlock(id=f"toolu_scripted_{turn}_0", name="list_files", input={})]
        return [
            ToolUseBlock(
                id=f"toolu_scripted_{turn}_{k}",
                name="write_file",
                input={"path": name, "content": script.artifact_content(name, turn)},
            )
            for k, name in enumerate(writes)
        ]
