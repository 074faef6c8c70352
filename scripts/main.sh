#!/bin/sh
# The main job on the embedded default, after scripts/setup.sh: build every recipe
# (through the user's build cache, the one the test suite's fixtures use), publish
# the packages into a signed repository, resolve the prod and dev closures of
# hello, build and audit hello's prod and dev OCI images (./images/hello-prod,
# ./images/hello-dev) and generate the multistage Dockerfile that builds on them,
# serve the repository, install hello from it into ./rootfs and run it, write the
# SBOMs, verify the provenance and scan; the repository's web catalogue shows it all. Each step's output goes to
# ./build-logs/main/NN-STEP.log; a failure names the step and its log; the end is
# a summary (scripts/summary.py) of what was made and what to try next.
set -eu
cd "$(dirname "$0")/.."
P=.venv/bin/pkgrepo
LOGS=build-logs/main
CACHE=${PKGREPO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pkgrepo}/builds
mkdir -p build-logs "$CACHE" images
exec 9>build-logs/.lock
flock -n 9 || { echo "main job: another run holds build-logs/.lock; wait for it to end" >&2 && exit 1; }
rm -rf "$LOGS"
mkdir -p "$LOGS"
begun=$(date +%s)
N=0
server=

# step NAME COMMAND...: run COMMAND with its output in the step's log, one line here.
# A step's function runs in this shell, so `set -e` does not apply inside it: each
# chains its commands with &&.
step() {
  N=$((N + 1))
  name=$1
  shift
  log=$LOGS/$(printf %02d "$N")-$name.log
  start=$(date +%s)
  printf '[%2d] %-12s ' "$N" "$name"
  if "$@" >"$log" 2>&1; then
    took=$(($(date +%s) - start))
    printf '%s\t%s\t%s\n' "$N" "$name" "$took" >>"$LOGS/steps.tsv"
    echo "ok (${took}s)"
  else
    code=$?
    echo "FAILED (exit $code)"
    tail -n 20 "$log" | sed 's/^/    /' >&2
    echo "main job failed at step $N ($name): see $log" >&2
    exit 1
  fi
}

do_build() {
  echo "building every recipe (progress is not shown with --json; each recipe's log: packages/logs/NAME.log)" &&
    $P build --all --cache-from "$CACHE" --cache-to "$CACHE" --json >"$LOGS/build.json"
}

do_publish() {
  if [ ! -f repo/metadata/timestamp.json ]; then
    $P repo init repo --export-root repo-data/root.json || return
  fi
  $P publish --repo repo --json packages/*.pkg.tar.zst >"$LOGS/publish.json"
}

do_closures() {
  $P resolve --index native:packages --diff prod dev hello
}

# The images and the Dockerfile are a function of the image spec, the packages (their
# build records name their exact inputs) and pkgrepo's own code: when none of these
# changed since the last run, that run's images, audits and Dockerfile stand (the
# builds are deterministic: same inputs, same bytes).
stamp() {
  { cat repo-data/images/hello.yaml packages/.builds/*.json &&
    find pkgrepo repo-data -type f ! -name '*.pyc' | LC_ALL=C sort | xargs sha256sum; } | sha256sum
}

unchanged() {
  [ -f images/.stamp ] && [ "$(cat images/.stamp)" = "$(stamp)" ] &&
    for f in image-prod.json audit-prod.json image-dev.json audit-dev.json; do
      [ -f "images/.last/$f" ] || return 1
    done
}

do_image() {
  $P image build repo-data/images/hello.yaml --profile "$1" --packages packages --out "images/hello-$1" \
    --json >"$LOGS/image-$1.json" &&
    $P image audit "images/hello-$1" --profile "$1" --json >"$LOGS/audit-$1.json"
}

do_dockerfile() {
  $P dockerfile repo-data/images/hello.yaml --packages packages --out images/Dockerfile && cat images/Dockerfile
}

do_serve() {
  $P serve repo --port 0 2>"$LOGS/server.log" 9>&- &  # without the lock: it is ours only
  server=$!
  tries=0
  until grep -q "serving" "$LOGS/server.log"; do
    tries=$((tries + 1))
    [ "$tries" -lt 100 ] || { cat "$LOGS/server.log" && return 1; }
    sleep 0.1
  done
  sed -n 's/.* at \(http[^ ]*\).*/\1/p' "$LOGS/server.log" >"$LOGS/url"
}

do_install() {
  rm -rf rootfs &&
    $P install --repo "$(cat "$LOGS/url")" --trust repo-data/root.json --root rootfs hello \
      --json >"$LOGS/install.json" &&
    chroot rootfs /usr/bin/hello >"$LOGS/hello.out" && cat "$LOGS/hello.out"
}

do_sbom() {
  $P sbom rootfs -o rootfs.spdx.json && $P sbom rootfs --format cyclonedx -o rootfs.cdx.json
}

do_verify() {
  $P verify rootfs --repo "$(cat "$LOGS/url")" --recipes recipes
}

do_scan() {
  $P scan rootfs --provenance packages --fail-on low --json >"$LOGS/scan.json"
}

# The web catalogue (REPO/web/, written by publish): the images' signed records added.
do_catalogue() {
  $P repo web repo --images images --json >"$LOGS/web.json"
}

trap '[ -z "$server" ] || { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; }' EXIT
step build do_build
step publish do_publish
step closures do_closures
if unchanged; then
  cp images/.last/*.json "$LOGS/"
  echo "     images      unchanged since the last run: images/hello-prod, images/hello-dev, images/Dockerfile kept"
else
  rm -f images/.stamp
  step image-prod do_image prod
  step image-dev do_image dev
  step dockerfile do_dockerfile
  mkdir -p images/.last && cp "$LOGS"/image-*.json "$LOGS"/audit-*.json images/.last/ && stamp >images/.stamp
fi
step catalogue do_catalogue
step serve do_serve
step install do_install
step sbom do_sbom
step verify do_verify
step scan do_scan
.venv/bin/python scripts/summary.py "$LOGS" "$(($(date +%s) - begun))"
