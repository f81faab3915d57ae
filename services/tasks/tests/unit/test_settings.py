"""The tasks settings refuse, at start-up, a configuration that could not serve tasks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from relay_shared.events import TaskLimits
from tasks.settings import TasksSettings


def test_the_defaults_are_the_documented_ones() -> None:
    settings = TasksSettings()

    assert settings.allowed_models == ("claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5")
    assert settings.default_model == "claude-sonnet-4-5"
    assert settings.default_limits() == TaskLimits(
        max_turns=50,
        max_output_tokens=32000,
        max_wall_seconds=1800,
        max_cost_usd=None,
        max_wait_seconds=86400,
    )
    assert settings.limit_ranges() == {
        "max_turns": (1, 200),
        "max_output_tokens": (1, 200_000),
        "max_wall_seconds": (1.0, 21600.0),
        "max_cost_usd": (0.01, 100.0),
        "max_wait_seconds": (1.0, 604800.0),
    }
    assert settings.max_input_chars == 16000


def test_models_and_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_ALLOWED_MODELS", " claude-haiku-4-5 , claude-opus-4-1,")
    monkeypatch.setenv("RELAY_DEFAULT_MODEL", "claude-haiku-4-5")
    monkeypatch.setenv("RELAY_DEFAULT_MAX_TURNS", "10")
    monkeypatch.setenv("RELAY_LIMIT_MAX_TURNS", "20")
    monkeypatch.setenv("RELAY_DEFAULT_MAX_COST_USD", "0.5")
    monkeypatch.setenv("RELAY_LIMIT_MAX_WALL_SECONDS", "60")
    monkeypatch.setenv("RELAY_DEFAULT_MAX_WALL_SECONDS", "30")

    settings = TasksSettings()

    assert settings.allowed_models == ("claude-haiku-4-5", "claude-opus-4-1")
    assert settings.default_limits() == TaskLimits(
        max_turns=10,
        max_output_tokens=32000,
        max_wall_seconds=30,
        max_cost_usd=0.5,
        max_wait_seconds=86400,
    )
    assert settings.limit_ranges()["max_turns"] == (1, 20)
    assert settings.limit_ranges()["max_wall_seconds"] == (1.0, 60.0)


def test_a_default_model_that_is_not_allowed_stops_start_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RELAY_ALLOWED_MODELS", "claude-opus-4-1")

    with pytest.raises(ValidationError, match="RELAY_DEFAULT_MODEL 'claude-sonnet-4-5' is not in"):
        TasksSettings()


def test_an_empty_allow_list_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_ALLOWED_MODELS", " , ")

    with pytest.raises(ValidationError, match="allowed_models"):
        TasksSettings()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"default_max_turns": 201}, "RELAY_DEFAULT_MAX_TURNS must be between 1 and 200"),
        ({"default_max_turns": 0}, "RELAY_DEFAULT_MAX_TURNS must be between 1 and 200"),
        ({"limit_max_output_tokens": 1000}, "RELAY_DEFAULT_MAX_OUTPUT_TOKENS must be between"),
        ({"default_max_wall_seconds": 0.5}, "RELAY_DEFAULT_MAX_WALL_SECONDS must be between"),
        ({"default_max_cost_usd": 101}, "RELAY_DEFAULT_MAX_COST_USD must be between 0.01 and 100"),
        ({"limit_max_cost_usd": 0.001}, "RELAY_LIMIT_MAX_COST_USD must be at least 0.01"),
    ],
)
def test_a_default_outside_its_range_stops_start_up(
    overrides: dict[str, float], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        TasksSettings(**overrides)  # type: ignore[arg-type]
