"""Relay tasks service."""
