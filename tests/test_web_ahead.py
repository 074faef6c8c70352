"""The site rendered ahead (`pkgrepo.web.ahead`): a child process renders the catalogue while
the publish signs, and the generation after the publish takes it only when the view it
verifies is the one the child rendered from. Taken or not, the site is the bytes of a site
generated alone; a child that fails, is killed or rendered another view is not taken, and
what it wrote is removed."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import pkgrepo.web.ahead
import pkgrepo.web.site
from pkgrepo.attest.advisories import data_dir
from pkgrepo.errors import BadInput
from pkgrepo.repo.keys import KeyStore
from pkgrepo.repo.repository import Repository
from pkgrepo.web.ahead import Ahead
from pkgrepo.web.site import SITES, generate, load_inputs
from tests.helpers.archives import make_package
from tests.helpers.cli import run_cli


@pytest.fixture(scope="module")
def inputs():
    return load_inputs(data_dir("advisories"), data_dir("vex"))


def _repo(tmp_path: Path, count: int = 6) -> tuple[Repository, list[Path]]:
    pool = tmp_path / "pool"
    pool.mkdir(exist_ok=True)
    files = [make_package(pool, f"p{i}") for i in range(count)]
    repo = Repository(tmp_path / "repo", KeyStore(tmp_path / "keys"))
    repo.init()
    return repo, files


def _unrendered(monkeypatch) -> None:
    """From here on this process renders no site (a child forked before keeps the real code)."""

    def refuse(*_args, **_kwargs):
        raise AssertionError("rendered after the publish, not taken from the child")

    monkeypatch.setattr(pkgrepo.web.site, "render_site", refuse)


def _alone(repo: Repository, inputs, tmp_path: Path) -> str:
    return generate(repo.root, *inputs, cache=tmp_path / "alone").digest


def _naming(path: Path) -> list[int]:
    """The processes whose command line names `path` (`pgrep -f`, without needing procps)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(path).encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue  # gone meanwhile
    return found


def _sites(repo: Repository) -> list[str]:
    return sorted(p.name for p in (repo.root / SITES).iterdir())


def test_the_site_rendered_while_the_publish_signs_is_taken_and_is_the_site_generated_alone(
    tmp_path: Path, monkeypatch, inputs
):
    repo, files = _repo(tmp_path)
    with Ahead(repo.root, *inputs, cache=tmp_path / "cache") as ahead:
        report = repo.publish(files, written=ahead.start)
        _unrendered(monkeypatch)
        site = generate(repo.root, *inputs, cache=tmp_path / "cache", vouched=report.vouched, ahead=ahead)
    monkeypatch.undo()
    assert site.packages == 6
    assert _sites(repo) == [os.readlink(repo.root / "web").removeprefix(f"{SITES}/")]  # no leftover
    assert _alone(repo, inputs, tmp_path) == site.digest


def test_a_child_that_rendered_another_view_is_not_taken(tmp_path: Path, inputs):
    repo, files = _repo(tmp_path)
    with Ahead(repo.root, *inputs, cache=tmp_path / "cache") as ahead:
        report = repo.publish(files[:3], written=ahead.start)
        repo.publish(files[3:])  # another publish commits before the generation: another view
        site = generate(repo.root, *inputs, cache=tmp_path / "cache", vouched=report.vouched, ahead=ahead)
    assert site.packages == 6  # the view verified, not the child's three
    assert len(_sites(repo)) == 1  # the child's directory is removed
    assert _alone(repo, inputs, tmp_path) == site.digest


@pytest.mark.parametrize("how", ["fails", "killed"])
def test_a_child_that_fails_or_is_killed_is_not_taken(tmp_path: Path, monkeypatch, inputs, how):
    repo, files = _repo(tmp_path)
    if how == "fails":  # the child's last step fails after it rendered (the child inherits this)

        def full(*_args):
            raise OSError("no space left on device")

        monkeypatch.setattr(pkgrepo.web.ahead, "written", full)
    with Ahead(repo.root, *inputs, cache=tmp_path / "cache") as ahead:
        report = repo.publish(files, written=ahead.start)
        assert ahead._child is not None
        if how == "killed":
            os.kill(ahead._child[0], signal.SIGKILL)
        site = generate(repo.root, *inputs, cache=tmp_path / "cache", vouched=report.vouched, ahead=ahead)
        assert ahead._child is None
    assert site.packages == 6
    assert len(_sites(repo)) == 1
    assert _alone(repo, inputs, tmp_path) == site.digest


def test_a_publish_that_fails_after_the_fork_leaves_no_child_and_the_old_site(tmp_path: Path, inputs):
    repo, files = _repo(tmp_path)
    generate(repo.root, *inputs, cache=tmp_path / "cache")
    before = os.readlink(repo.root / "web")
    children: list[int] = []

    def start_then_fail(preview):
        ahead.start(preview)
        children.append(ahead._child[0])
        raise OSError("disk full")  # the publish fails while the child renders

    with pytest.raises(OSError), Ahead(repo.root, *inputs, cache=tmp_path / "cache") as ahead:
        repo.publish(files, written=start_then_fail)
    with pytest.raises(ChildProcessError):
        os.waitpid(children[0], os.WNOHANG)  # reaped by the context's exit
    assert os.readlink(repo.root / "web") == before
    generate(repo.root, *inputs, cache=tmp_path / "cache")  # the same repository: the same site
    assert _sites(repo) == [before.removeprefix(f"{SITES}/")]  # and the child's directory is removed


def test_pkgrepo_publish_renders_ahead_and_leaves_no_process(tmp_path: Path, inputs):
    """The CLI path: `pkgrepo publish` forks the child, and no child outlives the command (its
    command line is the publish's: it names the repository)."""
    repo, files = _repo(tmp_path)
    env = {"PKGREPO_CACHE": str(tmp_path / "cli-cache")}
    keys = ["--keys", str(tmp_path / "keys")]
    proc = run_cli("publish", "--repo", str(repo.root), *keys, *map(str, files), env=env, check=True)
    assert f"site {repo.root / 'web'}/index.html" in proc.stdout
    assert not _naming(repo.root)
    assert len(_sites(repo)) == 1
    assert generate(repo.root, *inputs, cache=tmp_path / "cli-cache" / "web").digest == _alone(
        repo, inputs, tmp_path
    )


SCRIPT = """
import sys, time
from pathlib import Path
import pkgrepo.web.ahead
from pkgrepo.repo.repository import Repository
from pkgrepo.web.ahead import Ahead
pkgrepo.web.ahead.render_site = lambda *a, **k: time.sleep(120)  # the child hangs, as on a FIFO
repo = Repository.at(Path(sys.argv[1]), Path(sys.argv[2]))
with Ahead(repo.root, [], [], cache=Path(sys.argv[3])) as ahead:
    repo.publish([Path(p) for p in sys.argv[4:]], written=ahead.start)
    print(ahead._child[0], flush=True)
    time.sleep(120)
"""


def test_a_publish_killed_with_9_leaves_no_child(tmp_path: Path):
    """The kernel kills the child with its parent: a hung child does not outlive a killed
    publish (nor hold its repository's lock)."""
    repo, files = _repo(tmp_path, count=2)
    argv = [sys.executable, "-c", SCRIPT, str(repo.root), str(tmp_path / "keys"), str(tmp_path / "c")]
    parent = subprocess.Popen([*argv, *map(str, files)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    os.kill(child, 0)  # alive, rendering
    parent.kill()
    parent.wait()
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("the child outlived its killed parent")


def test_a_fifo_among_the_bins_ends_the_child_and_is_refused_by_the_generation(tmp_path: Path, inputs):
    """The child reads the bins on disk unchecked, but as `verify` reads them: a FIFO in place
    of a bin the publish does not touch ends the child at once, and the generation refuses it."""
    repo, files = _repo(tmp_path, count=1)
    meta = repo.root / "metadata"
    untouched = sorted(meta.glob("1.bins-*.json"))[-1]  # version 1: no publish signed it yet
    untouched.unlink()
    os.mkfifo(untouched)
    with Ahead(repo.root, *inputs, cache=tmp_path / "cache") as ahead:
        report = repo.publish(files, written=ahead.start)
        assert ahead._child is not None
        child = ahead._child[0]
        with pytest.raises(BadInput, match="not a regular file"):
            generate(repo.root, *inputs, cache=tmp_path / "cache", vouched=report.vouched, ahead=ahead)
    with pytest.raises(ChildProcessError):
        os.waitpid(child, os.WNOHANG)  # reaped by the context's exit


def test_a_fifo_in_a_site_directory_of_the_same_digest_is_not_waited_on(tmp_path: Path, inputs):
    """The same repository generated again compares the directory its digest names with the
    site's hashes: a page there replaced by a FIFO is not waited on, and the site is written
    under the next name."""
    repo, files = _repo(tmp_path, count=2)
    repo.publish(files)
    first = generate(repo.root, *inputs, cache=tmp_path / "cache")
    current = (repo.root / "web").resolve()
    page = current / "p" / "p0.html"
    page.unlink()
    os.mkfifo(page)
    again = generate(repo.root, *inputs, cache=tmp_path / "other")  # a cache that reuses nothing
    assert again.digest == first.digest
    assert (repo.root / "web").resolve() != current and (repo.root / "web" / "p" / "p0.html").is_file()


@pytest.mark.parametrize("kind", ["fifo", "link-to-fifo", "link-to-zero"])
def test_a_page_record_not_a_regular_file_is_neither_waited_on_nor_followed(tmp_path: Path, inputs, kind):
    """The cache's record of the current site's pages (`$PKGREPO_CACHE/web/sites/NAME.json`),
    read by the child and by a generation alone, replaced by a FIFO or a link (to a FIFO, to
    /dev/zero): `pkgrepo publish` and `pkgrepo repo web` do not hang, render every page, and
    the site is the one generated alone."""
    repo, files = _repo(tmp_path, count=3)
    env = {"PKGREPO_CACHE": str(tmp_path / "cli-cache")}
    keys = ["--keys", str(tmp_path / "keys")]
    run_cli("publish", "--repo", str(repo.root), *keys, *map(str, files[:2]), env=env, check=True)
    name = os.readlink(repo.root / "web").removeprefix(f"{SITES}/")
    record = tmp_path / "cli-cache" / "web" / "sites" / f"{name}.json"
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    record.unlink()
    if kind == "fifo":
        os.mkfifo(record)
    else:
        record.symlink_to(fifo if kind == "link-to-fifo" else "/dev/zero")
    run_cli("publish", "--repo", str(repo.root), *keys, str(files[2]), env=env, check=True, timeout=30)
    assert generate(repo.root, *inputs, cache=tmp_path / "cli-cache" / "web").digest == _alone(
        repo, inputs, tmp_path
    )
    name = os.readlink(repo.root / "web").removeprefix(f"{SITES}/")
    record = tmp_path / "cli-cache" / "web" / "sites" / f"{name}.json"
    record.unlink()
    os.mkfifo(record)
    run_cli("repo", "web", str(repo.root), env=env, check=True, timeout=30)


def test_a_child_site_removed_by_another_generation_is_rendered_again(tmp_path: Path, inputs):
    """Between the publish and its generation another generation (`pkgrepo repo web` with
    other advisories, waiting on the lock) took the lock and removed the child's finished
    directory, as it removes every directory not served: the view is the same, so the child's
    site would be taken, but it is gone; the publish's generation renders it again."""
    repo, files = _repo(tmp_path, count=3)
    with Ahead(repo.root, *inputs, cache=tmp_path / "cache") as ahead:
        report = repo.publish(files, written=ahead.start)
        assert ahead._child is not None
        pid, read = ahead._child
        with os.fdopen(read, "rb") as f:  # the child's answer, read to its end: the child is done
            (tmp_path / "answer").write_bytes(f.read())
        ahead._child = (pid, os.open(tmp_path / "answer", os.O_RDONLY))
        assert any(n.startswith(".tmp-") for n in _sites(repo))
        generate(repo.root, [], [], cache=tmp_path / "other")  # the other generation
        assert not any(n.startswith(".tmp-") for n in _sites(repo))
        site = generate(repo.root, *inputs, cache=tmp_path / "cache", vouched=report.vouched, ahead=ahead)
    assert site.packages == 3
    assert _alone(repo, inputs, tmp_path) == site.digest


def test_an_evidence_write_that_fails_after_the_fork_leaves_the_old_repository_and_nothing_else(
    tmp_path: Path,
):
    """`pkgrepo publish` whose evidence write fails after the child forked (a file size limit,
    as a full disk): exit 1, the metadata and targets as they were (no half-written file left
    to fill the disk), no child left, the lock free; the next publish succeeds."""
    import resource

    repo, files = _repo(tmp_path, count=1)
    evidence = files[0].with_name(files[0].name + ".spdx.json")
    evidence.write_bytes(b"{" + b" " * 2**21 + b"}")
    env = {"PKGREPO_CACHE": str(tmp_path / "cli-cache")}
    keys = ["--keys", str(tmp_path / "keys")]

    def files_of(top: Path) -> dict[str, bytes]:
        return {str(p.relative_to(top)): p.read_bytes() for p in sorted(top.rglob("*")) if p.is_file()}

    before = {d: files_of(repo.root / d) for d in ("metadata", "targets")}
    limit = 2**20
    proc = subprocess.run(
        [sys.executable, "-m", "pkgrepo", "publish", "--repo", str(repo.root), *keys, str(files[0])],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)),
        timeout=60,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and f".{evidence.name}: File too large" in proc.stderr, proc.stderr
    assert files_of(repo.root / "metadata") == before["metadata"]
    for rel, data in files_of(repo.root / "targets").items():  # what no metadata names is whole
        name = os.path.basename(rel)
        assert rel in before["targets"] or name.startswith(hashlib.sha256(data).hexdigest() + "."), rel
    assert not _naming(repo.root)
    with Repository.at(repo.root).lock():  # free: taken at once
        pass
    run_cli("publish", "--repo", str(repo.root), *keys, str(files[0]), env=env, check=True)


def test_a_fork_that_fails_leaves_the_publish_and_the_site_rendered_after(
    tmp_path: Path, monkeypatch, inputs
):
    """No process left to fork (`ulimit -u`: EAGAIN): the publish goes on without a child and
    its generation renders the site, the one generated alone."""
    import errno

    repo, files = _repo(tmp_path, count=2)

    def no_fork() -> int:
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    fds = len(os.listdir("/proc/self/fd"))
    with Ahead(repo.root, *inputs, cache=tmp_path / "cache") as ahead:
        report = repo.publish(files, written=ahead.start)
        assert ahead._child is None and len(os.listdir("/proc/self/fd")) == fds  # the pipe closed
        site = generate(repo.root, *inputs, cache=tmp_path / "cache", vouched=report.vouched, ahead=ahead)
    monkeypatch.undo()
    assert site.packages == 2 and _alone(repo, inputs, tmp_path) == site.digest
    assert len(_sites(repo)) == 1


def test_a_bin_edited_on_disk_while_the_child_reads_it_is_not_shown(tmp_path: Path, inputs):
    """A bin the publish does not sign anew, edited on disk (a target added, not signed) while
    the child reads the bins unchecked and restored before the generation: the child rendered
    a view with that target, the generation verifies one without it, so the child's site is
    not taken; the site served is the one generated alone."""
    import json

    repo, files = _repo(tmp_path, count=2)
    meta = repo.root / "metadata"
    untouched = sorted(meta.glob("1.bins-*.json"))[-1]
    signed = untouched.read_bytes()
    edited = json.loads(signed)
    edited["signed"]["targets"]["packages/evidence-of-nothing.intoto.json"] = {
        "length": 1,
        "hashes": {"sha256": "0" * 64},
    }

    with Ahead(repo.root, *inputs, cache=tmp_path / "cache") as ahead:

        def edit_then_start(preview):
            untouched.write_text(json.dumps(edited))
            ahead.start(preview)

        report = repo.publish(files, written=edit_then_start)
        assert ahead._child is not None
        pid, read = ahead._child
        with os.fdopen(read, "rb") as f:  # the child's answer: it rendered from the edited bin
            (tmp_path / "answer").write_bytes(f.read())
        assert (tmp_path / "answer").stat().st_size > 0
        ahead._child = (pid, os.open(tmp_path / "answer", os.O_RDONLY))
        untouched.write_bytes(signed)
        taken = []
        real_take = ahead.take
        ahead.take = lambda verified: taken.append(real_take(verified)) or taken[-1]
        site = generate(repo.root, *inputs, cache=tmp_path / "cache", vouched=report.vouched, ahead=ahead)
    assert taken == [None]
    assert site.packages == 2 and _alone(repo, inputs, tmp_path) == site.digest
