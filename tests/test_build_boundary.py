"""The recipe -> host boundary (issue 7, findings 1-7), attacked through the real CLI and real bwrap.

Each test plays a hostile recipe author and then looks at the host: the file
system, a canary secret (root-owned, 0600, in a temporary directory; never a
real key) and the packages the build produced.
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import time
from pathlib import Path

import pytest

from pkgrepo.package.archive import iter_members, read_head
from tests.helpers.cli import run_cli
from tests.helpers.recipes import make_tarball, mirror_env, mirror_url

SECRET = "Version: s3cr3t-canary-7"
HEAD = """package:
  name: probe
  version: "1.0"
  description: hostile probe
  license: MIT
{package_extra}sources:
  - url: {url}
    sha256: "{sha}"
{more}pipeline:
  - runs: |
{script}
"""


def canary(tmp_path: Path) -> Path:
    """A root-only secret outside every bind of the sandbox."""
    d = tmp_path / "secret"
    d.mkdir()
    f = d / "signing.key"
    f.write_text(SECRET + "\n")
    f.chmod(0o600)
    return f


def probe(
    tmp_path: Path,
    script: str,
    more: str = "",
    package_extra: str = "",
    env: dict[str, str] | None = None,
    files: dict[str, str] | None = None,
    check: bool = True,
    steps: str = "",
):
    if not (tmp_path / "probe.tar.gz").exists():  # gzip stamps the time: made once, so rebuilds match
        make_tarball(tmp_path / "probe.tar.gz", files or {"main.c": "int main(void){return 0;}\n"})
    url, sha = mirror_url(tmp_path, tmp_path / "probe.tar.gz")
    recipes = tmp_path / "recipes"
    recipes.mkdir(exist_ok=True)
    body = "\n".join("      " + line for line in script.strip().splitlines())
    (recipes / "probe.yaml").write_text(
        HEAD.format(url=url, sha=sha, more=more, package_extra=package_extra, script=body) + steps
    )
    out = tmp_path / "out"
    proc = run_cli(
        "build",
        "probe",
        "--force",
        "--recipes",
        str(recipes),
        "--out",
        str(out),
        "--cache",
        str(tmp_path / "c"),
        env={**mirror_env(tmp_path), **(env or {})},
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc, out


def members(out: Path) -> dict[str, bytes]:
    return {m.path: m.data for m in iter_members(next(out.glob("probe-1.0-*.pkg.tar.zst")))}


def one_line_error(proc, code: int) -> str:
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("pkgrepo: error:") and "Traceback" not in proc.stderr, proc.stderr
    return lines[-1]


D = "${{targets.destdir}}"


def test_no_capabilities_no_host_write_no_key(tmp_path: Path):
    """Finding 1 and the keys: remount /usr, write /usr, read a root-only secret by every route."""
    secret = canary(tmp_path)
    marker = Path("/usr/share/pkgrepo-boundary-marker")
    _, out = probe(
        tmp_path,
        f"""
mkdir -p {D}/usr/share/probe
(mount -o remount,rw,bind /usr && echo remounted) > {D}/usr/share/probe/mount 2>&1 || true
(touch {marker} && echo wrote) > {D}/usr/share/probe/write 2>&1 || true
for p in {secret} /proc/1/root{secret} /proc/self/root{secret}; do cat $p; done > {D}/usr/share/probe/read 2>&1 || true
grep Cap /proc/self/status > {D}/usr/share/probe/caps
cat /proc/self/uid_map > {D}/usr/share/probe/uid_map
""",
    )
    files = members(out)
    assert b"remounted" not in files["usr/share/probe/mount"]
    assert b"wrote" not in files["usr/share/probe/write"] and not marker.exists()
    assert SECRET.encode() not in b"".join(files.values())
    assert all(line.endswith(b"0000000000000000") for line in files["usr/share/probe/caps"].splitlines())
    if os.geteuid() == 0:  # the sandbox's root is the unprivileged build user on the host
        assert files["usr/share/probe/uid_map"].split() == [b"0", b"64055", b"1"]


def test_caller_environment_not_visible(tmp_path: Path):
    """Finding 2: /proc/1/environ (bwrap itself) and the steps' environment hold nothing of the caller's."""
    _, out = probe(
        tmp_path,
        f"""
mkdir -p {D}/usr/share/probe
cat /proc/1/environ > {D}/usr/share/probe/pid1 || true
env > {D}/usr/share/probe/env
""",
        env={"PKGREPO_CANARY": "ci-secret-token-42"},
    )
    assert b"ci-secret-token-42" not in b"".join(members(out).values())


def test_planted_host_tools_never_run(tmp_path: Path):
    """Finding 1/5: programs named like host tools, first in the caller's PATH, are never executed."""
    bin_dir, ran = tmp_path / "bin", tmp_path / "ran"
    bin_dir.mkdir()
    for tool in ("strip", "objcopy", "tar", "patch", "bwrap", "cat"):
        (bin_dir / tool).write_text(f"#!/bin/sh\necho {tool} >> {ran}\nexit 1\n")
        (bin_dir / tool).chmod(0o755)
    _, out = probe(
        tmp_path,
        f"mkdir -p {D}/usr/bin\ncc -static -o {D}/usr/bin/prog main.c",
        steps="  - uses: strip\n",
        env={"PATH": f"{bin_dir}:{os.environ['PATH']}"},
    )
    assert not ran.exists()
    assert b".symtab" not in members(out)["usr/bin/prog"]  # stripped, by the sandbox's strip


@pytest.mark.parametrize(
    ("source", "expect"),
    [
        ("url: file:///etc/shadow", "7: sources.0.url: only https:// and http:// URLs"),
        ("url: 'data:text/plain,x'", "7: sources.0.url: only https:// and http:// URLs"),
        ("url: example.org/x.tar.gz", "7: sources.0.url: only https:// and http:// URLs"),
        (
            "url: https://h.invalid/x\n    filename: ../../x",
            "8: sources.0.filename: filename must be a relative",
        ),
        (
            "url: https://h.invalid/x\n    filename: /etc/cron.d/x",
            "8: sources.0.filename: filename must be a",
        ),
        ("url: https://h.invalid/x\n    filename: a/b", "8: sources.0.filename: filename must be a single"),
        ("url: https://h.invalid/x\n    destination: a//b", "8: sources.0.destination: destination must be"),
    ],
)
def test_bad_source_refused_at_load(tmp_path: Path, source: str, expect: str):
    """Finding 3: schemes other than http(s), and escaping names, are refused before anything runs."""
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "probe.yaml").write_text(
        HEAD.format(url="X", sha="0" * 64, more="", package_extra="", script="      true").replace(
            "url: X", source
        )
    )
    proc = run_cli(
        "build",
        "probe",
        "--recipes",
        str(recipes),
        "--out",
        str(tmp_path / "out"),
        "--cache",
        str(tmp_path / "c"),
    )
    line = one_line_error(proc, 2)
    assert f"{recipes / 'probe.yaml'}:{expect}" in line
    assert not (tmp_path / "c").exists() and not (tmp_path / "out").exists()


def test_patch_path_refused(tmp_path: Path):
    """Finding 3: a patch path leaving the recipe directory, or a link beside it, is refused."""
    proc, _ = probe(tmp_path, "true", more="patches:\n  - file: ../../etc/shadow\n", check=False)
    assert "patches.0.file: patch file must be a relative path" in one_line_error(proc, 2)
    (tmp_path / "recipes/p").mkdir()
    (tmp_path / "recipes/p/fix.patch").symlink_to(canary(tmp_path))
    proc, _ = probe(tmp_path, "true", more="patches:\n  - file: p/fix.patch\n", check=False)
    assert "patches: p/fix.patch is not a regular file beside the recipe" in one_line_error(proc, 2)


def test_destination_through_a_symlink_stays_inside(tmp_path: Path):
    """Finding 3: a tarball's symlink to a host directory, then a source unpacked through it."""
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    with tarfile.open(tmp_path / "evil.tar", "w") as tar:
        link = tarfile.TarInfo("top/escape")
        link.type, link.linkname, link.mtime = tarfile.SYMTYPE, str(host_dir), 1_600_000_000
        tar.addfile(link)
        f = tarfile.TarInfo("top/README")
        f.size, f.mtime = 1, 1_600_000_000
        tar.addfile(f, io.BytesIO(b"x"))
    (tmp_path / "payload").write_text("written through the link\n")
    url1, sha1 = mirror_url(tmp_path, tmp_path / "evil.tar")
    url2, sha2 = mirror_url(tmp_path, tmp_path / "payload")
    more = f"""  - url: {url1}
    sha256: "{sha1}"
  - url: {url2}
    sha256: "{sha2}"
    extract: false
    destination: escape
"""
    proc, _ = probe(tmp_path, "true", more=more, check=False)
    # The link names a directory that does not exist in the sandbox: the copy fails there.
    assert "source payload failed" in one_line_error(proc, 1)
    assert list(host_dir.iterdir()) == []


def test_pc_symlink_to_a_root_only_file_does_not_leak(tmp_path: Path):
    """Finding 4: host-side scanning never follows a link out of the staged tree."""
    secret = canary(tmp_path)
    _, out = probe(tmp_path, f"mkdir -p {D}/usr/lib/pkgconfig\nln -s {secret} {D}/usr/lib/pkgconfig/leak.pc")
    infos = [read_head(p)[0] for p in out.glob("*.pkg.tar.zst")]
    text = " ".join(str(i.to_dict()) for i in infos)
    assert "s3cr3t" not in text and "pc:leak" in text


def test_fifo_in_staged_tree_is_refused(tmp_path: Path):
    """Finding 4: a FIFO is refused with one line naming it, instead of hanging the build."""
    start = time.monotonic()
    proc, out = probe(tmp_path, f"mkdir -p {D}/usr/share\nmkfifo {D}/usr/share/pipe", check=False)
    line = one_line_error(proc, 1)
    assert "usr/share/pipe is a FIFO" in line and time.monotonic() - start < 60
    assert not list(out.glob("*.pkg.tar.zst"))


def test_step_time_limit_kills_the_step(tmp_path: Path):
    """Finding 4: `timeout:` kills the whole sandbox at the deadline with one line naming step and limit."""
    recipes = tmp_path / "recipes"
    start = time.monotonic()
    proc, _ = probe(tmp_path, "(sleep 1000 &) ; sleep 1000", package_extra="  timeout: 2\n", check=False)
    line = one_line_error(proc, 1)
    assert f"{recipes / 'probe.yaml'}: step 1 (runs) was killed after its time limit of 2 s" in line
    assert time.monotonic() - start < 60


def test_caller_tar_options_do_not_change_bytes(tmp_path: Path):
    """Finding 5: TAR_OPTIONS (and the rest of the caller's environment) cannot change a package."""
    _, out = probe(
        tmp_path,
        f"mkdir -p {D}/usr/share\ncp main.c {D}/usr/share/main.c\nls -l --time-style=+%s . > {D}/usr/share/ls",
    )
    first = {p.name: p.read_bytes() for p in out.glob("*.pkg.tar.zst")}
    time.sleep(1.1)
    _, out = probe(
        tmp_path,
        f"mkdir -p {D}/usr/share\ncp main.c {D}/usr/share/main.c\nls -l --time-style=+%s . > {D}/usr/share/ls",
        env={"TAR_OPTIONS": "--touch", "SOURCE_DATE_EPOCH": "1", "TZ": "Asia/Tokyo"},
    )
    assert {p.name: p.read_bytes() for p in out.glob("*.pkg.tar.zst")} == first


def test_unextracted_source_dated_by_the_sources_not_the_copy(tmp_path: Path):
    """Finding 6: an `extract: false` file gets the archives' date; alone, the recipe must give one."""
    (tmp_path / "notes.txt").write_text("as is\n")
    url, sha = mirror_url(tmp_path, tmp_path / "notes.txt")
    more = f'  - url: {url}\n    sha256: "{sha}"\n    extract: false\n    destination: extra\n'
    _, out = probe(
        tmp_path, f"mkdir -p {D}/usr/share\nstat -c %Y extra/notes.txt > {D}/usr/share/mtime", more=more
    )
    assert members(out)["usr/share/mtime"] == b"1600000000\n"  # make_tarball's mtime
    recipes = tmp_path / "recipes"
    text = (recipes / "probe.yaml").read_text()
    alone = text.replace(text[text.index("  - url:") : text.index(more)], "")
    (recipes / "probe.yaml").write_text(alone)
    proc = run_cli("build", "probe", "--recipes", str(recipes), "--out", str(out), env=mirror_env(tmp_path))
    assert "nothing dates the build; set package.source-date-epoch" in one_line_error(proc, 2)


def test_clock_is_varied_by_check_reproducible(tmp_path: Path):
    """Finding 6: a build that embeds the time to the second is caught."""
    _, out = probe(tmp_path, f"mkdir -p {D}/usr/share\ndate -u +%Y%m%d%H%M%S > {D}/usr/share/when")
    proc = run_cli(
        "build",
        "--check-reproducible",
        "probe",
        "--recipes",
        str(tmp_path / "recipes"),
        "--out",
        str(out),
        "--cache",
        str(tmp_path / "c"),
    )
    assert proc.returncode == 1 and "files differ: usr/share/when" in proc.stderr, proc.stderr


def test_host_interpreter_in_shebang_fails(tmp_path: Path):
    """Finding 7: a packaged script whose #! names an interpreter no package provides fails the build."""
    proc, _ = probe(
        tmp_path,
        f"mkdir -p {D}/usr/bin\nprintf '#!/bin/bash\\necho\\n' > {D}/usr/bin/tool\nchmod 755 {D}/usr/bin/tool",
        check=False,
    )
    assert "/usr/bin/tool (package probe) starts with #!/bin/bash" in one_line_error(proc, 1)


@pytest.mark.slow
def test_xz_scripts_resolve(built: Path, tmp_path: Path):
    """Finding 7: xz-scripts' wrappers use /bin/sh, so the package resolves against the project's own packages."""
    out = tmp_path / "out"
    shutil.copytree(built, out)
    run_cli("build", "xz", "--no-test", "--out", str(out), check=True)
    info, _files = read_head(next(out.glob("xz-scripts-*.pkg.tar.zst")))
    assert "cmd:bash" not in info.depends and "cmd:sh" in info.depends
    proc = run_cli("resolve", "--index", f"native:{out}", "xz-scripts", check=True)
    assert "xz-scripts" in proc.stdout


def test_install_root_replaced_by_a_link_is_refused(tmp_path: Path):
    """Finding 4: the host never walks a link the build put in place of its install root."""
    secret = canary(tmp_path)
    proc, out = probe(tmp_path, f"rm -rf {D}\nln -s {secret.parent} {D}", check=False)
    assert "the build replaced this directory with something else" in one_line_error(proc, 1)
    assert not list(out.glob("*.pkg.tar.zst"))


@pytest.mark.parametrize("link", ["file", "dir"])
def test_sbom_path_planted_as_a_link_is_not_written_through(tmp_path: Path, link: str):
    """pkgrepo writes each package's SBOM into the staged tree on the host (as root): a link the
    build planted at that file or its directory must not make the host write outside the tree."""
    victim_dir = tmp_path / "victim"
    victim_dir.mkdir(mode=0o700)
    victim = victim_dir / "file"
    victim.write_text("untouched\n")
    victim.chmod(0o600)
    plant = (
        f"ln -s {victim} {D}/var/lib/pkgrepo/sbom/probe.spdx.json"
        if link == "file"
        else f"rmdir {D}/var/lib/pkgrepo/sbom && ln -s {victim_dir} {D}/var/lib/pkgrepo/sbom"
    )
    proc, out = probe(
        tmp_path,
        f"""
mkdir -p {D}/usr/share/probe {D}/var/lib/pkgrepo/sbom
echo data > {D}/usr/share/probe/file
{plant}
""",
        check=False,
    )
    assert "/var/lib/pkgrepo/sbom" in one_line_error(proc, 1)
    assert victim.read_text() == "untouched\n"
    assert sorted(p.name for p in victim_dir.iterdir()) == ["file"]
    assert not list(out.glob("probe-*.pkg.tar.zst"))
