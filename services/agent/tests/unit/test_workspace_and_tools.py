from __future__ import annotations

from pathlib import Path

import pytest

from agent.providers.base import ToolUseBlock
from agent.tools import TOOL_SPECS, run_tool
from agent.workspace import Workspace, WorkspaceError


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.create(tmp_path / "root", "task-1", max_file_bytes=64)


def _call(name: str, **args: object) -> ToolUseBlock:
    return ToolUseBlock(id="toolu_1", name=name, input=args)


def test_write_read_and_list_inside_the_workspace(workspace: Workspace) -> None:
    assert workspace.write("./notes//today.md", b"hello") == "notes/today.md"
    workspace.write("a.txt", b"x")
    assert workspace.read("notes/today.md") == b"hello"
    assert workspace.files() == ["a.txt", "notes/today.md"]
    assert (workspace.root / "notes" / "today.md").read_bytes() == b"hello"


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "../outside.md",
        "a/../../outside.md",
        "a/../b.md",
        "notes..md",
        "",
        ".",
        "\\x",
        "C:/x.md",
        "a\nb.md",
        "tab\there.md",
        "x" * 256,
    ],
)
def test_paths_outside_or_ambiguous_are_refused(workspace: Workspace, path: str) -> None:
    with pytest.raises(WorkspaceError):
        workspace.write(path, b"x")
    assert not (workspace.root.parent / "outside.md").exists()


def test_symlink_escaping_the_workspace_is_refused(workspace: Workspace, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (workspace.root / "link").symlink_to(outside, target_is_directory=True)
    (workspace.root / "file-link").symlink_to(outside / "secret.txt")

    with pytest.raises(WorkspaceError, match="outside the workspace"):
        workspace.write("link/new.txt", b"x")
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        workspace.read("file-link")
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_symlink_within_the_workspace_is_allowed(workspace: Workspace) -> None:
    (workspace.root / "real").mkdir()
    (workspace.root / "alias").symlink_to(workspace.root / "real", target_is_directory=True)
    workspace.write("alias/f.txt", b"ok")
    assert (workspace.root / "real" / "f.txt").read_bytes() == b"ok"


def test_file_size_limit(workspace: Workspace) -> None:
    workspace.write("max.bin", b"x" * 64)
    with pytest.raises(WorkspaceError, match="64-byte"):
        workspace.write("big.bin", b"x" * 65)
    assert not (workspace.root / "big.bin").exists()


def test_missing_directory_and_file_parent(workspace: Workspace) -> None:
    with pytest.raises(WorkspaceError, match="no such file"):
        workspace.read("missing.md")
    workspace.write("dir/f.txt", b"x")
    with pytest.raises(WorkspaceError, match="directory"):
        workspace.write("dir", b"x")
    with pytest.raises(WorkspaceError, match="parent"):
        workspace.write("dir/f.txt/g.txt", b"x")


def test_create_gives_each_attempt_its_own_directory_and_remove_deletes_it(
    tmp_path: Path,
) -> None:
    first = Workspace.create(tmp_path, "t-1", max_file_bytes=10)
    second = Workspace.create(tmp_path, "t-1", max_file_bytes=10)
    assert first.root != second.root
    first.write("f", b"x")
    first.remove()
    assert not first.root.exists()
    assert second.root.exists()


async def test_write_file_tool_reports_the_written_file(workspace: Workspace) -> None:
    outcome = await run_tool(workspace, _call("write_file", path="r.md", content="# hi"))
    assert not outcome.is_error
    assert outcome.written is not None
    assert (outcome.written.name, outcome.written.data) == ("r.md", b"# hi")
    assert outcome.as_result("toolu_1") == {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": "Wrote r.md (4 bytes).",
        "is_error": False,
    }


async def test_read_and_list_tools(workspace: Workspace) -> None:
    listed = await run_tool(workspace, _call("list_files"))
    assert (listed.content, listed.is_error) == ("(the workspace is empty)", False)
    await run_tool(workspace, _call("write_file", path="a.md", content="alpha"))
    assert (await run_tool(workspace, _call("read_file", path="a.md"))).content == "alpha"
    assert (await run_tool(workspace, _call("list_files"))).content == "a.md"


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (_call("write_file", path="../x.md", content="x"), "'..'"),
        (_call("write_file", path="/abs.md", content="x"), "absolute"),
        (_call("read_file", path="nope.md"), "no such file"),
        (_call("write_file", content="no path"), "path"),
        (_call("delete_everything"), "Unknown tool"),
    ],
)
async def test_tool_mistakes_become_error_results(
    workspace: Workspace, call: ToolUseBlock, fragment: str
) -> None:
    outcome = await run_tool(workspace, call)
    assert outcome.is_error
    assert outcome.written is None
    assert fragment in outcome.content


def test_tool_specs_are_messages_api_tools() -> None:
    specs = {spec.name: spec.model_dump() for spec in TOOL_SPECS}
    assert set(specs) == {"write_file", "read_file", "list_files", "ask_user"}
    write = specs["write_file"]["input_schema"]
    assert write["type"] == "object"
    assert set(write["required"]) == {"path", "content"}
