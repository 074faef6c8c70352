"""The `pkgrepo` group and the one place errors become exit codes.

Each command module (build, install, repository, resolve, image, attest)
parses, calls one function of its room, and prints text or `--json`; `run`
maps every error to one line and an exit code, so tests can run the CLI
in-process.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from pkgrepo.cli import advisories, attest, build, image, install, repository, resolve
from pkgrepo.errors import PkgrepoError
from pkgrepo.safeio import shown


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="pkgrepo")
@click.option("--verbose", "-v", is_flag=True, help="Print the traceback of an internal error.")
def cli(verbose: bool) -> None:
    """Build packages from source, publish them signed, and resolve minimal image closures.

    Exit codes: 0 ok, 1 failed work, 2 bad or hostile input, 3 repository
    server unreachable or failing, 130 interrupted."""


for module in (build, install, repository, resolve, image, attest, advisories):
    for command in module.COMMANDS:
        cli.add_command(command)


DEBUG_HINT = "run with --verbose or PKGREPO_DEBUG=1 for the traceback"


def run(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit code; the one place errors become exit codes.

    0 ok, 1 failed work, 2 bad or hostile input (and usage errors), 3 a
    repository server unreachable or failing, 130 interrupted (docs/cli.md).
    Every error is one line on stderr; an unexpected exception is an internal
    error, with its traceback only under --verbose or PKGREPO_DEBUG=1.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    verbose = os.environ.get("PKGREPO_DEBUG", "") not in ("", "0")
    try:
        with cli.make_context("pkgrepo", args) as ctx:
            verbose = verbose or bool(ctx.params.get("verbose"))
            cli.invoke(ctx)
        return 0
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("pkgrepo: aborted", err=True)
        return 130
    except click.ClickException as e:
        e.show()
        return 2 if isinstance(e, click.UsageError) else e.exit_code
    except PkgrepoError as e:
        click.echo(f"pkgrepo: error: {shown(str(e))}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("pkgrepo: interrupted", err=True)
        return 130
    except BrokenPipeError:
        # the reader of stdout went away (`pkgrepo search | head`): nothing to say, to no one
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as e:
        if verbose:
            traceback.print_exc()
        where = f"{e.filename}: " if e.filename else ""
        click.echo(f"pkgrepo: error: {shown(f'{where}{e.strerror or e}')}", err=True)
        return 1
    except Exception as e:
        if verbose:
            traceback.print_exc()
        detail = " ".join(str(e).split())[:500] or "no detail"
        hint = "" if verbose else f" ({DEBUG_HINT})"
        click.echo(f"pkgrepo: internal error: {type(e).__name__}: {detail}{hint}", err=True)
        return 1


def main() -> None:
    sys.exit(run())
