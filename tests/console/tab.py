"""A browser tab on the web console, for the browser tests (conftest.py's ``tab`` fixture)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import (
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Error,
    Locator,
    Page,
    ViewportSize,
    expect,
)

WIDE: ViewportSize = {"width": 1280, "height": 900}
NARROW: ViewportSize = {"width": 360, "height": 780}


@dataclass
class ConsoleTab:
    """One browser tab on the console, and what it said on its console while the test ran."""

    context: BrowserContext
    page: Page
    url: str  # http://127.0.0.1:<port>/console/
    # (message, the script or document it came from)
    csp_violations: list[tuple[str, str]] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def on_console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            self.csp_violations.append((message.text, message.location["url"]))

    def take_sanitizer_parse_reports(self) -> list[str]:
        """Removes and returns the reports Chromium makes while DOMPurify *parses* Markdown that
        holds event-handler attributes: its DOMParser document inherits the page's CSP and
        reports each ``on*=`` attribute it reads, although that document is inert and the
        attribute is removed before anything is shown (cure53/DOMPurify#107, #900). They come
        from the Markdown chunk, never from a handler that ran; every other report stays."""
        taken = [
            text
            for text, source in self.csp_violations
            if "/assets/markdown-" in source and text.startswith("Executing inline event handler")
        ]
        self.csp_violations = [v for v in self.csp_violations if v[0] not in taken]
        return taken

    def on_page_error(self, error: Error) -> None:
        self.page_errors.append(f"{error.name}: {error.message}")

    async def on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        await dialog.dismiss()

    def testid(self, name: str) -> Locator:
        return self.page.get_by_test_id(name)

    async def open(self, route: str = "") -> None:
        """The console at ``route`` (a hash route such as ``#/tasks/<id>``)."""
        response = await self.page.goto(self.url + route)
        if response is not None:  # None: the same document, another hash
            self.headers = await response.all_headers()

    async def sign_in(self, key: str) -> None:
        await self.open()
        await self.testid("sign-in-key").fill(key)
        await self.testid("sign-in-submit").click()
        await expect(self.testid("sign-out")).to_be_visible()
        await expect(self.testid("connection-status")).to_have_attribute("data-state", "connected")

    async def go(self, route: str) -> None:
        """Another route of the app in the same document (no reload: the session stays)."""
        await self.page.evaluate("route => { location.hash = route; }", route)

    async def timeline(self) -> list[tuple[int, str]]:
        """The task page's timeline as shown: (data-seq, data-type) of each entry, in order."""
        entries: list[list[Any]] = await self.testid("timeline-entry").evaluate_all(
            "els => els.map(e => [Number(e.dataset.seq), e.dataset.type])"
        )
        return [(int(seq), str(kind)) for seq, kind in entries]

    async def status(self) -> str | None:
        return await self.testid("task-page").get_attribute("data-status")

    def assert_clean(self) -> None:
        assert not self.csp_violations, "CSP violations:\n" + "\n".join(
            f"{text} ({source})" for text, source in self.csp_violations
        )
        assert not self.page_errors, "uncaught errors in the page:\n" + "\n".join(self.page_errors)
        assert not self.dialogs, f"the page opened dialogs: {self.dialogs}"
