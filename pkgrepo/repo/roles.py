"""The repository's TUF roles, named once (no imports: the CLI reads them at start-up)."""

# The roles named in root.json, then the hash-bin delegation's key.
TOP_ROLES = ("root", "targets", "snapshot", "timestamp")
ROLES = (*TOP_ROLES, "bins")
