#!/bin/sh
# The main job on the embedded default, after scripts/setup.sh: build every recipe,
# publish the packages into a signed repository, resolve the prod and dev closures
# of hello, build and audit hello's prod and dev OCI images (./images/hello-prod,
# ./images/hello-dev: digests and sizes printed) and generate the multistage
# Dockerfile that builds on them, serve the repository, and install hello from
# it into ./rootfs.
set -eu
cd "$(dirname "$0")/.."
P=.venv/bin/pkgrepo
$P build --all
if [ ! -f repo/metadata/timestamp.json ]; then
  $P repo init repo --export-root repo-data/root.json
fi
$P publish --repo repo packages/*.pkg.tar.zst
$P resolve --index native:packages --diff prod dev hello
mkdir -p images
for profile in prod dev; do
  $P image build repo-data/images/hello.yaml --profile $profile --packages packages --out images/hello-$profile
  $P image audit images/hello-$profile
done
$P dockerfile repo-data/images/hello.yaml --packages packages --out images/Dockerfile
cat images/Dockerfile
log=$(mktemp)
$P serve repo --port 0 2>"$log" &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$log"' EXIT
tries=0
until grep -q "serving" "$log"; do
  tries=$((tries + 1))
  [ "$tries" -lt 100 ] || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
url=$(sed -n 's/.* at \(http[^ ]*\).*/\1/p' "$log")
rm -rf rootfs
$P install --repo "$url" --trust repo-data/root.json --root rootfs hello
chroot rootfs /usr/bin/hello
# evidence: the image's SBOMs, and every installed package's provenance checked through the repository
$P sbom rootfs -o rootfs.spdx.json && $P sbom rootfs --format cyclonedx -o rootfs.cdx.json
$P verify rootfs --repo "$url" --recipes recipes
$P scan rootfs
