"""The main job's closing summary, from the `--json` outputs its steps left in the log directory.

Usage: python scripts/summary.py LOGDIR SECONDS   (run by scripts/main.sh)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def size(n: float) -> str:
    units = ["B", "KiB", "MiB", "GiB"]
    while n >= 1024 and len(units) > 1:
        n /= 1024
        units.pop(0)
    return f"{n:.0f} {units[0]}" if units[0] == "B" else f"{n:.1f} {units[0]}"


def duration(s: float) -> str:
    s = round(s)
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def main() -> None:
    logs, total = Path(sys.argv[1]), float(sys.argv[2])

    def load(name: str) -> dict:
        return json.loads((logs / name).read_text())

    steps = {
        name: int(secs)
        for _n, name, secs in (line.split("\t") for line in (logs / "steps.tsv").read_text().splitlines())
    }
    builds = load("build.json")["builds"]
    cached = [b for b in builds if b["cached"]]
    made = [b for b in builds if not b["cached"]]
    packages = sum(len(b["packages"]) for b in builds)
    published = load("publish.json")
    url = (logs / "url").read_text().strip()
    scan = load("scan.json")
    findings = [f for f in scan["findings"] if f.get("status") not in ("not_affected", "fixed")]
    feed = scan.get("feed")
    if isinstance(feed, dict):  # the scan's own account of its advisory data, whatever its fields
        feed = ", ".join(f"{k} {v}" for k, v in feed.items() if isinstance(v, str | int | float))
    installed = load("install.json")["installed"]
    hello = (logs / "hello.out").read_text().strip()

    print()
    print(f"main job done in {duration(total)} (logs: {logs}/)")
    built = f"{len(made)} built ({duration(sum(b['seconds'] for b in made))})" if made else "none built"
    print(
        f"  packages    {len(builds)} recipes, {packages} packages in ./packages: {built}, "
        f"{len(cached)} unchanged or from the build cache; build step {duration(steps['build'])}"
    )
    print(
        f"  repository  ./repo: {len(published['added'])} published, {len(published['unchanged'])} "
        f"unchanged (timestamp v{published['timestamp_version']}); trust root repo-data/root.json"
    )
    print(f"              served at {url} for this run (stopped now; `{serve_hint()}` serves it again)")
    print(f"  catalogue   ./repo/web/index.html, browsable at {url}web/index.html while served")
    for profile in ("prod", "dev"):
        image, audit = load(f"image-{profile}.json"), load(f"audit-{profile}.json")
        failed = [r["id"] for r in audit["rules"] if r["status"] == "fail"]
        print(
            f"  {profile + ' image':11} images/hello-{profile}  {image['digest']}  {size(image['size'])} "
            f"compressed ({image['compression']}), {len(image['layers'])} layers, "
            f"{len(image['packages'])} packages; audit {'passed' if not failed else 'FAILED: ' + ', '.join(failed)}"
        )
    print("  Dockerfile  images/Dockerfile (builds FROM the dev image, runs FROM the prod image, by digest)")
    print(
        f"  rootfs      ./rootfs: {', '.join(p['name'] for p in installed)} installed from the repository, "
        f"verified; /usr/bin/hello says {hello!r}"
    )
    print("  evidence    SBOMs rootfs.spdx.json (SPDX) and rootfs.cdx.json (CycloneDX); provenance of every")
    print("              installed package verified through the repository against ./recipes")
    source = f" (feed: {feed})" if feed else ""
    verdict = (
        f"{len(findings)} open finding(s): "
        + ", ".join(f"{f['advisory']} in {f['package']}" for f in findings[:3])
        if findings
        else "no open findings"
    )
    print(f"  scan        {scan['packages']} packages{source}: {verdict}")
    print()
    print("try next:")
    print("  .venv/bin/pkgrepo why --index native:packages --profile dev hello --target busybox")
    print(
        "  .venv/bin/pkgrepo image build repo-data/images/hello.yaml --packages packages --out /tmp/hello \\"
    )
    print("      --docker-archive /tmp/hello.tar     # then: docker load -i /tmp/hello.tar")
    print(
        f"  {serve_hint()} &  .venv/bin/pkgrepo search --repo http://127.0.0.1:8080/ --trust repo-data/root.json"
    )


def serve_hint() -> str:
    return ".venv/bin/pkgrepo serve repo"


if __name__ == "__main__":
    main()
