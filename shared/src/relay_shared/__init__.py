"""Relay runtime kit: cross-cutting runtime only, no domain logic, never imports a service."""
