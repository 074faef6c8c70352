"""The two kinds of error the CLI distinguishes by exit code.

Every message is one line that names the file, field or package at fault and
what to do about it; the CLI prints it as-is.
"""


class PkgrepoError(Exception):
    """A failure of the work itself (a build that fails, a test that fails): exit 1."""

    exit_code = 1


class BadInput(PkgrepoError):
    """The user's input is wrong (recipe, checksum, package, archive, request): exit 2."""

    exit_code = 2


class BuildFailed(PkgrepoError):
    """A build, its checks or its tests failed."""
