"""Relay notifier service."""
