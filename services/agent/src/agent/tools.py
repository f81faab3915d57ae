"""The tools the model can call, by name. Each runs inside the run's workspace.

A tool never crashes the run for something the model got wrong: a bad path, a missing file or a
malformed input comes back as an ``is_error`` tool result the model can react to.

A tool is an awaitable run inside the attempt's task, so cancelling the attempt (a cancel
request, the wall-time budget, shutdown) interrupts it at its next await. The registry is
injected through the composition root; ``TOOLS`` is the one the product runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.providers.base import ToolSpec, ToolUseBlock
from agent.workspace import Workspace, WorkspaceError


@dataclass(frozen=True)
class WrittenFile:
    name: str
    data: bytes


@dataclass(frozen=True)
class ToolOutcome:
    content: str
    is_error: bool = False
    written: WrittenFile | None = None  # set by a successful write_file: it becomes an artifact

    def as_result(self, tool_use_id: str) -> dict[str, Any]:
        """A Messages API ``tool_result`` block answering ``tool_use_id``."""
        return {
            "type": "tool_result",
            "tool_use_id": tool_use_id,
            "content": self.content,
            "is_error": self.is_error,
        }


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WriteFileInput(_Input):
    path: str = Field(description="Relative path inside the workspace, e.g. 'report.md'.")
    content: str = Field(description="The whole file content (UTF-8 text).")


class ReadFileInput(_Input):
    path: str = Field(description="Relative path inside the workspace.")


class ListFilesInput(_Input):
    pass


MAX_QUESTION_CHARS = 2000


class AskUserInput(_Input):
    question: str = Field(
        min_length=1,
        max_length=MAX_QUESTION_CHARS,
        description="One clear question for the user, with the context they need to answer.",
    )


ASK_USER = "ask_user"


async def write_file(workspace: Workspace, args: WriteFileInput) -> ToolOutcome:
    data = args.content.encode()
    name = await asyncio.to_thread(workspace.write, args.path, data)
    return ToolOutcome(f"Wrote {name} ({len(data)} bytes).", written=WrittenFile(name, data))


async def read_file(workspace: Workspace, args: ReadFileInput) -> ToolOutcome:
    data = await asyncio.to_thread(workspace.read, args.path)
    return ToolOutcome(data.decode(errors="replace"))


async def ask_user(_workspace: Workspace, _args: AskUserInput) -> ToolOutcome:
    # The attempt's work answers ask_user itself (it pauses the task, work.py); reaching this
    # means a registry without that handling ran it, and the model hears so.
    return ToolOutcome("ask_user is not available here; go on without the answer.", True)


async def list_files(workspace: Workspace, _args: ListFilesInput) -> ToolOutcome:
    names = await asyncio.to_thread(workspace.files)
    return ToolOutcome("\n".join(names) if names else "(the workspace is empty)")


@dataclass(frozen=True)
class Tool:
    spec: ToolSpec
    input_model: type[BaseModel]
    run: Callable[[Workspace, Any], Awaitable[ToolOutcome]]


def define_tool(name: str, description: str, input_model: type[BaseModel], run: Any) -> Tool:
    return Tool(
        ToolSpec(name=name, description=description, input_schema=input_model.model_json_schema()),
        input_model,
        run,
    )


TOOLS: Mapping[str, Tool] = {
    t.spec.name: t
    for t in (
        define_tool(
            "write_file",
            "Create or replace a file in the workspace. Every file written is delivered to the"
            " user as an artifact of the task.",
            WriteFileInput,
            write_file,
        ),
        define_tool("read_file", "Read a file from the workspace.", ReadFileInput, read_file),
        define_tool("list_files", "List the files in the workspace.", ListFilesInput, list_files),
        define_tool(
            ASK_USER,
            "Ask the user who gave you the task one question and wait for the answer, which"
            " comes back as this tool's result (the task pauses until then, possibly for"
            " hours). Ask only when you cannot go on without it; one question at a time.",
            AskUserInput,
            ask_user,
        ),
    )
}
TOOL_SPECS = [t.spec for t in TOOLS.values()]


def read_input(call: ToolUseBlock, input_model: type[BaseModel]) -> BaseModel | ToolOutcome:
    """The call's input as the tool's model, or the error result that tells the model why not."""
    try:
        return input_model.model_validate(call.input)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'input'}: {err['msg']}"
            for err in exc.errors(include_url=False)
        )
        return ToolOutcome(f"Invalid input for {call.name}: {problems}", is_error=True)


async def run_tool(
    workspace: Workspace, call: ToolUseBlock, tools: Mapping[str, Tool] = TOOLS
) -> ToolOutcome:
    found = tools.get(call.name)
    if found is None:
        return ToolOutcome(f"Unknown tool {call.name!r}; use one of: {', '.join(tools)}.", True)
    args = read_input(call, found.input_model)
    if isinstance(args, ToolOutcome):
        return args
    try:
        return await found.run(workspace, args)
    except WorkspaceError as exc:
        return ToolOutcome(str(exc), is_error=True)
