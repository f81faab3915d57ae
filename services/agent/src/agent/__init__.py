"""Relay agent service."""
