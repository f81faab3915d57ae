"""What every whole-stack suite shares: a failing test's report carries the stack's logs.

A test that drives a real `relay up` fails by what the public side saw (a status that never
came, a stream that stalled); the cause is in the services' logs, which live in a temporary
folder a CI run does not keep. So the last lines of each service's log go into the failure's
report, where a CI excerpt shows them.
"""

from __future__ import annotations

from collections.abc import Generator

import pytest

from relay_ops.stack.process import RunningStack

LOG_LINES = 30


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and report.when == "call":
        for value in getattr(item, "funcargs", {}).values():
            if isinstance(value, RunningStack):
                report.sections.append(("stack logs (last lines)", value.log_tail(LOG_LINES)))
                break
    return report
