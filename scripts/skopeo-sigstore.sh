#!/bin/sh
# Debian 12's skopeo 1.9 is built with sigstore compiled out ("Debian-local change:
# sigstore disabled": it can neither sign nor verify `sigstoreSigned`). The tests verify
# pkgrepo's image signatures with Debian 13's skopeo 1.18, which has it: its .deb and the
# libraries it needs (glibc 2.38+, gpgme, assuan, gpg-error, sqlite) are downloaded with
# apt from Debian's trixie suite into $DEST (nothing is installed system-wide) and run
# through that glibc's own loader by the wrapper $BIN.
# Usage (as root): sh scripts/skopeo-sigstore.sh [DEST] [BIN]
set -eu
DEST=${1:-/opt/skopeo-sigstore}
BIN=${2:-/usr/local/bin/skopeo-sigstore}
PKGS="skopeo libc6 libgpgme11t64 libassuan9 libgpg-error0 libsqlite3-0"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/parts" "$work/debs"
cat > "$work/parts/trixie.sources" <<SRC
Types: deb
URIs: $(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1 | grep . || echo http://deb.debian.org/debian)
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
set -- -o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$work/parts" \
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Dir::State::status=/dev/null \
  -o APT::Sandbox::User=root
apt-get -q "$@" update >/dev/null
(cd "$work/debs" && apt-get -q "$@" download $PKGS >/dev/null)
rm -rf "$DEST.new"
mkdir -p "$DEST.new"
for f in "$work"/debs/*.deb; do dpkg-deb -x "$f" "$DEST.new"; done
rm -rf "$DEST"
mv "$DEST.new" "$DEST"
lib="$DEST/usr/lib/x86_64-linux-gnu"
cat > "$BIN" <<WRAP
#!/bin/sh
exec "$lib/ld-linux-x86-64.so.2" --library-path "$lib" "$DEST/usr/bin/skopeo" "\$@"
WRAP
chmod 755 "$BIN"
"$BIN" --version
