"""What a publish hands the web catalogue (`PublishReport.vouched`): the package heads it read
and the hash bins it signed, so the site generation after `pkgrepo publish` reads neither again
(issue 18's benchmark). The hand-over changes no byte of the site, and it vouches only for bytes
still on disk: a bin altered after the publish, or signed with keys targets does not delegate,
is refused as the generation alone refuses it."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

import pkgrepo.package.archive
import pkgrepo.web.verified
from pkgrepo.errors import BadInput
from pkgrepo.package.meta import PackageInfo, canonical_json
from pkgrepo.repo.index import IndexEntry
from pkgrepo.repo.keys import KeyStore
from pkgrepo.repo.repository import Repository
from pkgrepo.web import learnt
from pkgrepo.web.catalogue import gather
from pkgrepo.web.site import generate
from pkgrepo.web.verified import verify
from tests.helpers.archives import make_package, package_writer
from tests.helpers.cli import run_cli


def _published(tmp_path: Path, count: int = 3):
    pool = tmp_path / "pool"
    pool.mkdir()
    files = [make_package(pool, f"p{i}") for i in range(count)]
    repo = Repository(tmp_path / "repo", KeyStore(tmp_path / "keys"))
    repo.init()
    return repo, files


def _bin_checks(monkeypatch) -> list[str]:
    """The hash bins whose signatures are checked from here on."""
    checked: list[str] = []
    real = pkgrepo.web.verified._check

    def counting(delegator, role, md, path, version):
        if role.startswith("bins"):
            checked.append(role)
        return real(delegator, role, md, path, version)

    monkeypatch.setattr(pkgrepo.web.verified, "_check", counting)
    return checked


def test_the_site_after_a_publish_reads_no_package_and_is_the_site_generated_alone(
    tmp_path: Path, monkeypatch
):
    repo, files = _published(tmp_path, count=12)
    report = repo.publish(files)
    assert set(report.vouched.heads) == {hashlib.sha256(f.read_bytes()).hexdigest() for f in files}
    alone_checks = _bin_checks(monkeypatch)
    alone = generate(repo.root, [], [], cache=tmp_path / "alone")
    bins = len(alone_checks)
    assert bins > 1  # twelve packages hash into several bins

    def unread(path):
        raise AssertionError(f"{path}: read again after the publish that read it")

    monkeypatch.setattr(pkgrepo.package.archive, "read_head", unread)
    del alone_checks[:]
    handed = generate(repo.root, [], [], cache=tmp_path / "handed", vouched=report.vouched)
    assert len(alone_checks) == 1  # one bin checked in full: the keys the publish signed with
    assert handed.digest == alone.digest and handed.packages == 12


def test_a_bin_altered_after_the_publish_is_refused(tmp_path: Path):
    repo, files = _published(tmp_path)
    report = repo.publish(files)
    bins = sorted((repo.root / "metadata").glob("*.bins-*.json"))
    data = bins[-1].read_bytes()
    bins[-1].write_bytes(data.replace(b'"sig":"', b'"sig":"00', 1))
    with pytest.raises(BadInput, match="not signed by the keys its delegator names"):
        generate(repo.root, [], [], cache=tmp_path / "c", vouched=report.vouched)


def test_bins_signed_with_keys_targets_does_not_delegate_are_refused(tmp_path: Path):
    """A publish whose bins key is not the one targets delegates to signs bins clients refuse:
    its hand-over does not make the site show them."""
    repo, files = _published(tmp_path)
    repo.keys.generate("bins")  # a new key, not delegated
    report = repo.publish(files)
    with pytest.raises(BadInput, match="not signed by the keys its delegator names"):
        generate(repo.root, [], [], cache=tmp_path / "c", vouched=report.vouched)


def test_a_package_changed_while_published_is_published_as_read(tmp_path: Path, monkeypatch):
    """The sha256 signed, the bytes written and the head indexed come from one read of the
    file: a change to it while its head is read changes none of them (it was refused, by
    comparing fstat before and after, while libarchive read the head from the file again)."""
    repo, files = _published(tmp_path, count=1)
    original = files[0].read_bytes()
    real = pkgrepo.package.archive.read_head

    def changing(path, *data):
        with open(path, "ab") as f:
            f.write(b"\0")
        return real(path, *data)

    monkeypatch.setattr(pkgrepo.package.archive, "read_head", changing)
    report = repo.publish(files)
    assert files[0].read_bytes() == original + b"\0"  # it did change
    (published,) = (repo.root / "targets").rglob("*.pkg.tar.zst")
    assert published.read_bytes() == original
    assert set(report.vouched.heads) == {hashlib.sha256(original).hexdigest()}


def test_the_site_reads_a_package_head_from_the_bytes_it_verified(tmp_path: Path, monkeypatch):
    """A package file swapped for another once its bytes were checked against the signed hash
    is not read again: the head is that of the checked bytes (libarchive read the path again,
    and found the other package, or blocked on a FIFO)."""
    repo, files = _published(tmp_path, count=1)
    repo.publish(files)
    other = make_package(tmp_path / "pool", "intruder")
    real = pkgrepo.web.verified.Verified.read

    def swapping(self, target: str) -> bytes:
        data = real(self, target)
        if target.endswith(".pkg.tar.zst"):
            os.replace(other, self.local(target))
        return data

    monkeypatch.setattr(pkgrepo.web.verified.Verified, "read", swapping)
    generate(repo.root, [], [], cache=tmp_path / "c")  # no hand-over: the site reads the package
    assert not other.exists()  # the swap happened


@pytest.mark.parametrize("which", ["bin", "package"])
def test_a_fifo_in_the_repository_is_refused_not_waited_on(tmp_path: Path, which: str):
    """A hostile repository directory: a signed hash bin or package file replaced by a FIFO
    makes `pkgrepo repo web` fail in one line naming it, not block forever."""
    repo, files = _published(tmp_path, count=1)
    repo.publish(files)
    if which == "bin":
        victim = max((repo.root / "metadata").glob("2.bins-*.json"))
        reason = "repository metadata is not a regular file"
    else:
        victim = next((repo.root / "targets" / "packages").glob("*.pkg.tar.zst"))
        reason = "not the bytes the metadata signs"
    victim.unlink()
    os.mkfifo(victim)
    env = {"PKGREPO_KEYS": str(tmp_path / "keys"), "PKGREPO_CACHE": str(tmp_path / "cache")}
    proc = run_cli("repo", "web", str(repo.root), env=env, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(f"pkgrepo: error: {victim}: ") and reason in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_a_published_bin_emptied_with_junk_signatures_is_refused(tmp_path: Path):
    """Only the bins `repo init` wrote (version 1) go unchecked for signing nothing: a bin a
    publish signed, replaced by an empty one with junk signatures, would silently drop the
    files it signs from the site (clients refuse such a repository), so it is checked."""
    repo, files = _published(tmp_path, count=1)
    report = repo.publish(files)
    victim = max((repo.root / "metadata").glob("2.bins-*.json"))
    victim.write_bytes(
        b'{"signatures":[{"keyid":"00","sig":"00"}],"signed":{"_type":"targets","targets":{}}}'
    )
    for vouched in (None, report.vouched):
        with pytest.raises(BadInput, match=f"{victim}: "):
            generate(repo.root, [], [], cache=tmp_path / "c", vouched=vouched)


def test_every_version_of_a_package_is_required_by_its_name(tmp_path: Path):
    """A dependency of a package published at two versions is required by that package's name
    (the second version's was once the digest naming what was learnt of the first)."""
    repo, files = _published(tmp_path, count=1)
    pool = tmp_path / "pool"
    files += [
        make_package(pool, "app", "1.0", depends=("p0",)),
        make_package(pool, "app", "2.0", depends=("p0",)),
    ]
    repo.publish(files)
    catalogue = gather(verify(repo.root), [], [], tmp_path / "cache")
    assert {p.name: p.required_by for p in catalogue.packages} == {"app": [], "p0": ["app"]}


def test_learnt_records_are_one_file_written_when_something_was_learnt(tmp_path: Path, monkeypatch):
    """The records a generation used come first, then those it read and did not use, up to the
    kept number (the oldest go); a generation that learnt nothing does not write."""
    monkeypatch.setattr(learnt, "KEPT", 3)
    path = tmp_path / "learnt.json"
    first = learnt.Memory(path)
    for i in range(4):
        first.put(f"r{i}", {"n": i})
    first.save()
    assert list(json.loads(path.read_text())) == ["r0", "r1", "r2", "r3"]  # all used: all kept
    second = learnt.Memory(path)
    assert second.get("r3", lambda r: r["n"]) == 3
    assert second.get("r9", lambda r: r["n"]) is None
    before = path.stat()
    second.save()  # nothing learnt: not written
    assert path.stat().st_ino == before.st_ino and path.stat().st_mtime_ns == before.st_mtime_ns
    second.put("r4", {"n": 4})
    second.save()
    assert json.loads(path.read_text()) == {"r3": {"n": 3}, "r4": {"n": 4}, "r0": {"n": 0}}
    assert [p.name for p in tmp_path.iterdir()] == ["learnt.json"]  # no temporary file left


def test_learnt_records_written_by_two_generations_at_once_are_one_of_theirs(tmp_path: Path):
    """Two generations sharing the cache (two repositories): the last to write wins, whole; the
    other's new record is not there (learnt again next time), and nothing is a mixture."""
    path = tmp_path / "learnt.json"
    base = learnt.Memory(path)
    base.put("shared", {"n": 0})
    base.save()
    a, b = learnt.Memory(path), learnt.Memory(path)
    a.put("a", {"n": 1})
    b.put("b", {"n": 2})
    a.save()
    b.save()
    assert json.loads(path.read_text()) == {"b": {"n": 2}, "shared": {"n": 0}}
    assert learnt.Memory(path).get("a", dict) is None


def test_the_site_is_world_readable_whatever_the_umask(tmp_path: Path):
    """Pages 0644 and directories 0755 under a umask of 077, so nginx or any server user reads them."""
    repo, files = _published(tmp_path, count=2)
    report = repo.publish(files)
    old = os.umask(0o077)
    try:
        site = generate(repo.root, [], [], cache=tmp_path / "c", vouched=report.vouched)
    finally:
        os.umask(old)
    top = site.path.resolve()
    modes = {p.relative_to(top).as_posix(): p.stat().st_mode & 0o777 for p in [top, *top.rglob("*")]}
    assert {m for p, m in modes.items() if (top / p).is_dir()} == {0o755}
    assert {m for p, m in modes.items() if not (top / p).is_dir()} == {0o644}
    assert "p/p0.html" in modes


def test_bins_repo_init_wrote_alike_are_parsed_once_and_any_other_in_full(tmp_path: Path, monkeypatch):
    """The version-1 bins `repo init` wrote are byte for byte alike (one key, one second): one
    parse tells they all sign nothing. A version-1 bin with other bytes is not taken for one of
    them: one signing a target with junk signatures is refused, after alike ones were passed."""
    repo, files = _published(tmp_path, count=1)
    repo.publish(files)
    unpublished = sorted((repo.root / "metadata").glob("1.bins-*.json"))
    parsed: list[bytes] = []
    real = pkgrepo.web.verified._signs_nothing
    monkeypatch.setattr(
        pkgrepo.web.verified, "_signs_nothing", lambda data: parsed.append(data) or real(data)
    )
    verify(repo.root)
    assert len(unpublished) > 200 and len(parsed) == len({p.read_bytes() for p in unpublished}) <= 2
    victim = unpublished[-1]  # checked after the others were found to sign nothing
    victim.write_bytes(
        b'{"signatures":[{"keyid":"00","sig":"00"}],"signed":{"_type":"targets","version":1,'
        b'"spec_version":"1.0.31","expires":"2030-01-01T00:00:00Z","targets":{"packages/forged":'
        b'{"length":1,"hashes":{"sha256":"' + b"0" * 64 + b'"}}}}}'
    )
    with pytest.raises(BadInput, match=f"{victim}: bins-.. is not signed by the keys its delegator names"):
        verify(repo.root)


def _parsed_lines(monkeypatch, refuse: bool = False) -> list[bytes]:
    """The index lines parsed from here on (`refuse`: any parse fails)."""
    parsed: list[bytes] = []
    real = IndexEntry.from_line.__func__

    def counting(cls, line: bytes) -> IndexEntry:
        parsed.append(line)
        if refuse:
            raise AssertionError("an index line parsed again after the publish that wrote it")
        return real(cls, line)

    monkeypatch.setattr(IndexEntry, "from_line", classmethod(counting))
    return parsed


def test_the_index_a_publish_wrote_is_not_parsed_again(tmp_path: Path, monkeypatch):
    """The entries publish wrote are handed over: the generation after it parses no index
    line, and gives the entries (and the site) the index parsed alone gives."""
    repo, files = _published(tmp_path, count=5)
    report = repo.publish(files)
    alone = verify(repo.root).entries
    site = generate(repo.root, [], [], cache=tmp_path / "alone")
    _parsed_lines(monkeypatch, refuse=True)
    assert verify(repo.root, vouched=report.vouched).entries == alone
    handed = generate(repo.root, [], [], cache=tmp_path / "handed", vouched=report.vouched)
    assert handed.digest == site.digest and handed.packages == 5
    with pytest.raises(AssertionError, match="parsed again"):  # alone, every line is parsed
        verify(repo.root)


def test_after_a_publish_only_the_lines_it_did_not_write_are_parsed(tmp_path: Path, monkeypatch):
    repo, files = _published(tmp_path, count=3)
    repo.publish(files[:2])
    report = repo.publish(files[2:])
    alone = verify(repo.root).entries
    parsed = _parsed_lines(monkeypatch)
    assert verify(repo.root, vouched=report.vouched).entries == alone
    assert [json.loads(line)["name"] for line in parsed] == ["p0", "p1"]  # the publish before's


def test_entries_of_an_index_no_longer_signed_are_not_taken(tmp_path: Path, monkeypatch):
    """A later publish replaced a package (same name and version, other bytes): the hand-over
    of the publish before it is not taken for the index signed now, which is parsed."""
    repo, files = _published(tmp_path, count=2)
    before = repo.publish(files)
    other = make_package(tmp_path / "pool" / "other", "p0", files={"usr/share/p0/OTHER": "other\n"})
    repo.publish([other], force=True)
    alone = verify(repo.root).entries
    parsed = _parsed_lines(monkeypatch)
    entries = verify(repo.root, vouched=before.vouched).entries
    assert entries == alone and len(parsed) == 2
    assert {e.name: e.sha256 for e in entries}["p0"] == hashlib.sha256(other.read_bytes()).hexdigest()


def test_an_entry_handed_over_is_the_one_its_line_reads_back(tmp_path: Path):
    """A package's own metadata may hold an optional field empty (an upstream of "", written by
    another tool); its index line leaves it out, so it reads back as its default (None): the
    entry handed over is the one parsing its line gives, not the head as read."""
    repo, _ = _published(tmp_path, count=0)
    info = {**PackageInfo(name="u", version="1.0", origin="u").to_dict(), "upstream": "", "cpe": ""}
    manifest = [
        {
            "path": "README",
            "type": "file",
            "mode": 0o644,
            "size": 2,
            "sha256": hashlib.sha256(b"u\n").hexdigest(),
        }
    ]
    package = tmp_path / "u-1.0-r1.x86_64.pkg.tar.zst"
    with package_writer(package, canonical_json(info), canonical_json(manifest)) as tar:
        tar.add_file_from_memory("README", 2, b"u\n", permission=0o644)
    report = repo.publish([package])
    (alone,) = verify(repo.root).entries
    assert alone.info.upstream is None and alone.info.cpe is None
    assert verify(repo.root, vouched=report.vouched).entries == [alone]


@pytest.mark.parametrize("planted", ["fifo", "endless"])
def test_a_bins_cache_that_is_no_file_is_not_read(tmp_path: Path, planted: str):
    """The user's cache of verified bins replaced by a FIFO or a link to an endless device:
    `pkgrepo repo web` checks every bin, as without it, and neither blocks nor reads forever."""
    repo, files = _published(tmp_path, count=1)
    repo.publish(files)
    remembered = tmp_path / "cache" / "web" / "bins.json"
    remembered.parent.mkdir(parents=True)
    if planted == "fifo":
        os.mkfifo(remembered)
    else:
        remembered.symlink_to("/dev/zero")
    env = {"PKGREPO_KEYS": str(tmp_path / "keys"), "PKGREPO_CACHE": str(tmp_path / "cache")}
    proc = run_cli("repo", "web", str(repo.root), env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_a_bin_put_in_another_bins_place_vouches_only_for_what_hashes_into_it(tmp_path: Path):
    """An older version of one bin copied over another bin of the same version (both signed by
    the bins key; snapshot records versions only) would sign the first bin's targets again at
    their old hashes: the view takes from a bin only the targets that hash into it, checked in
    full, from the cache of verified bins, and from a cache an earlier pkgrepo wrote (all a bin
    signed, under the token of that time)."""
    repo, _ = _published(tmp_path, count=0)
    succinct = repo.role(repo.snapshot(), "targets").signed.delegations.succinct_roles

    def role(name: str) -> str:
        return succinct.get_role_for_target(f"packages/{name}-1.0-r1.x86_64.pkg.tar.zst")

    names = [f"p{i}" for i in range(40)]
    first, later = next((a, b) for a in names for b in names if role(a) < role(b))
    pool = tmp_path / "pool"
    repo.publish([make_package(pool, first)])
    meta = repo.root / "metadata"
    old = (meta / f"2.{role(first)}.json").read_bytes()
    repo.publish([make_package(pool, later)])
    now = make_package(pool / "again", first, files={"usr/share/again": "other bytes\n"})
    repo.publish([now], force=True)
    (meta / f"2.{role(later)}.json").write_bytes(old)  # signs `first` at its old hash
    target = f"packages/{first}-1.0-r1.x86_64.pkg.tar.zst"
    signed = hashlib.sha256(now.read_bytes()).hexdigest()
    cache = tmp_path / "cache" / "bins.json"
    for _ in range(2):  # checked in full, then taken from the cache
        view = verify(repo.root, cache)
        assert view.targets[target].hashes["sha256"] == signed
        assert f"packages/{later}-1.0-r1.x86_64.pkg.tar.zst" not in view.targets
    delegations = repo.role(repo.snapshot(), "targets").signed.delegations.to_dict()
    delegator = hashlib.sha256(json.dumps(delegations, sort_keys=True).encode()).hexdigest()
    digest = hashlib.sha256(old).hexdigest()
    earlier = hashlib.sha256(f"{delegator} {role(later)} {digest}".encode()).hexdigest()
    cache.write_text(json.dumps({earlier: [2, json.loads(old)["signed"]["targets"]]}))
    assert verify(repo.root, cache).targets[target].hashes["sha256"] == signed


def test_the_caches_of_earlier_versions_are_removed(tmp_path: Path):
    """File lists and per-package learnt records (no version reads them any more) are removed
    from the user's cache; a link there is unlinked, not followed."""
    repo, files = _published(tmp_path, count=1)
    repo.publish(files)
    cache = tmp_path / "cache"
    (cache / "files").mkdir(parents=True)
    (cache / "files" / f"{'0' * 64}.json").write_text("[]")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.json").write_text("{}")
    (cache / "learnt").symlink_to(outside)
    generate(repo.root, [], [], cache=cache)
    assert not (cache / "files").exists() and not (cache / "learnt").is_symlink()
    assert (outside / "keep.json").read_text() == "{}"
