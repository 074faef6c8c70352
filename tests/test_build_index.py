"""`build --all` reads each package header of the output directory once per run, not per recipe."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import pkgrepo.builder.outdir
import pkgrepo.package.archive
import pkgrepo.resolve.native
from pkgrepo.builder.builder import Builder
from pkgrepo.builder.session import build_all
from pkgrepo.package.meta import PackageInfo
from pkgrepo.recipe.load import load_recipes
from pkgrepo.source import SourceCache
from tests.helpers.recipes import make_tarball, mirror_url

# name -> (build-depends, runtime dependencies)
PROBES = {
    "base": ([], []),
    "left": (["base"], []),
    "right": (["left"], ["left"]),
    "top": (["left", "right"], []),
}


def _recipes(tmp_path: Path) -> Path:
    url, sha = mirror_url(tmp_path, tmp_path / "s.tar.gz")
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    for name, (bdeps, runtime) in PROBES.items():
        (recipes / f"{name}.yaml").write_text(f"""package:
  name: {name}
  version: "1.0"
  description: probe {name}
  license: MIT
  dependencies: {{runtime: {runtime}}}
sources:
  - url: {url}
    sha256: "{sha}"
build-depends: {bdeps}
pipeline:
  - runs: |
      install -Dm644 data.txt ${{{{targets.destdir}}}}/usr/share/{name}/data.txt
      install -Dm644 data.txt ${{{{targets.destdir}}}}/usr/share/doc/{name}/README
""")
    return recipes


def _counting(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Count header reads, wherever a packages directory is read (the real function runs)."""
    reads: Counter[str] = Counter()
    real = pkgrepo.package.archive.read_info

    def read_info(path: Path) -> PackageInfo:
        reads[Path(path).name] += 1
        return real(path)

    for module in (pkgrepo.builder.outdir, pkgrepo.resolve.native):
        monkeypatch.setattr(module, "read_info", read_info)
    return reads


@pytest.mark.slow
def test_build_all_reads_each_header_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_tarball(tmp_path / "s.tar.gz", {"data.txt": "probe\n"})
    recipes = load_recipes(_recipes(tmp_path))
    out = tmp_path / "out"
    cache = SourceCache(tmp_path / "cache", mirror=tmp_path / "mirror")

    reads = _counting(monkeypatch)
    first = build_all(Builder(out, cache), recipes, sorted(PROBES), test=False)
    assert not any(r.cached for r in first)
    # Every package of this run was written by it: known from what was written, never read back.
    assert reads == Counter()
    packages = sorted(p.name for p in out.glob("*.pkg.tar.zst"))
    assert len(packages) == 2 * len(PROBES)  # each probe and its -doc

    reads.clear()
    again = build_all(Builder(out, cache), recipes, sorted(PROBES), test=False)
    assert all(r.cached for r in again)
    # A new run finds them on disk: each header read exactly once, however many recipes ask.
    assert reads == Counter(dict.fromkeys(packages, 1))

    reads.clear()
    builder = Builder(out, cache)
    forced = build_all(builder, recipes, ["right"], test=False, force=True)
    assert [r.cached for r in forced] == [True, True, False]  # base, left, then right rebuilt
    assert reads == Counter(dict.fromkeys(packages, 1))
    # The rebuilt package replaced its file and the view knows it without reading it again.
    assert {p.name for p in builder.index.packages()} == {f"{n}{s}" for n in PROBES for s in ("", "-doc")}
    assert max(reads.values()) == 1
