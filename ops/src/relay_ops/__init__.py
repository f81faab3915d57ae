"""Relay for operators: the `relay` CLI (up, demo, bootstrap, admin, dlq, trace) and the local
stack. Never imports relay_devkit."""
