"""`pkgrepo image build|audit|push`, `rootfs` and `dockerfile`: images from an image spec."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from pkgrepo.cli.options import JSON, TRUST, emit
from pkgrepo.resolve.profiles import PROFILES

PATH = click.Path(path_type=Path)
SPEC = click.argument("spec_path", metavar="SPEC", type=PATH)
PACKAGES = click.option(
    "--packages", type=PATH, default=None, help="Packages directory (wins over the spec's source)."
)
REPO = click.option(
    "--repo", "repo_url", default=None, help="URL of a signed repository (wins over the spec's source)."
)
PROFILE = click.option(
    "--profile",
    type=click.Choice(PROFILES),
    default="prod",
    show_default=True,
    help="prod: no shell, no package manager, non-root, minimized; dev: prod plus the dev extras.",
)


def _size(n: int) -> str:
    return f"{n / 1000:.1f} kB" if n < 1_000_000 else f"{n / 1_000_000:.2f} MB"


@click.group("image")
def image() -> None:
    """Build, audit and push OCI images from an image spec."""


@image.command("build")
@SPEC
@PROFILE
@click.option("--out", "layout", type=PATH, default=None, help="Write an OCI image layout here.")
@click.option("--rootfs", type=PATH, default=None, help="Also write the root filesystem as a directory.")
@click.option("--tar", type=PATH, default=None, help="Also write the root filesystem as a tarball.")
@click.option("--docker-archive", "archive", type=PATH, default=None, help="Also write a docker-archive tar.")
@click.option("--report", is_flag=True, help="List the files prod minimization removed and the bytes saved.")
@PACKAGES
@REPO
@TRUST
@JSON
def build(
    spec_path, profile, layout, rootfs, tar, archive, report, packages, repo_url, trust, as_json
) -> None:
    """Build the prod or dev image of SPEC (deterministic: same spec and packages, same digest)."""
    from pkgrepo.errors import BadInput
    from pkgrepo.image.build import build_from_spec
    from pkgrepo.image.evidence import make_evidence
    from pkgrepo.image.outputs import check_outputs, write_outputs

    if not any((layout, rootfs, tar, archive)):
        raise BadInput("name an output: --out LAYOUT, --rootfs DIR, --tar FILE or --docker-archive FILE")
    check_outputs(layout, rootfs, tar, archive)
    with tempfile.TemporaryDirectory(prefix="pkgrepo-image-") as work:
        built = build_from_spec(spec_path, profile, packages, repo_url, trust, Path(work))
        evidence = make_evidence(built, spec_path) if layout is not None else None
        write_outputs(built, layout, rootfs, tar, archive, evidence)
    if as_json:
        emit(built.to_dict())
        return
    click.echo(
        f"{built.spec.name} [{profile}] {built.image.digest} {_size(built.image.size)} compressed, "
        f"{len(built.image.layers)} layers, {len(built.assembled.packages)} packages"
    )
    for x in built.image.layers:
        click.echo(f"  {x.blob.digest[:19]}  {_size(len(x.blob.data)):>9}  {x.title}")
    if report:
        removed = built.assembled.report
        for r in removed.removed:
            click.echo(f"  removed /{r.path} ({r.package}, {r.size} bytes): {r.reason}")
        click.echo(f"minimization removed {len(removed.removed)} files, {removed.bytes_saved} bytes")


@image.command("audit")
@click.argument("target", metavar="LAYOUT|DIR", type=PATH)
@click.option(
    "--profile",
    type=click.Choice(PROFILES),
    default=None,
    help="Rules to apply (default prod, whatever the image says of itself).",
)
@JSON
def audit(target, profile, as_json) -> None:
    """Check an image against the hardened-image rules; exit 1 on any violation."""
    from pkgrepo.errors import PkgrepoError
    from pkgrepo.image.audit import audit as run

    report = run(target, profile)
    if as_json:
        emit(report.to_dict())
    else:
        for r in report.rules:
            click.echo(r.line())
    if not report.passed:
        failed = [r.rule for r in report.rules if r.status == "fail"]
        raise PkgrepoError(f"{target}: audit failed: {', '.join(failed)}")


IMAGE_KEYS = click.option(
    "--keys",
    "keys_dir",
    type=PATH,
    default=None,
    help="Image key directory (default: $PKGREPO_KEYS/image or ~/.config/pkgrepo/keys/image).",
)


@image.command("push")
@click.argument("layout", type=PATH)
@click.argument("ref")
@click.option("--insecure", is_flag=True, help="Plain HTTP / unverified TLS (a loopback test registry).")
@click.option(
    "--sign", is_flag=True, help="Sign the image (sigstore, a registry attachment) with the image key."
)
@IMAGE_KEYS
@JSON
def push(layout, ref, insecure, sign, keys_dir, as_json) -> None:
    """Publish an OCI layout to a registry (REGISTRY/REPOSITORY[:TAG]) with skopeo, attach its
    SBOMs, provenance and VEX as artifacts referring to it, and with --sign sign it."""
    from pkgrepo.image.push import push as run

    pushed = run(layout, ref, insecure, sign, keys_dir)
    if as_json:
        emit(
            {
                "ref": pushed.ref,
                "digest": pushed.digest,
                "signed_by": pushed.signed_by,
                "attached": [{"kind": k, "digest": d} for k, d in pushed.attached],
            }
        )
        return
    click.echo(f"pushed {pushed.ref}@{pushed.digest}")
    for kind, digest in pushed.attached:
        click.echo(f"  attached {kind}: {digest}")
    if pushed.signed_by:
        click.echo(f"  signed by image key {pushed.signed_by[:16]}")


@image.group("key")
def key() -> None:
    """The image signing keys (sigstore format): create, rotate, revoke, list."""


KEY_FILE = click.option(
    "--key",
    "key_file",
    type=PATH,
    default=None,
    help="Use this private key (cosign/sigstore encrypted PEM, or PKCS#8 PEM) instead of generating one.",
)
PASSPHRASE = click.option(
    "--passphrase-file",
    type=PATH,
    default=None,
    help="The --key's passphrase (first line); default $COSIGN_PASSWORD.",
)
EXPIRES = click.option(
    "--expires", default=None, help="When the key stops being trusted (YYYY-MM-DD; default in 365 days)."
)


def _add_key(keys_dir, key_file, passphrase_file, expires, first=False):
    import os

    from pkgrepo.errors import BadInput
    from pkgrepo.image.sigkeys import ImageKeys, parse_time

    passphrase = None
    if passphrase_file is not None:
        try:
            passphrase = (passphrase_file.read_bytes().splitlines() or [b""])[0]
        except OSError as e:
            raise BadInput(f"{passphrase_file}: cannot read the passphrase ({e.strerror})") from None
    elif os.environ.get("COSIGN_PASSWORD") is not None:
        passphrase = os.environ["COSIGN_PASSWORD"].encode()
    when = parse_time(expires, "--expires") if expires else None
    store = ImageKeys(keys_dir)
    return store, store.add(key_file, passphrase, when, first)


@key.command("init")
@KEY_FILE
@PASSPHRASE
@EXPIRES
@IMAGE_KEYS
def key_init(key_file, passphrase_file, expires, keys_dir) -> None:
    """Create the image signing key (or take --key FILE); refused when one is already current."""
    from pkgrepo.errors import BadInput
    from pkgrepo.image.sigkeys import ImageKeys

    current = ImageKeys(keys_dir).read().current
    if current is not None:
        raise BadInput(
            f"image key {current[:16]} already exists; use `pkgrepo image key rotate` to replace it"
        )
    store, record = _add_key(keys_dir, key_file, passphrase_file, expires)
    click.echo(f"image key {record.keyid[:16]} in {store.directory} (public: {record.keyid}.pub)")


@key.command("rotate")
@KEY_FILE
@PASSPHRASE
@EXPIRES
@click.option(
    "--revoke-old", is_flag=True, help="Revoke the previous key now (default: trusted until it expires)."
)
@IMAGE_KEYS
def key_rotate(key_file, passphrase_file, expires, revoke_old, keys_dir) -> None:
    """Make a new image key current; the old one stays trusted until it expires, or is revoked."""
    from pkgrepo.image.sigkeys import ImageKeys

    old = ImageKeys(keys_dir).read().current
    store, record = _add_key(keys_dir, key_file, passphrase_file, expires)
    if old and revoke_old:
        store.revoke(old)
    click.echo(
        f"image key {record.keyid[:16]} is current" + (f"; {old[:16]} revoked" if old and revoke_old else "")
    )


@key.command("revoke")
@click.argument("keyid")
@IMAGE_KEYS
def key_revoke(keyid, keys_dir) -> None:
    """Revoke an image key: pkgrepo refuses its signatures, policies written later leave it out."""
    from pkgrepo.image.sigkeys import ImageKeys

    record = ImageKeys(keys_dir).revoke(keyid)
    click.echo(f"image key {record.keyid[:16]} revoked")


@key.command("list")
@IMAGE_KEYS
@JSON
def key_list(keys_dir, as_json) -> None:
    """The image keys, their validity and which one signs."""
    import time

    from pkgrepo.image.sigkeys import ImageKeys, iso

    keys = ImageKeys(keys_dir).read()
    now = int(time.time())
    if as_json:
        emit({"current": keys.current, "keys": [{**k.to_dict(), "status": k.status(now)} for k in keys.keys]})
        return
    for k in keys.keys:
        mark = "*" if k.keyid == keys.current else " "
        click.echo(f"{mark} {k.keyid[:16]}  {k.status(now):8} expires {iso(k.expires)}")


@image.command("policy")
@click.option("--scope", required=True, help="REGISTRY[/NAMESPACE[/REPOSITORY]] the policy covers.")
@click.option("--out", type=PATH, required=True, help="Directory for policy.json, registries.d/ and the key.")
@click.option("--accept-others", is_flag=True, help="Accept images outside the scope (default: reject them).")
@IMAGE_KEYS
def policy(scope, out, accept_others, keys_dir) -> None:
    """Write a containers-policy.json and registries.d file requiring our signature (skopeo, podman, CRI-O)."""
    from pkgrepo.image.policy import write_policy
    from pkgrepo.image.sigkeys import ImageKeys

    for path in write_policy(out, scope, ImageKeys(keys_dir).read(), accept_others):
        click.echo(f"wrote {path}")
    click.echo(
        f"use: skopeo copy --policy {out}/policy.json --registries.d {out}/registries.d docker://{scope}/..."
    )


@click.command("rootfs")
@SPEC
@PROFILE
@click.option(
    "--out", required=True, type=PATH, help="A directory, or FILE.tar for a tarball (`ADD rootfs.tar /`)."
)
@PACKAGES
@REPO
@TRUST
def rootfs(spec_path, profile, out, packages, repo_url, trust) -> None:
    """Write the minimal root filesystem of SPEC as a directory or a tarball."""
    from pkgrepo.image.build import build_from_spec
    from pkgrepo.image.outputs import check_outputs, write_outputs

    is_tar = out.name.endswith(".tar")
    check_outputs(None, None if is_tar else out, out if is_tar else None, None)
    with tempfile.TemporaryDirectory(prefix="pkgrepo-image-") as work:
        built = build_from_spec(spec_path, profile, packages, repo_url, trust, Path(work))
        write_outputs(built, None, None if is_tar else out, out if is_tar else None, None)
    click.echo(f"wrote {out}: {len(built.assembled.tree)} entries, {len(built.assembled.packages)} packages")


@click.command("dockerfile")
@SPEC
@click.option(
    "--app", default=".", show_default=True, help="The application's directory in the build context."
)
@click.option("--build", "build_cmd", default=None, help="Command the build stage runs in the app directory.")
@click.option("--out", type=PATH, default=None, help="Write the Dockerfile here (default: print it).")
@click.option(
    "--registry",
    default="localhost:5000/pkgrepo",
    show_default=True,
    help="Where the images are pushed: REGISTRY[/PATH]; the repository is this plus the spec's name.",
)
@PACKAGES
@REPO
@TRUST
def dockerfile(spec_path, app, build_cmd, out, registry, packages, repo_url, trust) -> None:
    """A multistage Dockerfile: build FROM the dev image, run FROM the prod image, both by digest."""
    from pkgrepo.image.build import build_from_spec
    from pkgrepo.image.dockerfile import Stages, render
    from pkgrepo.image.outputs import check_file_target, replace_file

    if out is not None:
        check_file_target(out, "Dockerfile")
    with tempfile.TemporaryDirectory(prefix="pkgrepo-image-") as work:
        built = build_from_spec(spec_path, "dev", packages, repo_url, trust, Path(work))
    stages = Stages(f"{registry.rstrip('/')}/{built.spec.name}", built.image.digest, built.base_digest or "")
    text = render(built.spec, str(spec_path), stages, app, build_cmd)
    if out is None:
        click.echo(text, nl=False)
    else:
        replace_file(out, text.encode(), "Dockerfile")
        click.echo(f"wrote {out}: build FROM {stages.dev_digest[:19]}, run FROM {stages.prod_digest[:19]}")


def verify_image(target, prov, key_files, repo_url, trust, image_keys, insecure) -> None:
    """`pkgrepo verify docker://REF`: the chain of pkgrepo.image.remote, one line per check."""
    from pkgrepo.attest import dsse
    from pkgrepo.attest.verify import RepoEvidence
    from pkgrepo.errors import BadInput
    from pkgrepo.image.registry import Ref
    from pkgrepo.image.remote import KeyedEvidence, verify_remote
    from pkgrepo.image.sigkeys import ImageKeys, KeyList

    Ref.parse(target)  # a malformed reference is named before anything else
    if repo_url and (key_files or prov):
        raise BadInput(
            "pass --repo URL (provenance and keys from the repository) or --key/--provenance, not both"
        )
    if repo_url:
        from pkgrepo.resolve.sources import open_source

        source = RepoEvidence(open_source(repository=repo_url, trust=trust).verifying_client())
    else:
        if prov is None:
            raise BadInput(
                f"{target}: pass --repo URL --trust ROOT, or --provenance DIR, for the packages' provenance"
            )
        if not key_files and not (dsse.default_key_dir() / f"{dsse.ROLE}.pem").is_file():
            raise BadInput(f"no provenance key on this machine ({dsse.default_key_dir()}); pass --key PUB")
        keys = [dsse.load_public_key(k) for k in key_files] or [dsse.signer().public_key]
        source = KeyedEvidence({k.keyid: k for k in keys}, prov)
    trusted = KeyList.read(image_keys) if image_keys else ImageKeys().read()
    if not trusted.keys:
        raise BadInput("no image keys to verify with; pass --image-keys FILE (the keys.json of the signer)")
    report = verify_remote(target, insecure, trusted, source)
    for line in report.checked:
        click.echo(f"  {line}")
    click.echo(f"{report.ref}@{report.digest}: signature, provenance and SBOM verified")


COMMANDS = [image, rootfs, dockerfile]
