"""nginx as people run it (issue 21): repo-data/images/nginx.yaml built from our packages.

The prod root is run as a container would run it, in a pod of its own (tests/helpers/pods.py):
nginx as nonroot (65532) on 8080 serves the static site and proxies /api/ to a second
container, busybox's httpd from the dev image on 127.0.0.1:9000; every request is made by our
curl from the curl image's prod root. The generated multistage Dockerfile is built with buildah:
the dev stage precompresses the site with busybox's gzip, the prod stage serves it
(gzip_static), fetched with our curl again. And the reasons of repo-data/vex/nginx-1.26.3.json,
checked in the source the recipe pins.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers.cli import ROOT, run_cli
from tests.helpers.patches import missing_from, source_tarball
from tests.helpers.pods import Pod, container
from tests.helpers.servers import docker_registry

SPEC = ROOT / "repo-data" / "images" / "nginx.yaml"
CURL = ROOT / "repo-data" / "images" / "curl.yaml"
ENTRYPOINT = yaml.safe_load(SPEC.read_text())["entrypoint"]
SITE = "<!doctype html>\n<title>site</title>\n<p>built in the dev stage, served by the prod stage</p>\n"


@pytest.fixture(scope="module")
def images(example_packages: Path, tmp_path_factory) -> Path:
    """nginx prod (layout and root), nginx dev (root) and curl prod (root), from the example packages."""
    work = tmp_path_factory.mktemp("nginx")
    for spec, profile, outputs in (
        (SPEC, "prod", ["--out", str(work / "prod-layout"), "--rootfs", str(work / "prod")]),
        (SPEC, "dev", ["--out", str(work / "dev-layout"), "--rootfs", str(work / "dev")]),
        (CURL, "prod", ["--rootfs", str(work / "curl")]),
    ):
        run_cli(
            "image", "build", str(spec), "--profile", profile, "--packages", str(example_packages), *outputs,
            check=True,
        )  # fmt: skip
    return work


def curl(
    pod: Pod, images: Path, *args: str, binds: dict[Path, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Our curl, from the curl image's prod root, as nonroot in the pod."""
    return pod.run(container(images / "curl", ["/usr/bin/curl", "-sS", *args], binds=binds))


@pytest.mark.slow
def test_prod_image_is_hardened_and_runs_as_nonroot(images: Path) -> None:
    root = images / "prod"
    for absent in ("bin/sh", "usr/bin/busybox", "usr/bin/pkgrepo", "usr/bin/python3", "usr/include"):
        assert not (root / absent).exists(), absent
    assert (root / "usr/sbin/nginx").is_file() and (root / "srv/www/index.html").is_file()
    proc = run_cli("image", "audit", str(images / "prod-layout"))
    assert proc.returncode == 0, proc.stdout
    index = json.loads((images / "prod-layout" / "index.json").read_text())
    manifest = json.loads(blob(images / "prod-layout", index["manifests"][0]["digest"]))
    config = json.loads(blob(images / "prod-layout", manifest["config"]["digest"]))["config"]
    assert config["User"] == "65532:65532" and config["Entrypoint"] == ENTRYPOINT


def blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


@pytest.mark.slow
def test_prod_serves_the_site_and_proxies_to_a_second_container(images: Path, tmp_path: Path) -> None:
    api = tmp_path / "api"
    (api / "api").mkdir(parents=True)
    (api / "api" / "hello").write_text("from the sidecar\n")
    with Pod() as pod:
        sidecar = pod.start(
            container(
                images / "dev",
                ["busybox", "httpd", "-f", "-p", "127.0.0.1:9000", "-h", "/srv/api"],
                binds={api: "/srv/api"},
            )
        )
        web = pod.start(container(images / "prod", ENTRYPOINT, cwd="/srv/www"))
        pod.wait_port(9000, sidecar)
        pod.wait_port(8080, web)

        page = curl(pod, images, "-f", "http://127.0.0.1:8080/")
        assert page.returncode == 0 and "Served by nginx from pkgrepo" in page.stdout, page.stderr
        proxied = curl(pod, images, "-f", "http://127.0.0.1:8080/api/hello")
        assert proxied.stdout == "from the sidecar\n", proxied.stderr
        assert curl(pod, images, "http://127.0.0.1:8080/healthz").stdout == "ok\n"
        missing = curl(pod, images, "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:8080/nothing")
        assert missing.stdout == "404"
        headers = curl(pod, images, "-D", "-", "-o", "/dev/null", "-H", "Accept-Encoding: gzip",
                       "http://127.0.0.1:8080/")  # fmt: skip
        lines = [h.strip().lower() for h in headers.stdout.splitlines()]
        assert "server: nginx" in lines, headers.stdout  # server_tokens off: no version shown
        assert "content-encoding: gzip" in lines, headers.stdout


@pytest.mark.slow
def test_dev_image_adds_a_shell_and_the_package_manager(example_packages: Path, images: Path) -> None:
    def closure(profile: str) -> set[str]:
        proc = run_cli(
            "resolve", "--index", f"native:{example_packages}", "--profile", profile, "--json", "nginx",
            check=True,
        )  # fmt: skip
        return {p["name"] for p in json.loads(proc.stdout)["packages"]}

    prod, dev = closure("prod"), closure("dev")
    assert prod == {"nginx", "libpcre2-8", "libssl3", "libcrypto3", "zlib", "musl"}, prod
    assert prod < dev and {"busybox", "pkgrepo", "python3"} <= dev - prod, dev - prod
    root = images / "dev"
    assert (root / "bin/sh").exists() and (root / "usr/bin/pkgrepo").is_file()
    checked = subprocess.run(
        container(root, ["/bin/sh", "-c", "nginx -t -e stderr -c /etc/nginx/site.conf 2>&1"]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "test is successful" in checked.stdout, checked.stdout + checked.stderr
    assert run_cli("image", "audit", str(images / "dev-layout"), "--profile", "dev").returncode == 0


@pytest.mark.slow
def test_dockerfile_built_with_buildah_serves_the_site_from_the_build_stage(
    example_packages: Path, images: Path, tmp_path: Path
) -> None:
    if shutil.which("buildah") is None:
        pytest.skip("buildah is not installed (scripts/setup.sh installs it)")
    with docker_registry(tmp_path / "registry") as registry:
        repo = f"{registry}/pkgrepo/nginx"
        for profile in ("prod", "dev"):
            run_cli("image", "push", str(images / f"{profile}-layout"), f"{repo}:{profile}", "--insecure",
                    check=True)  # fmt: skip
        ctx = tmp_path / "ctx"
        (ctx / "site").mkdir(parents=True)
        (ctx / "site" / "index.html").write_text(SITE)
        run_cli(
            "dockerfile", str(SPEC), "--packages", str(example_packages), "--app", "site",
            "--build", "gzip -9 -c index.html > index.html.gz", "--registry", f"{registry}/pkgrepo",
            "--out", str(ctx / "Dockerfile"), check=True,
        )  # fmt: skip
        runtime = (ctx / "Dockerfile").read_text().split("\nFROM ")[-1]
        assert "COPY --from=build /srv/www/ /srv/www/" in runtime and "USER 65532:65532" in runtime
        buildah = ["buildah", "--root", str(tmp_path / "storage"), "--runroot", str(tmp_path / "run"),
                   "--storage-driver", "vfs"]  # fmt: skip
        try:
            built = subprocess.run(
                [*buildah, "bud", "--isolation", "chroot", "--tls-verify=false", "-t", "nginx-site", str(ctx)],
                capture_output=True, text=True, cwd=ctx,
            )  # fmt: skip
            assert built.returncode == 0, built.stderr
            box = subprocess.run([*buildah, "from", "nginx-site"], capture_output=True, text=True, check=True)
            with Pod() as pod:
                web = pod.start(
                    [*buildah, "run", "--isolation", "chroot", box.stdout.strip(), "--", *ENTRYPOINT]
                )
                pod.wait_port(8080, web)
                out = tmp_path / "out"
                out.mkdir()
                headers = curl(pod, images, "-f", "-D", "-", "-o", "/out/index.html.gz", "-H",
                               "Accept-Encoding: gzip", "http://127.0.0.1:8080/index.html", binds={out: "/out"})  # fmt: skip
                assert headers.returncode == 0, headers.stderr
                lines = [h.strip().lower() for h in headers.stdout.splitlines()]
                assert "content-encoding: gzip" in lines, headers.stdout
                # gzip_static answers with the file's length; on-the-fly gzip would be chunked
                assert any(h.startswith("content-length: ") for h in lines), headers.stdout
                assert gzip.decompress((out / "index.html.gz").read_bytes()).decode() == SITE
                plain = curl(pod, images, "-f", "http://127.0.0.1:8080/")
                assert plain.stdout == SITE, plain.stdout
        finally:
            subprocess.run([*buildah, "rm", "--all"], capture_output=True)
            subprocess.run([*buildah, "rmi", "--all", "--force"], capture_output=True)


def test_vex_fixed_statements_hold_in_the_source() -> None:
    """Each `fixed` statement of repo-data/vex/nginx-1.26.3.json is a fix Debian patches on 1.22.1
    and 1.26.3 has: every block its Debian patch adds is in the pinned source. A patch 1.26.3 lacks
    (CVE-2026-9256's, which the recipe applies) is found missing, so the check can fail."""
    vex = json.loads((ROOT / "repo-data" / "vex" / "nginx-1.26.3.json").read_text())
    fixes = ROOT / "tests" / "fixtures" / "release-fixes"
    tarball = source_tarball("nginx")
    stated = sorted(s["vulnerability"]["name"] for s in vex["statements"] if s["status"] == "fixed")
    assert stated == ["CVE-2024-7347", "CVE-2025-23419"]
    for cve in stated:
        patches = sorted(fixes.glob(f"nginx-{cve}*.patch"))
        assert patches, cve
        for patch in patches:
            assert missing_from(tarball, patch) == [], patch.name
    assert missing_from(tarball, ROOT / "recipes" / "nginx" / "CVE-2026-9256.patch")
