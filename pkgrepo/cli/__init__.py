"""The `pkgrepo` command line: one module per group of commands, `app` ties them together."""

from pkgrepo.cli.app import cli, main, run

__all__ = ["cli", "main", "run"]
