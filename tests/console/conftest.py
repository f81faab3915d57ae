"""The web console's browser tests: headless Chromium (Debian's `chromium`, driven by Playwright
for Python through ``executable_path``: Playwright downloads no browser here) against a real
`relay up`, whose gateway serves console/dist at /console/ (ADR 0014).

One stack and one browser for the module; each test gets a fresh browser context (its own
sessionStorage, so its own sign-in) and fails on any Content-Security-Policy violation, uncaught
page error or dialog (``alert``) it caused.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright, expect

from relay_devkit.api_client import PublicApi
from relay_devkit.testing import fresh_database
from relay_ops.stack.config import CONSOLE_DIST
from relay_ops.stack.process import RunningStack, running_stack

from .tab import WIDE, ConsoleTab

# The supervisor restarts a killed service within a second (the reconnect test kills the
# gateway), and a service given SIGTERM (the stack stopping) finishes its work within 5 s.
STACK_ENV = {
    "RELAY_SHUTDOWN_GRACE_SECONDS": "5",
    "RELAY_STACK_RESTART_MAX_SECONDS": "1",
}
# Where the screenshots go: relay-output/ is the repository's (git-ignored) output folder.
OUTPUT = Path("relay-output") / "console"


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; a missing browser is a failure, never a skip."""
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "chromium not found on PATH: `make browser` installs Debian's chromium package, "
            "which the browser tests drive through Playwright (executable_path)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def console_stack(
    chromium: str,  # no stack is started for nothing when there is no browser
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    aws_credentials: None,
) -> Iterator[RunningStack]:
    """`relay up` with a fresh database, serving the console's build at /console/."""
    if not (CONSOLE_DIST / "index.html").is_file():
        pytest.fail(
            f"{CONSOLE_DIST} has no build: `make install` (or `cd console && npm run build`) "
            "builds the console",
            pytrace=False,
        )
    with (
        fresh_database() as database_url,
        running_stack(
            database_url, redis_url, tmp_path_factory.mktemp("console-stack"), **STACK_ENV
        ) as up,
    ):
        yield up


@pytest.fixture(scope="module")
def keys(console_stack: RunningStack) -> tuple[str, str]:
    """API keys of two tenants (`relay admin create-key`, made side by side: each is a process)."""
    tenants = (f"acme-{uuid.uuid4().hex[:6]}", f"globex-{uuid.uuid4().hex[:6]}")
    with ThreadPoolExecutor(len(tenants)) as pool:
        mine, theirs = pool.map(console_stack.create_key, tenants)
    return mine, theirs


@pytest.fixture(scope="module")
def api_key(keys: tuple[str, str]) -> str:
    return keys[0]


@pytest.fixture(scope="module")
def other_api_key(keys: tuple[str, str]) -> str:
    """Another tenant's key."""
    return keys[1]


@pytest_asyncio.fixture(loop_scope="module")
async def api(console_stack: RunningStack, api_key: str) -> AsyncIterator[PublicApi]:
    client = PublicApi(console_stack.gateway_url, api_key)
    yield client
    await client.aclose()


@pytest_asyncio.fixture(loop_scope="module")
async def other_api(console_stack: RunningStack, other_api_key: str) -> AsyncIterator[PublicApi]:
    client = PublicApi(console_stack.gateway_url, other_api_key)
    yield client
    await client.aclose()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    expect.set_options(timeout=15_000)  # a task of a few seconds on a loaded machine
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, headless=True)
        yield launched
        await launched.close()


@pytest.fixture(scope="session")
def screenshots(pytestconfig: pytest.Config) -> Path:
    folder = pytestconfig.rootpath / OUTPUT
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest_asyncio.fixture(loop_scope="module")
async def tab(browser: Browser, console_stack: RunningStack) -> AsyncIterator[ConsoleTab]:
    context = await browser.new_context(viewport=WIDE, accept_downloads=True)
    context.set_default_timeout(15_000)
    page = await context.new_page()
    console = ConsoleTab(context, page, console_stack.config.console_url)
    page.on("console", console.on_console)
    page.on("pageerror", console.on_page_error)
    page.on("dialog", console.on_dialog)
    try:
        yield console
    finally:
        await context.close()
    console.assert_clean()
