"""End to end with Debian's real container tools: docker-registry, skopeo, umoci and buildah.

The prod and dev images of the Lua app are pushed to a registry on loopback
and inspected (dev's lower layers are prod's); the layout is unpacked with
umoci; the generated multistage Dockerfile is built with buildah (vfs storage,
chroot isolation): the dev stage compiles with luac, the prod stage runs the
bytecode, and prod has no /bin/sh to run.

Signed images: `pkgrepo image push --sign` and the policy `pkgrepo image policy`
writes, verified by skopeo itself (`skopeo-sigstore`: Debian 13's skopeo 1.18,
scripts/skopeo-sigstore.sh, because Debian 12's has sigstore compiled out), and by
`pkgrepo verify docker://REF`; the attachments read with plain HTTP; every refusal
the issue names, by the policy where it covers it and by pkgrepo.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.helpers.cli import ROOT, run_cli
from tests.helpers.servers import docker_registry

pytestmark = pytest.mark.slow
TOOLS = ("docker-registry", "skopeo", "umoci", "buildah", "skopeo-sigstore")
APP = 'local t = {}\nfor i = 1, 3 do t[#t + 1] = i * i end\nprint("squares: " .. table.concat(t, " "))\n'


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Iterator[str]:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(
            f"missing {', '.join(missing)}: run scripts/setup.sh (skopeo-sigstore: scripts/skopeo-sigstore.sh)"
        )
    with docker_registry(tmp_path_factory.mktemp("registry") / "registry") as where:
        yield where


def run(*args: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), capture_output=True, text=True, cwd=cwd)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def test_registry_umoci_and_multistage_build(registry: str, image_packages: Path, tmp_path: Path) -> None:
    spec = ROOT / "repo-data" / "images" / "lua-app.yaml"
    repo = f"{registry}/pkgrepo/lua-app"
    for profile in ("prod", "dev"):
        layout = tmp_path / profile
        run_cli(
            "image",
            "build",
            str(spec),
            "--profile",
            profile,
            "--packages",
            str(image_packages),
            "--out",
            str(layout),
            check=True,
        )
        pushed = run_cli("image", "push", str(layout), f"{repo}:{profile}", "--insecure", check=True)
        assert "@sha256:" in pushed.stdout
    inspect = {
        p: json.loads(run("skopeo", "inspect", "--tls-verify=false", f"docker://{repo}:{p}").stdout)
        for p in ("prod", "dev")
    }
    prod_layers, dev_layers = inspect["prod"]["Layers"], inspect["dev"]["Layers"]
    assert dev_layers[: len(prod_layers)] == prod_layers and len(dev_layers) > len(prod_layers)
    assert inspect["dev"]["Labels"]["org.opencontainers.image.base.digest"] == inspect["prod"]["Digest"]

    run("umoci", "unpack", "--rootless", "--image", f"{tmp_path / 'prod'}:prod", str(tmp_path / "bundle"))
    unpacked = tmp_path / "bundle" / "rootfs"
    assert (unpacked / "usr/bin/lua").is_file() and not (unpacked / "bin/sh").exists()
    assert run_cli("image", "audit", str(unpacked)).returncode == 0

    ctx = tmp_path / "ctx"
    (ctx / "app").mkdir(parents=True)
    (ctx / "app" / "main.lua").write_text(APP)
    run_cli(
        "dockerfile",
        str(spec),
        "--packages",
        str(image_packages),
        "--app",
        "app",
        "--build",
        "luac -o main.luac main.lua",
        "--registry",
        f"{registry}/pkgrepo",
        "--out",
        str(ctx / "Dockerfile"),
        check=True,
    )
    text = (ctx / "Dockerfile").read_text()
    runtime = text.split("\nFROM ")[-1]
    assert f"@{inspect['dev']['Digest']} AS build" in text and runtime.startswith(
        f"{repo}@{inspect['prod']['Digest']}"
    )
    assert "RUN" not in runtime and "USER 65532:65532" in runtime and 'ENTRYPOINT ["/usr/bin/lua"]' in runtime

    buildah = [
        "buildah",
        "--root",
        str(tmp_path / "storage"),
        "--runroot",
        str(tmp_path / "run"),
        "--storage-driver",
        "vfs",
    ]
    try:
        run(
            *buildah,
            "bud",
            "--isolation",
            "chroot",
            "--tls-verify=false",
            "-t",
            "lua-app-test",
            str(ctx),
            cwd=ctx,
        )
        container = run(*buildah, "from", "lua-app-test").stdout.strip()
        config = json.loads(run(*buildah, "inspect", "--type", "image", "lua-app-test").stdout)["OCIv1"][
            "config"
        ]
        command = [*config["Entrypoint"], *config["Cmd"]]
        out = run(*buildah, "run", "--isolation", "chroot", container, "--", *command)
        assert out.stdout == "squares: 1 4 9\n"
        shell = run(
            *buildah, "run", "--isolation", "chroot", container, "--", "/bin/sh", "-c", "true", check=False
        )
        assert shell.returncode != 0

        # the rootfs tarball works as `FROM scratch` + `ADD rootfs.tar /`
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        run_cli(
            "rootfs",
            str(ROOT / "repo-data/images/hello.yaml"),
            "--packages",
            str(image_packages),
            "--out",
            str(scratch / "rootfs.tar"),
            check=True,
        )
        (scratch / "Dockerfile").write_text(
            'FROM scratch\nADD rootfs.tar /\nUSER 65532:65532\nENTRYPOINT ["/usr/bin/hello"]\n'
        )
        run(*buildah, "bud", "--isolation", "chroot", "-t", "hello-scratch", str(scratch), cwd=scratch)
        c2 = run(*buildah, "from", "hello-scratch").stdout.strip()
        assert (
            run(*buildah, "run", "--isolation", "chroot", c2, "--", "/usr/bin/hello").stdout
            == "Hello, world!\n"
        )
    finally:
        run(*buildah, "rm", "--all", check=False)
        run(*buildah, "rmi", "--all", "--force", check=False)


# --- signed images, attachments, policies ---------------------------------------------


@pytest.fixture(scope="module")
def signing(registry: str, built: Path, tmp_path_factory) -> dict:
    """Keys (image and provenance) of their own, the hello and busybox-tool prod layouts, and
    hello pushed signed to REGISTRY/pkgrepo/signed:hello."""
    d = tmp_path_factory.mktemp("signing")
    env = {"PKGREPO_KEYS": str(d / "keys")}
    run_cli("image", "key", "init", env=env, check=True)
    layouts = {}
    for name, spec in (("hello", "hello.yaml"), ("tool", "busybox-tool.yaml")):
        layouts[name] = d / name
        run_cli(
            "image", "build", str(ROOT / "repo-data/images" / spec), "--packages", str(built),
            "--out", str(layouts[name]), env=env, check=True,
        )  # fmt: skip
    from pkgrepo.attest import dsse

    (d / "provenance.pub").write_bytes(
        dsse.public_key_bytes(dsse.signer(d / "keys" / "provenance").public_key)
    )
    ref = f"{registry}/pkgrepo/signed:hello"
    out = run_cli("image", "push", str(layouts["hello"]), ref, "--insecure", "--sign", env=env, check=True)
    assert "signed by image key" in out.stdout
    run_cli(
        "image", "policy", "--scope", f"{registry}/pkgrepo", "--out", str(d / "policy"), env=env, check=True
    )
    return {"dir": d, "env": env, "layouts": layouts, "ref": ref, "registry": registry, "built": built}


def _digest(layout: Path) -> str:
    return json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]


def policy_copy(s: dict, ref: str, policy: Path | None = None) -> subprocess.CompletedProcess[str]:
    """skopeo's own verification: copy out of the registry under our policy."""
    pol = policy or s["dir"] / "policy"
    out = s["dir"] / f"pulled-{time.monotonic_ns()}"
    return run(
        "skopeo-sigstore", "copy", "--remove-signatures", "--policy", str(pol / "policy.json"),
        "--registries.d", str(pol / "registries.d"), "--src-tls-verify=false",
        f"docker://{ref}", f"oci:{out}:x", check=False,
    )  # fmt: skip


def verify_ref(s: dict, ref: str, keys: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "verify", f"docker://{ref}", "--insecure", "--provenance", str(s["built"]),
        "--key", str(s["built"] / "provenance.pub"), "--key", str(s["dir"] / "provenance.pub"),
        "--image-keys", str(keys or s["dir"] / "keys" / "image" / "keys.json"), env=s["env"],
    )  # fmt: skip


def refused(proc: subprocess.CompletedProcess[str], words: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], proc.stderr


class Api:
    """Raw registry API calls, the way an attacker with write access would make them."""

    def __init__(self, registry: str, repo: str):
        self.base = f"http://{registry}/v2/{repo}"

    def get(self, path: str, accept: str = "application/vnd.oci.image.index.v1+json") -> bytes:
        accept += ", application/vnd.oci.image.manifest.v1+json"
        req = urllib.request.Request(f"{self.base}/{path}", headers={"Accept": accept})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read()

    def put_blob(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        req = urllib.request.Request(f"{self.base}/blobs/uploads/", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=10) as r:
            location = r.headers["Location"]
        url = location if location.startswith("http") else self.base.split("/v2/")[0] + location
        sep = "&" if "?" in url else "?"
        put = urllib.request.Request(f"{url}{sep}digest={digest}", method="PUT", data=data)
        put.add_header("Content-Type", "application/octet-stream")
        urllib.request.urlopen(put, timeout=10).close()
        return digest

    def put_manifest(self, tag: str, data: bytes, media: str) -> str:
        req = urllib.request.Request(f"{self.base}/manifests/{tag}", method="PUT", data=data)
        req.add_header("Content-Type", media)
        urllib.request.urlopen(req, timeout=10).close()
        return "sha256:" + hashlib.sha256(data).hexdigest()


def test_signed_image_verified_by_skopeo_policy_and_every_refusal(signing: dict) -> None:
    s, registry = signing, signing["registry"]
    env, layouts = s["env"], s["layouts"]
    assert policy_copy(s, s["ref"]).returncode == 0
    ok = verify_ref(s, s["ref"])
    assert ok.returncode == 0 and "signature, provenance and SBOM verified" in ok.stdout, ok.stderr

    # an unsigned image
    run_cli(
        "image", "push", str(layouts["hello"]), f"{registry}/pkgrepo/unsigned:v1", "--insecure", check=True
    )
    assert "no signature exists" in policy_copy(s, f"{registry}/pkgrepo/unsigned:v1").stderr.lower()
    refused(verify_ref(s, f"{registry}/pkgrepo/unsigned:v1"), "is not signed")

    # a re-tagged different image: tool's signed manifest put at the hello tag
    for name in ("hello", "tool"):
        ref = f"{registry}/pkgrepo/retag:{name}"
        run_cli("image", "push", str(layouts[name]), ref, "--insecure", "--sign", env=env, check=True)
    api = Api(registry, "pkgrepo/retag")
    tool_manifest = (layouts["tool"] / "blobs/sha256" / _digest(layouts["tool"]).split(":")[1]).read_bytes()
    api.put_manifest("hello", tool_manifest, "application/vnd.oci.image.manifest.v1+json")
    proc = policy_copy(s, f"{registry}/pkgrepo/retag:hello")
    assert proc.returncode != 0 and "rejected" in proc.stderr, proc.stderr
    refused(verify_ref(s, f"{registry}/pkgrepo/retag:hello"), "a signature for")

    # a signature for another digest: hello's signature attachment put where tool's belongs
    hello_sig = api.get(f"manifests/{_digest(layouts['hello']).replace(':', '-')}.sig")
    tool_sig_tag = _digest(layouts["tool"]).replace(":", "-") + ".sig"
    api.put_manifest(tool_sig_tag, hello_sig, MANIFEST)
    assert policy_copy(s, f"{registry}/pkgrepo/retag:tool").returncode != 0
    refused(verify_ref(s, f"{registry}/pkgrepo/retag:tool"), "a signature for another image")

    # an image signed by another key
    other = {"PKGREPO_KEYS": str(s["dir"] / "other-keys")}
    run_cli("image", "key", "init", env=other, check=True)
    ref = f"{registry}/pkgrepo/other:v1"
    run_cli("image", "push", str(layouts["hello"]), ref, "--insecure", "--sign", env=other, check=True)
    proc = policy_copy(s, ref)
    assert proc.returncode != 0 and "signature" in proc.stderr, proc.stderr
    refused(verify_ref(s, ref), "a key not in the image key list")

    # our key file signs with skopeo itself (the key format is skopeo's): policy and pkgrepo accept
    keys = json.loads((s["dir"] / "keys/image/keys.json").read_text())
    kid = keys["current"]
    ref = f"{registry}/pkgrepo/by-skopeo:v1"
    run_cli(
        "image", "push", str(layouts["hello"]), ref, "--insecure", check=True
    )  # attachments, no signature
    run(
        "skopeo-sigstore", "copy", "--registries.d", str(s["dir"] / "policy/registries.d"),
        "--src-tls-verify=false", "--dest-tls-verify=false",
        "--sign-by-sigstore-private-key", str(s["dir"] / f"keys/image/{kid}.key"),
        "--sign-passphrase-file", str(s["dir"] / f"keys/image/{kid}.pass"),
        f"docker://{ref}", f"docker://{ref}",
    )  # fmt: skip
    assert policy_copy(s, ref).returncode == 0
    assert verify_ref(s, ref).returncode == 0

    # an expired key: valid for a few seconds, then its signatures are refused
    short = {"PKGREPO_KEYS": str(s["dir"] / "short-keys")}
    expiry = int(time.time()) + 20
    soon = datetime.fromtimestamp(expiry, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    run_cli("image", "key", "init", "--expires", soon, env=short, check=True)
    ref = f"{registry}/pkgrepo/short:v1"
    run_cli("image", "push", str(layouts["hello"]), ref, "--insecure", "--sign", env=short, check=True)
    short_keys = s["dir"] / "short-keys/image/keys.json"
    time.sleep(max(0.0, expiry + 1 - time.time()))
    refused(verify_ref(s, ref, short_keys), "expired")
    refused(
        run_cli("image", "push", str(layouts["hello"]), ref, "--insecure", "--sign", env=short), "expired"
    )

    # a revoked key: rotate with --revoke-old; pkgrepo refuses old signatures, and the policy
    # written after the rotation names only the new key
    ref = f"{registry}/pkgrepo/revoked:v1"
    run_cli("image", "push", str(layouts["hello"]), ref, "--insecure", "--sign", env=env, check=True)
    run_cli("image", "key", "rotate", "--revoke-old", env=env, check=True)
    new_policy = s["dir"] / "policy-after"
    run_cli(
        "image", "policy", "--scope", f"{registry}/pkgrepo", "--out", str(new_policy), env=env, check=True
    )
    refused(verify_ref(s, ref, new_policy / "image-keys.json"), "revoked")
    assert policy_copy(s, ref, new_policy).returncode != 0
    run_cli("image", "push", str(layouts["hello"]), ref, "--insecure", "--sign", env=env, check=True)
    assert policy_copy(s, ref, new_policy).returncode == 0  # re-signed with the new key
    assert verify_ref(s, ref, new_policy / "image-keys.json").returncode == 0


def test_attachments_listed_and_fetched_through_the_registry_api(signing: dict) -> None:
    s = signing
    digest = _digest(s["layouts"]["hello"])
    api = Api(s["registry"], "pkgrepo/signed")
    tags = json.loads(api.get("tags/list"))["tags"]
    assert {"hello", digest.replace(":", "-"), digest.replace(":", "-") + ".sig"} <= set(tags)
    index = json.loads(api.get(f"manifests/{digest.replace(':', '-')}"))
    by_type = {m["artifactType"]: m for m in index["manifests"]}
    assert {"application/spdx+json", "application/vnd.cyclonedx+json"} <= set(by_type)
    predicates = {m["annotations"].get("in-toto.io/predicate-type") for m in index["manifests"]}
    assert "https://slsa.dev/provenance/v1" in predicates
    for m in index["manifests"]:
        raw = api.get(f"manifests/{m['digest']}")
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == m["digest"]
        manifest = json.loads(raw)
        assert manifest["subject"]["digest"] == digest
        blob = api.get(f"blobs/{manifest['layers'][0]['digest']}")
        assert "sha256:" + hashlib.sha256(blob).hexdigest() == manifest["layers"][0]["digest"]
    spdx = json.loads(
        api.get(
            f"blobs/{json.loads(api.get('manifests/' + by_type['application/spdx+json']['digest']))['layers'][0]['digest']}"
        )
    )
    assert {"hello", "musl"} <= {p["name"] for p in spdx["packages"]}
    # skopeo reads an attachment by digest too
    inspect = run("skopeo", "inspect", "--raw", "--tls-verify=false",
                  f"docker://{s['registry']}/pkgrepo/signed@{by_type['application/spdx+json']['digest']}")  # fmt: skip
    assert json.loads(inspect.stdout)["subject"]["digest"] == digest


MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
SLSA = "https://slsa.dev/provenance/v1"


def _signed_copy(s: dict, repo: str) -> tuple[str, Api, dict]:
    """hello pushed signed to REGISTRY/pkgrepo/REPO:hello; the API and its referrers index."""
    ref = f"{s['registry']}/pkgrepo/{repo}:hello"
    run_cli(
        "image", "push", str(s["layouts"]["hello"]), ref, "--insecure", "--sign", env=s["env"], check=True
    )
    api = Api(s["registry"], f"pkgrepo/{repo}")
    return ref, api, json.loads(api.get(f"manifests/{_digest(s['layouts']['hello']).replace(':', '-')}"))


def _entry(index: dict, kind: str) -> dict:
    if kind == "provenance":
        return next(
            m for m in index["manifests"] if m.get("annotations", {}).get("in-toto.io/predicate-type") == SLSA
        )
    return next(m for m in index["manifests"] if m["artifactType"] == kind)


def _replace_document(api: Api, s: dict, index: dict, entry: dict, edit) -> None:
    """An attacker with write access: a new artifact with the edited document, listed instead."""
    manifest = json.loads(api.get(f"manifests/{entry['digest']}"))
    edited = edit(api.get(f"blobs/{manifest['layers'][0]['digest']}"))
    manifest["layers"][0].update(digest=api.put_blob(edited), size=len(edited))
    raw = json.dumps(manifest).encode()
    entry.update(
        digest=api.put_manifest("sha256:" + hashlib.sha256(raw).hexdigest(), raw, MANIFEST), size=len(raw)
    )
    api.put_manifest(_digest(s["layouts"]["hello"]).replace(":", "-"), json.dumps(index).encode(), INDEX)


def _drop_hello(data: bytes) -> bytes:
    sbom = json.loads(data)
    sbom["packages"] = [p for p in sbom["packages"] if p["name"] != "hello"]
    return json.dumps(sbom).encode()


def _edit_payload(data: bytes) -> bytes:
    envelope = json.loads(data)
    payload = base64.b64decode(envelope["payload"]).replace(b"hello.yaml", b"other.yaml")
    envelope["payload"] = base64.b64encode(payload).decode()
    return json.dumps(envelope).encode()


def test_verify_refuses_tampered_missing_and_lying_attachments(signing: dict) -> None:
    s = signing
    digest = _digest(s["layouts"]["hello"])
    fallback = digest.replace(":", "-")

    ref, api, index = _signed_copy(s, "tampered")  # an SBOM edited
    _replace_document(api, s, index, _entry(index, "application/spdx+json"), _drop_hello)
    refused(verify_ref(s, ref), "tampered with")

    ref, api, index = _signed_copy(s, "tampered-prov")  # the provenance edited, its signature kept
    _replace_document(api, s, index, _entry(index, "provenance"), _edit_payload)
    refused(verify_ref(s, ref), "signature does not verify")

    ref, api, index = _signed_copy(s, "missing")  # the provenance taken out of the referrers list
    index["manifests"].remove(_entry(index, "provenance"))
    api.put_manifest(fallback, json.dumps(index).encode(), INDEX)
    refused(verify_ref(s, ref), "no provenance is attached")

    ref, api, index = _signed_copy(s, "lying")  # the list names the tool image's provenance for hello
    tool = f"{s['registry']}/pkgrepo/lying:tool"
    run_cli("image", "push", str(s["layouts"]["tool"]), tool, "--insecure", check=True)
    tool_index = json.loads(api.get(f"manifests/{_digest(s['layouts']['tool']).replace(':', '-')}"))
    _entry(index, "provenance").update(_entry(tool_index, "provenance"))
    api.put_manifest(fallback, json.dumps(index).encode(), INDEX)
    refused(verify_ref(s, ref), "lies")

    # a registry that serves other bytes than the digest it names (a lying proxy in front of it)
    with lying_proxy(s["registry"], digest) as proxy:
        refused(verify_ref(s, f"{proxy}/pkgrepo/signed@{digest}"), "other bytes than it names")


class _Lying(http.server.BaseHTTPRequestHandler):
    upstream = ""
    target = ""

    def do_GET(self) -> None:
        req = urllib.request.Request(
            f"http://{self.upstream}{self.path}", headers={"Accept": self.headers.get("Accept", "*/*")}
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                status, body, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            status, body, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
        if self.path.endswith(f"/manifests/{self.target}"):
            body = body.replace(b'"schemaVersion":2', b'"schemaVersion": 2')
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class lying_proxy:
    def __init__(self, upstream: str, target: str):
        handler = type("Handler", (_Lying,), {"upstream": upstream, "target": target})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)

    def __enter__(self) -> str:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_vex_attached_signed_and_checked(signing: dict, tmp_path: Path) -> None:
    """An advisory covering hello, and a VEX statement about it: the push attaches the image's
    VEX (the finding with its status), pkgrepo verify checks it, an edited one is refused."""
    data = tmp_path / "data"
    (data / "advisories").mkdir(parents=True)
    (data / "vex").mkdir()
    advisory = {
        "schema_version": "1.6.0",
        "id": "PKGREPO-2099-0001",
        "summary": "hello greets too loudly",
        "database_specific": {"severity": "LOW"},
        "affected": [
            {
                "package": {"ecosystem": "pkgrepo", "name": "hello"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99-r1"}]}],
            }
        ],
    }
    (data / "advisories" / "hello.json").write_text(json.dumps(advisory))
    (data / "vex" / "hello.json").write_text(
        json.dumps(
            {
                "@context": "https://openvex.dev/ns/v0.2.0",
                "@id": "urn:test:hello-vex",
                "author": "test",
                "timestamp": "2024-01-01T00:00:00Z",
                "version": 1,
                "statements": [
                    {
                        "vulnerability": {"name": "PKGREPO-2099-0001"},
                        "products": [{"@id": "pkg:generic/pkgrepo/hello?arch=x86_64"}],
                        "status": "not_affected",
                        "justification": "vulnerable_code_not_in_execute_path",
                    }
                ],
            }
        )
    )
    env = {**signing["env"], "PKGREPO_DATA": str(data)}
    ref = f"{signing['registry']}/pkgrepo/vex:hello"
    out = run_cli(
        "image", "push", str(signing["layouts"]["hello"]), ref, "--insecure", "--sign", env=env, check=True
    )
    assert "attached vex" in out.stdout
    proc = verify_ref(signing, ref)
    assert proc.returncode == 0 and "VEX" in proc.stdout, proc.stderr
    api = Api(signing["registry"], "pkgrepo/vex")
    index = json.loads(api.get(f"manifests/{_digest(signing['layouts']['hello']).replace(':', '-')}"))
    entry = next(
        m
        for m in index["manifests"]
        if m.get("annotations", {}).get("in-toto.io/predicate-type", "").startswith("https://openvex")
    )
    envelope = json.loads(
        api.get(f"blobs/{json.loads(api.get('manifests/' + entry['digest']))['layers'][0]['digest']}")
    )
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert [s["status"] for s in statement["predicate"]["statements"]] == ["not_affected"]

    def silenced(data: bytes) -> bytes:  # the statement's status edited, the signature kept
        envelope = json.loads(data)
        payload = base64.b64decode(envelope["payload"]).replace(b'"not_affected"', b'"fixed"')
        return json.dumps({**envelope, "payload": base64.b64encode(payload).decode()}).encode()

    _replace_document(api, signing, index, entry, silenced)
    refused(verify_ref(signing, ref), "signature does not verify")
