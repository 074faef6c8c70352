"""The last line of defence: `pkgrepo.cli.run`, the one place errors become exit codes.

A command that raises is added to the real command group for the test (and
removed after), so the real mapping is exercised in-process; broken pipes and
OS errors are provoked for real in a subprocess.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from pkgrepo.cli import cli, run
from pkgrepo.errors import BadInput, Unreachable
from tests.helpers.cli import ROOT, TRACEBACK, run_cli


@pytest.fixture
def raising():
    """`pkgrepo raise KIND`: raises the named exception."""
    errors = {
        "runtime": RuntimeError("boom\nsecond line"),
        "bad": BadInput("x.yaml: field: wrong"),
        "server": Unreachable("cannot download timestamp.json: connection refused"),
        "interrupt": KeyboardInterrupt(),
        "oserror": PermissionError(13, "Permission denied", "/some/file"),
    }

    @click.command("raise")
    @click.argument("kind")
    def command(kind: str) -> None:
        raise errors[kind]

    cli.add_command(command)
    yield
    cli.commands.pop("raise")


@pytest.mark.parametrize(
    "kind, code, line",
    [
        (
            "runtime",
            1,
            "pkgrepo: internal error: RuntimeError: boom second line "
            "(run with --verbose or PKGREPO_DEBUG=1 for the traceback)",
        ),
        ("bad", 2, "pkgrepo: error: x.yaml: field: wrong"),
        ("server", 3, "pkgrepo: error: cannot download timestamp.json: connection refused"),
        ("interrupt", 130, "pkgrepo: interrupted"),
        ("oserror", 1, "pkgrepo: error: /some/file: Permission denied"),
    ],
)
def test_every_error_is_one_line_and_its_exit_code(
    raising, capsys, monkeypatch, kind: str, code: int, line: str
):
    monkeypatch.delenv("PKGREPO_DEBUG", raising=False)
    assert run(["raise", kind]) == code
    assert capsys.readouterr().err.splitlines() == [line]


def test_the_traceback_only_when_asked(raising, capsys, monkeypatch):
    monkeypatch.delenv("PKGREPO_DEBUG", raising=False)
    assert run(["--verbose", "raise", "runtime"]) == 1
    err = capsys.readouterr().err
    assert (
        TRACEBACK in err and err.splitlines()[-1] == "pkgrepo: internal error: RuntimeError: boom second line"
    )
    monkeypatch.setenv("PKGREPO_DEBUG", "1")
    assert run(["raise", "runtime"]) == 1
    assert TRACEBACK in capsys.readouterr().err


def test_usage_errors_exit_2_and_help_exits_0(capsys):
    assert run(["no-such-command"]) == 2
    assert run(["resolve"]) == 2
    assert run(["--help"]) == 0
    assert "Exit codes: 0 ok" in capsys.readouterr().out


def test_a_closed_stdout_is_quiet():
    proc = subprocess.Popen(
        [sys.executable, "-m", "pkgrepo", "schema", "recipe"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader goes away, as `| head -0` would
    assert proc.wait(timeout=60) == 141
    assert proc.stderr.read() == b""


def test_an_unwritable_cache_is_one_line(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = run_cli(
        "resolve", "bash", "--index", f"debian:{tmp_path / 'Packages'}", env={"PKGREPO_CACHE": str(blocker)}
    )
    assert proc.returncode in (1, 2)
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
