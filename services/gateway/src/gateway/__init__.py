"""Relay gateway service."""
