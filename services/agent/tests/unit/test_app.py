"""The agent app, built through its seam (``create_app(settings, ports=given(...))``) on the
fakes: the service it starts runs on exactly the ports it was given."""

from __future__ import annotations

import asyncio

from asgi_lifespan import LifespanManager

from agent.handlers import event_dispatcher
from agent.service import AgentService


async def test_the_app_runs_its_service_on_the_ports_it_was_given(
    agent_app, fakes, make_submitted
) -> None:
    async with LifespanManager(agent_app):
        await asyncio.wait_for(agent_app.state.runtime.wait_ready(), 10)
        service = agent_app.state.service
        assert isinstance(service, AgentService)
        assert agent_app.state.ports.runs is fakes.runs
        assert agent_app.state.loops == ()  # the fakes run nothing in the background

        await event_dispatcher(service).dispatch(make_submitted("Report\n/steps 1"))

    assert fakes.runs.names() == [
        "task.started",
        "task.progressed",
        "artifact.uploaded",
        "task.succeeded",
    ]
    assert len(fakes.provider.requests) == 2  # the given provider answered every call
    assert len(fakes.staging.objects) == 1
