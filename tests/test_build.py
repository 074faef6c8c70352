"""Real builds from real sources: musl, zlib, hello and busybox, installed and run."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from elftools.elf.elffile import ELFFile

from pkgrepo.package.archive import read_head
from tests.helpers.cli import run_cli
from tests.helpers.recipes import make_tarball, mirror_env, mirror_url


def _pkg(out: Path, name: str) -> Path:
    (path,) = [p for p in out.glob(f"{name}-[0-9]*.pkg.tar.zst")]
    return path


def test_hello_runs_on_musl_from_the_rootfs(built: Path, tmp_path: Path):
    root = tmp_path / "root"
    proc = run_cli("install", "--packages", str(built), "--root", str(root), "hello", "--json", check=True)
    installed = {p["name"] for p in json.loads(proc.stdout)["installed"]}
    assert installed == {"hello", "musl"}
    run = subprocess.run(["chroot", str(root), "/usr/bin/hello"], capture_output=True, text=True, check=True)
    assert run.stdout == "Hello, world!\n"
    with open(root / "usr/bin/hello", "rb") as f:
        interp = next(
            s for s in ELFFile(f).iter_segments() if s.header.p_type == "PT_INTERP"
        ).get_interp_name()
    assert interp == "/lib/ld-musl-x86_64.so.1"
    assert (root / interp.lstrip("/")).is_file()
    names = {p.name for p in root.rglob("*")}
    assert not names & {"libc.so.6", "ld-linux-x86-64.so.2"}  # nothing of the host's libc
    record = json.loads((root / "var/lib/pkgrepo/installed.json").read_text())
    assert sorted(record["packages"]) == ["hello", "musl"]
    assert "usr/bin/hello" in record["packages"]["hello"]["files"]


def test_automatic_dependencies_and_splits(built: Path):
    hello, _ = read_head(_pkg(built, "hello"))
    assert hello.depends == ["so:ld-musl-x86_64.so.1", "so:libc.musl-x86_64.so.1"]
    assert hello.provides == ["cmd:hello"]
    musl, files = read_head(_pkg(built, "musl"))
    assert {"so:libc.musl-x86_64.so.1", "so:ld-musl-x86_64.so.1"} <= set(musl.provides)
    assert not any(f.path.startswith("usr/include") for f in files)
    zlib, zfiles = read_head(_pkg(built, "zlib"))
    assert "so:libz.so.1" in zlib.provides
    assert all(f.path.startswith(("usr", "var")) for f in zfiles)  # var/lib/pkgrepo/sbom: its own SBOMs
    dev, dfiles = read_head(_pkg(built, "zlib-dev"))
    paths = {f.path for f in dfiles}
    assert {"usr/include/zlib.h", "usr/lib/libz.so", "usr/lib/libz.a", "usr/lib/pkgconfig/zlib.pc"} <= paths
    assert "zlib=1.3.2-r1" in dev.depends and "pc:zlib=1.3.2" in dev.provides
    _doc, docfiles = read_head(_pkg(built, "zlib-doc"))
    assert any(f.path.startswith("usr/share/man/") for f in docfiles)
    utils, _ = read_head(_pkg(built, "zlib-utils"))
    assert "so:libz.so.1" in utils.depends and "cmd:minigzip" in utils.provides
    busybox, _ = read_head(_pkg(built, "busybox"))
    assert "cmd:sh" in busybox.provides and "cmd:xz" not in busybox.provides


def test_second_build_is_cached(built: Path):
    proc = run_cli("build", "hello", "--out", str(built), "--json", check=True)
    results = {r["name"]: r for r in json.loads(proc.stdout)["builds"]}
    assert results["hello"]["cached"] and results["musl"]["cached"]
    assert Path(results["hello"]["log"]).exists()


def test_failing_test_block_leaves_no_package(built: Path, tmp_path: Path):
    out = tmp_path / "out"
    shutil.copytree(built, out)
    sha = make_tarball(tmp_path / "s.tar.gz", {"probe.sh": "#!/bin/sh\nexit 3\n"})
    url, _ = mirror_url(tmp_path, tmp_path / "s.tar.gz")
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "probe.yaml").write_text(f"""package:
  name: probe
  version: "1.0"
  description: a program that fails its test
  license: MIT
sources:
  - url: {url}
    sha256: "{sha}"
pipeline:
  - runs: install -Dm755 probe.sh ${{{{targets.destdir}}}}/usr/bin/probe
test:
  environment: [busybox]
  pipeline:
    - runs: probe
""")
    proc = run_cli("build", "probe", "--recipes", str(recipes), "--out", str(out), env=mirror_env(tmp_path))
    assert proc.returncode == 1
    assert "probe.yaml: test step 1 (runs) failed with exit code 3" in proc.stderr
    assert not list(out.glob("probe-*.pkg.tar.zst"))
    assert "$ (test) probe" in (out / "logs/probe.log").read_text()


def test_install_unknown_name_suggests(built: Path, tmp_path: Path):
    proc = run_cli("install", "--packages", str(built), "--root", str(tmp_path / "r"), "helo")
    assert proc.returncode == 2
    assert "did you mean hello" in proc.stderr
    assert not (tmp_path / "r" / "usr").exists()


def test_file_conflict_refused(built: Path, tmp_path: Path):
    root = tmp_path / "root"
    run_cli("install", "--packages", str(built), "--root", str(root), "hello", check=True)
    other = tmp_path / "other"
    other.mkdir()
    # A second package shipping /usr/bin/hello: repackage busybox's metadata under a new name.
    from pkgrepo.package.archive import scan_tree, write_package

    stage = tmp_path / "stage"
    (stage / "usr/bin").mkdir(parents=True)
    (stage / "usr/bin/hello").write_text("#!/bin/sh\n")
    info, _ = read_head(_pkg(built, "hello"))
    manifest = scan_tree(stage, ["usr/bin/hello"])
    info = info.replace(
        name="impostor", depends=(), provides=(), installed_size=sum(e.size for e in manifest)
    )
    write_package(stage, manifest, info, other / info.filename)
    before = (root / "usr/bin/hello").read_bytes()
    proc = run_cli("install", "--packages", str(other), "--root", str(root), "impostor")
    assert proc.returncode == 2
    assert "impostor: /usr/bin/hello is already owned by hello" in proc.stderr
    assert (root / "usr/bin/hello").read_bytes() == before
