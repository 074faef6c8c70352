#!/bin/sh
# Set up a fresh Debian 12 machine (as root) for pkgrepo: system tools from
# Debian, then pkgrepo and its Python libraries in ./.venv.
set -eu
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# bubblewrap: the build sandbox; gcc/make/binutils/patch/tcl: the host toolchain
# used read-only inside it (tclsh generates SQLite's amalgamation; autoconf, automake
# and libtool with libltdl-dev make libffi's configure from its tag archive; bison and flex
# generate PostgreSQL's parsers, which its release tarballs no longer carry); libarchive13:
# used through libarchive-c; tar/xz/bzip2/zstd: unpacking sources and benchmarks;
# python3-solv: libsolv, the peer the minimizer is tested and benchmarked against;
# nginx-light: serves a published repository in the tests and the serve benchmark;
# python3-apt: apt_pkg, the peer the version comparison is tested against;
# skopeo, umoci, buildah, docker-registry: the real container tools the image tests
# and benchmarks push to, unpack with and build Dockerfiles with;
# chromium, chromium-driver: the headless browser the web catalogue is tested in.
apt-get install -y -q --no-install-recommends \
  bubblewrap gcc make binutils patch tcl libc6-dev linux-libc-dev autoconf automake libtool libltdl-dev \
  bison flex \
  libarchive13 tar xz-utils bzip2 zstd ca-certificates python3-solv nginx-light \
  skopeo umoci buildah docker-registry chromium chromium-driver \
  python3 python3-venv python3-pip python3-apt >/dev/null
# skopeo-sigstore: Debian 13's skopeo, which verifies sigstore signatures (Debian 12's
# has them compiled out); the image signing tests verify with it (scripts/skopeo-sigstore.sh)
sh scripts/skopeo-sigstore.sh >/dev/null
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
# sources of the py3-* recipes (wheels, sdists) into the source cache
sh scripts/fetch-sources.sh
echo "setup done: $(.venv/bin/pkgrepo --version)"
