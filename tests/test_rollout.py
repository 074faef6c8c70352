"""Rollout installs its images from the repository it has just published to (issue 20).

Two throwaway recipes (no build dependency, so nothing else is built): `rpa`, which the
rollout rebuilds, and `rpb`, which it does not. After the first publish, rpb's package file is
deleted from the packages directory: a rollout that resolved against ./packages could not
re-assemble an image that needs rpb, one that reads the published repository through the
verifying client can, and the root records the repository as the source of every package.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.cli import run_cli
from tests.helpers.recipes import PROBE, make_tarball, mirror_env, mirror_url

D = "${{targets.destdir}}"


def write_recipe(tmp_path: Path, name: str, release: int, text: str) -> None:
    """A probe recipe whose package holds /usr/share/NAME/data with `text`."""
    tarball = tmp_path / "src.tar.gz"
    make_tarball(tarball, {"README": "probe\n"})
    url, sha = mirror_url(tmp_path, tarball)
    steps = [f"mkdir -p {D}/usr/share/{name}", f"echo {text} > {D}/usr/share/{name}/data"]
    recipe = PROBE.format(name=name, url=url, sha=sha, script="\n".join(" " * 6 + s for s in steps))
    recipes = tmp_path / "recipes"
    recipes.mkdir(exist_ok=True)
    (recipes / f"{name}.yaml").write_text(
        recipe.replace('version: "1.0"\n', f'version: "1.0"\n  release: {release}\n')
    )


@pytest.mark.slow  # three small builds and a rollout: about 45 s on a loaded 2-core machine
def test_rollout_installs_from_the_published_repository(tmp_path: Path):
    recipes, out, repo, keys = (tmp_path / n for n in ("recipes", "packages", "repo", "keys"))
    images = tmp_path / "images"
    images.mkdir()
    env = mirror_env(tmp_path)
    write_recipe(tmp_path, "rpa", 1, "a1")
    write_recipe(tmp_path, "rpb", 1, "b1")
    common = ("--recipes", str(recipes), "--out", str(out), "--cache", str(tmp_path / "c"))
    publish = ("--repo", str(repo), "--keys", str(keys))
    run_cli("repo", "init", str(repo), "--keys", str(keys), check=True)
    run_cli("rollout", "rpa", "rpb", *common, *publish, env=env, check=True)
    run_cli("install", "--packages", str(out), "--root", str(images / "base"), "rpa", "rpb", check=True)
    for f in out.glob("rpb-*"):
        f.unlink()  # in the repository, no longer in ./packages
    spec = tmp_path / "rp.yaml"
    spec.write_text("name: rp\npackages: [rpa, rpb]\nentrypoint: [/bin/true]\n")

    write_recipe(tmp_path, "rpa", 2, "a2")
    proc = run_cli(
        "rollout",
        "rpa",
        *common,
        *publish,
        "--images",
        str(images),
        "--image-spec",
        str(spec),
        "--json",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["rebuilt"] == ["rpa"]
    assert any(p.startswith("packages/rpa-1.0-r2") for p in report["published"]), report["published"]
    updated = {Path(i["path"]).name: i for i in report["images"]}
    assert updated["base"]["changed"] and updated["base"]["packages"] == {"rpa": "1.0-r2", "rpb": "1.0-r1"}
    assert updated["rp"]["changed"] and updated["rp"]["packages"] == {"rpa": "1.0-r2", "rpb": "1.0-r1"}
    base = images / "base"
    assert (base / "usr/share/rpa/data").read_text() == "a2\n"
    assert (base / "usr/share/rpb/data").read_text() == "b1\n"
    db = json.loads((base / "var/lib/pkgrepo/installed.json").read_text())["packages"]
    assert {r["source"] for r in db.values()} == {f"native:{repo}"}
