"""Relay artifacts service."""
