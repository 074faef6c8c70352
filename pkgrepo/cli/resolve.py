"""`pkgrepo resolve` and `why`: the smallest closure of roots, and why a package is in it."""

from __future__ import annotations

import click

from pkgrepo.cli.options import EXTRA, INDEX, JSON, LIMIT, PROFILE, TRUST, emit, human, warn
from pkgrepo.resolve.profiles import PROFILES


@click.command()
@click.argument("roots", nargs=-1, required=True)
@INDEX
@TRUST
@PROFILE
@EXTRA
@LIMIT
@click.option(
    "--diff",
    nargs=2,
    type=click.Choice(PROFILES),
    default=None,
    help="Compare two profiles: `--diff prod dev` lists what dev adds.",
)
@click.option("--explain-size", is_flag=True, help="What dropping each package alone would remove.")
@JSON
def resolve(roots, index_spec, trust, profile, extras, time_limit, diff, explain_size, as_json) -> None:
    """The smallest installable closure of ROOTS (exact, with a proof of optimality)."""
    from pkgrepo.resolve.request import ProfileDiff, package_dict, resolve_roots, result_dict

    if diff:
        a_prof, b_prof = diff
        index, a = resolve_roots(index_spec, list(roots), a_prof, list(extras), time_limit, trust, warn)
        _, b = resolve_roots(index_spec, list(roots), b_prof, list(extras), time_limit, trust, warn)
        d = ProfileDiff.between(a, b)
        if as_json:
            emit(
                {
                    a_prof: result_dict(index, a, a_prof),
                    b_prof: result_dict(index, b, b_prof),
                    "added": [package_dict(p) for p in d.added],
                    "added_size": d.added_size,
                    "removed": d.removed,
                }
            )
            return
        click.echo(
            f"{a_prof}: {len(a.packages)} packages, {human(a.installed_size)}; "
            f"{b_prof}: {len(b.packages)} packages, {human(b.installed_size)}"
        )
        click.echo(f"{b_prof} adds {len(d.added)} packages, {human(d.added_size)}:")
        for p in d.added:
            click.echo(f"  + {p.name} {p.version} ({human(p.installed_size)})")
        for name in d.removed:
            click.echo(f"  - {name}")
        return
    index, result = resolve_roots(index_spec, list(roots), profile, list(extras), time_limit, trust, warn)
    data = result_dict(index, result, profile)
    weights = []
    if explain_size:
        from pkgrepo.resolve.explain import dominated_weights
        from pkgrepo.resolve.model import Candidates

        weights = dominated_weights(result, result.root_keys(Candidates(index)))
        data["explain_size"] = [
            {"package": w.key, "removes": w.removes, "installed_size": w.size} for w in weights
        ]
    if as_json:
        emit(data)
        return
    state = "optimal" if result.optimal else "best found within the time limit, not proven optimal"
    click.echo(
        f"{len(result.packages)} packages, {human(result.installed_size)} ({state}; {result.solver}, "
        f"{result.seconds:.2f}s) for {' '.join(roots)} [{profile}] from {index.label}"
    )
    for p in result.packages:
        click.echo(f"  {p.name} {p.version}  {human(p.installed_size)}")
    click.echo(
        "install order: "
        + ", ".join("(" + " ".join(g) + ")" if len(g) > 1 else g[0] for g in data["install_order"])
    )
    for cycle in data["cycles"]:
        click.echo(f"cycle: {' -> '.join(cycle)}")
    for w in weights:
        click.echo(f"dropping {w.key} removes {len(w.removes)} packages, {human(w.size)}")


@click.command()
@click.argument("roots", nargs=-1, required=True)
@click.option("--target", required=True, help="The package to explain.")
@INDEX
@TRUST
@PROFILE
@EXTRA
@LIMIT
@JSON
def why(roots, target, index_spec, trust, profile, extras, time_limit, as_json) -> None:
    """The shortest chain of dependencies from ROOTS to a package of their closure."""
    from pkgrepo.errors import BadInput
    from pkgrepo.resolve.explain import describe_step
    from pkgrepo.resolve.explain import why as chain
    from pkgrepo.resolve.model import Candidates, clause_text
    from pkgrepo.resolve.request import resolve_roots

    index, result = resolve_roots(index_spec, list(roots), profile, list(extras), time_limit, trust, warn)
    steps = chain(result, result.root_keys(Candidates(index)), target)
    if not steps:
        raise BadInput(f"{target}: not in the closure of {' '.join(roots)} ({len(result.packages)} packages)")
    if as_json:
        emit(
            {
                "steps": [
                    {
                        "from": None if c is None else p,
                        "clause": None if c is None else clause_text(c),
                        "to": t,
                    }
                    for p, c, t in steps
                ]
            }
        )
        return
    for step in steps:
        click.echo(describe_step(step))


COMMANDS = [resolve, why]
