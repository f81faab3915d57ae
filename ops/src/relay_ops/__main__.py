"""`python -m relay_ops`: the same CLI as the `relay` console script."""

from __future__ import annotations

from relay_ops.cli import app

app()
