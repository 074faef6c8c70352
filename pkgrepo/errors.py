"""The kinds of error the CLI distinguishes by exit code.

Every message is one line that names the file, field or package at fault and
what to do about it; the CLI prints it as-is. The exit codes (docs/cli.md):
0 success, 1 a failure of the work, 2 bad or hostile input, 3 a repository
server that cannot be reached or does not answer properly, 130 interrupted.
"""


class PkgrepoError(Exception):
    """A failure of the work itself (a build that fails, a test that fails): exit 1."""

    exit_code = 1


class BadInput(PkgrepoError):
    """The user's input is wrong (recipe, checksum, package, archive, request): exit 2."""

    exit_code = 2


class BuildFailed(PkgrepoError):
    """A build, its checks or its tests failed."""


class Unreachable(PkgrepoError):
    """A repository server could not be reached, failed, or was too slow: exit 3.

    Retrying later may help; a server that lies (bad signature, wrong hash,
    endless data) is hostile input instead, `BadInput`."""

    exit_code = 3
