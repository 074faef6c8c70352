"""curl and git as people run them (issue 21): repo-data/images/curl.yaml and git.yaml from our packages.

Each prod root is run as a container would run it (nonroot, no shell), in a pod of its own
(tests/helpers/pods.py); a Python http.server in the same pod is the far end. Git's dev root
makes a repository and serves it the dumb way (`git update-server-info`), and both the dev and
the prod git clone it over HTTP through libcurl.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.helpers.cli import ROOT, run_cli
from tests.helpers.patches import missing_from, source_tarball
from tests.helpers.pods import Pod, container

IMAGES = ROOT / "repo-data" / "images"
GIT_ENV = {
    "HOME": "/tmp",  # the image's /home/nonroot is the host's uid 65532 here, unreadable through bwrap's mapping
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "pkgrepo",
    "GIT_AUTHOR_EMAIL": "test@pkgrepo.invalid",
    "GIT_AUTHOR_DATE": "1700000000 +0000",
    "GIT_COMMITTER_NAME": "pkgrepo",
    "GIT_COMMITTER_EMAIL": "test@pkgrepo.invalid",
    "GIT_COMMITTER_DATE": "1700000000 +0000",
}


@pytest.fixture(scope="module")
def roots(example_packages: Path, tmp_path_factory) -> Path:
    """curl prod, git prod (layouts and roots) and git dev (root)."""
    work = tmp_path_factory.mktemp("tools")
    for name, profile in (("curl", "prod"), ("git", "prod"), ("git", "dev")):
        run_cli(
            "image", "build", str(IMAGES / f"{name}.yaml"), "--profile", profile,
            "--packages", str(example_packages), "--out", str(work / f"{name}-{profile}-layout"),
            "--rootfs", str(work / f"{name}-{profile}"), check=True,
        )  # fmt: skip
    return work


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["curl", "git"])
def test_prod_image_passes_the_audit(roots: Path, name: str) -> None:
    root = roots / f"{name}-prod"
    assert not (root / "bin/sh").exists() and not (root / "usr/bin/busybox").exists()
    proc = run_cli("image", "audit", str(roots / f"{name}-prod-layout"))
    assert proc.returncode == 0, proc.stdout


@pytest.mark.slow
def test_curl_prod_fetches_over_http_as_nonroot(roots: Path, tmp_path: Path) -> None:
    version = run(container(roots / "curl-prod", ["/usr/bin/curl", "--version"]))
    first = version.stdout.splitlines()[0]
    assert first.startswith("curl 8.21.0 ") and "OpenSSL/3." in first and "nghttp2/" in first, first
    features = next(line for line in version.stdout.splitlines() if line.startswith("Features:")).split()
    assert {"HTTP2", "libz", "SSL", "HTTPS-proxy"} <= set(features), features
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "hello.txt").write_text("hello from the pod\n")
    with Pod() as pod:
        server = pod.start(
            [
                sys.executable,
                "-m",
                "http.server",
                "8000",
                "--bind",
                "127.0.0.1",
                "--directory",
                str(tmp_path / "www"),
            ]
        )
        pod.wait_port(8000, server)
        got = pod.run(
            container(roots / "curl-prod", ["/usr/bin/curl", "-fsS", "http://127.0.0.1:8000/hello.txt"])
        )
        assert got.stdout == "hello from the pod\n", got.stderr
        missing = pod.run(
            container(roots / "curl-prod", ["/usr/bin/curl", "-fsS", "http://127.0.0.1:8000/no"])
        )
        assert missing.returncode == 22 and "404" in missing.stderr, missing.stderr


MAKE_REPOSITORY = """set -e
cd /tmp && git init -q -b main src && cd src
echo one > a.txt && git add a.txt && git commit -qm first
echo two >> a.txt && git commit -qam second
git clone -q --bare /tmp/src /srv/repo.git
git -C /srv/repo.git update-server-info
git rev-parse HEAD
"""


@pytest.mark.slow
def test_git_clones_a_repository_served_over_http(roots: Path, tmp_path: Path) -> None:
    srv, work = tmp_path / "srv", tmp_path / "work"
    srv.mkdir()
    work.mkdir()
    dev, prod = roots / "git-dev", roots / "git-prod"
    made = run(container(dev, ["/bin/sh", "-c", MAKE_REPOSITORY], uid=0, env=GIT_ENV, binds={srv: "/srv"}))
    assert made.returncode == 0, made.stderr
    head = made.stdout.strip()
    assert (srv / "repo.git" / "info" / "refs").is_file()
    url = "http://127.0.0.1:8000/repo.git"
    with Pod() as pod:
        server = pod.start(
            [sys.executable, "-m", "http.server", "8000", "--bind", "127.0.0.1", "--directory", str(srv)]
        )
        pod.wait_port(8000, server)
        # dev, as root, with its shell
        script = f"git clone -q {url} /tmp/clone && git -C /tmp/clone rev-parse HEAD && cat /tmp/clone/a.txt"
        cloned = pod.run(container(dev, ["/bin/sh", "-c", script], uid=0, env=GIT_ENV))
        assert cloned.stdout == f"{head}\none\ntwo\n", cloned.stderr
        # prod, as nonroot, no shell: git alone (git-remote-http, libcurl)
        prod_clone = pod.run(
            container(
                prod, ["/usr/bin/git", "clone", "-q", url, "/work/clone"], env=GIT_ENV, binds={work: "/work"}
            )
        )
        assert prod_clone.returncode == 0, prod_clone.stderr
    checked = run(container(prod, ["/usr/bin/git", "-C", "/work/clone", "fsck", "--strict"], env=GIT_ENV,
                            binds={work: "/work"}))  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    rev = run(container(prod, ["/usr/bin/git", "-C", "/work/clone", "rev-parse", "HEAD"], env=GIT_ENV,
                        binds={work: "/work"}))  # fmt: skip
    assert rev.stdout.strip() == head, rev.stderr
    assert (work / "clone" / "a.txt").read_text() == "one\ntwo\n"


def test_git_vex_reason_holds_in_the_source() -> None:
    """repo-data/vex/git-cve-2023-32021.json: the id is Debian's typo for CVE-2024-32021, which Git's
    own release notes in the pinned 2.55.0 tarball name as fixed, and which none names."""
    vex = json.loads((ROOT / "repo-data" / "vex" / "git-cve-2023-32021.json").read_text())
    (statement,) = vex["statements"]
    assert statement["vulnerability"]["name"] == "CVE-2023-32021" and statement["status"] == "not_affected"
    notes: dict[str, str] = {}
    with tarfile.open(source_tarball("git")) as tar:
        for member in tar:
            parts = member.name.split("/")
            if member.isfile() and parts[1:3] == ["Documentation", "RelNotes"]:
                notes[parts[-1]] = tar.extractfile(member).read().decode()
    assert "CVE-2024-32021" in notes["2.39.4.adoc"] and "CVE-2024-32021" in notes["2.45.1.adoc"]
    assert not [name for name, text in notes.items() if "CVE-2023-32021" in text]


def test_nghttp2_vex_fixed_statement_holds_in_the_source() -> None:
    """repo-data/vex/nghttp2-1.70.0.json: every block Debian's CVE-2026-27135 patch (on 1.64.0) adds
    is in the pinned 1.70.0 source."""
    vex = json.loads((ROOT / "repo-data" / "vex" / "nghttp2-1.70.0.json").read_text())
    (statement,) = vex["statements"]
    assert statement["vulnerability"]["name"] == "CVE-2026-27135" and statement["status"] == "fixed"
    patch = ROOT / "tests" / "fixtures" / "release-fixes" / "nghttp2-CVE-2026-27135.patch"
    assert missing_from(source_tarball("nghttp2"), patch) == []
