"""End to end with Debian's real container tools: docker-registry, skopeo, umoci and buildah.

The prod and dev images of the Lua app are pushed to a registry on loopback
and inspected (dev's lower layers are prod's); the layout is unpacked with
umoci; the generated multistage Dockerfile is built with buildah (vfs storage,
chroot isolation): the dev stage compiles with luac, the prod stage runs the
bytecode, and prod has no /bin/sh to run.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.cli import ROOT, run_cli
from tests.helpers.servers import free_port

pytestmark = pytest.mark.slow
TOOLS = ("docker-registry", "skopeo", "umoci", "buildah")
APP = 'local t = {}\nfor i = 1, 3 do t[#t + 1] = i * i end\nprint("squares: " .. table.concat(t, " "))\n'


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Iterator[str]:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run scripts/setup.sh")
    d = tmp_path_factory.mktemp("registry")
    port = free_port()
    (d / "config.yml").write_text(
        f"version: 0.1\nlog: {{level: error}}\nstorage: {{filesystem: {{rootdirectory: {d / 'data'}}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n"
    )
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(d / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("docker-registry did not start")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


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
