"""Relay operator tooling: the `relay` CLI, the local stack and the test harness."""
