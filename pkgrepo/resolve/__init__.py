"""Dependency resolution: versions, dependency clauses and closures."""
