#!/usr/bin/env bash
# `make dist`: the release artifacts, every binary built for glibc 2.17 (manylinux2014, SCF's CentOS 7):
#   <out>/scf-runtime-<version>-x86_64-linux.tar.gz   bin/scf-local, bin/scf-shim, lib/scf-runtime/{python,node},
#                                                     README.md, LICENSE
#   <out>/scf_sdk-<version>-cp39-abi3-manylinux…whl  the Python SDK (abi3: CPython 3.9 and later)
#   <out>/scf-sdk-<version>.tgz                       the Node SDK with its prebuilt N-API add-on (linux-x64)
# The tarball's lib/scf-runtime/python is the wheel's scf_sdk/, its lib/scf-runtime/node the npm package's
# contents: one build of each piece, shipped in two places. Every ELF file shipped is checked by
# scripts/check-glibc.sh, which fails the build if one needs a glibc newer than 2.17.
#
# Usage: scripts/dist.sh [release|debug] [OUT_DIR]       (defaults: release, dist/)
# Needs the repository's .venv with maturin, ziglang and cargo-zigbuild (`make venv`), cargo, node and npm.
# SCF_BUILD_COMMIT (default: git rev-parse --short=12 HEAD) is the commit `--version` prints; CARGO_TARGET_DIR
# is honoured (default target/).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PROFILE=${1:-release}
OUT=${2:-$ROOT/dist}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
VENV=$ROOT/.venv
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
TRIPLE=x86_64-unknown-linux-gnu
GLIBC=2.17
PLATFORM=x86_64-linux

die() { echo "dist: $*" >&2; exit 1; }

for tool in maturin cargo-zigbuild python; do
  [ -x "$VENV/bin/$tool" ] || die "$VENV/bin/$tool is missing: run \`make venv\` (requirements-dev.txt)"
done
"$VENV/bin/python" -m ziglang version >/dev/null 2>&1 || die "ziglang is missing from $VENV: run \`make venv\`"
command -v npm >/dev/null || die "npm is missing"
# cargo-zigbuild and maturin find zig through `python -m ziglang`: the venv's python first on PATH.
export PATH="$VENV/bin:$PATH"

case $PROFILE in
  # What ships has no debug info (as uv's and ripgrep's releases): a quarter of the size.
  release) CARGO_PROFILE=(--release); PROFILE_DIR=release; export CARGO_PROFILE_RELEASE_STRIP=debuginfo ;;
  # The test build: no debug info (smaller, faster to link and to pack).
  debug) CARGO_PROFILE=(); PROFILE_DIR=debug; export CARGO_PROFILE_DEV_DEBUG=0 ;;
  *) die "unknown profile '$PROFILE' (release or debug)" ;;
esac

# The version, licence and repository are the Cargo workspace's; the Node package must say the same.
read -r VERSION LICENSE_ID REPOSITORY < <(cargo metadata --no-deps --format-version 1 | "$VENV/bin/python" -c '
import json, sys
pkg = {p["name"]: p for p in json.load(sys.stdin)["packages"]}["scf-shim"]
print(pkg["version"], pkg["license"], pkg["repository"])')
"$VENV/bin/python" - "$VERSION" "$LICENSE_ID" "$REPOSITORY" <<'EOF' || die "sdk-node/package.json disagrees with the Cargo workspace (Cargo.toml): make them the same"
import json, sys
version, licence, repository = sys.argv[1:]
pkg = json.load(open("sdk-node/package.json"))
wrong = [f"{k}: {have!r} (the workspace: {want!r})" for k, have, want in [
    ("version", pkg.get("version"), version),
    ("license", pkg.get("license"), licence),
    ("repository.url", (pkg.get("repository") or {}).get("url"), repository),
] if have != want]
for w in wrong:
    print(f"dist: sdk-node/package.json {w}", file=sys.stderr)
sys.exit(1 if wrong else 0)
EOF
export SCF_BUILD_COMMIT=${SCF_BUILD_COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
echo "dist: scf-runtime $VERSION (commit $SCF_BUILD_COMMIT), $PROFILE, glibc $GLIBC, into $OUT"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# 1. The binaries and the Node add-on: one cargo-zigbuild run, linked against glibc 2.17's symbols.
cargo zigbuild --target "$TRIPLE.$GLIBC" "${CARGO_PROFILE[@]}" -p scf-shim -p scf-local -p scf-sdk-node
BIN=$TARGET/$TRIPLE/$PROFILE_DIR

# 2. The wheel: maturin with zig, manylinux2014. Its own target directory: maturin's zig linker differs
#    from cargo-zigbuild's, and sharing one would rebuild every crate on each switch.
rm -f "$OUT"/scf_sdk-*.whl
(cd sdk-python && maturin build --zig --compatibility manylinux2014 --target "$TRIPLE" "${CARGO_PROFILE[@]}" \
  --target-dir "$TARGET/dist-python" --out "$OUT")
WHEEL=$(ls "$OUT"/scf_sdk-"$VERSION"-cp39-abi3-manylinux*.whl)

# 3. The npm package: what `npm pack` selects from sdk-node (package.json "files"), plus the prebuilt
#    add-on and the licence, packed again.
mkdir -p "$WORK/npm"
(cd sdk-node && npm pack --silent --pack-destination "$WORK/npm" >/dev/null)
tar -xzf "$WORK"/npm/scf-sdk-"$VERSION".tgz -C "$WORK/npm"
NPM=$WORK/npm/package
mkdir -p "$NPM/prebuilds/linux-x64"
cp "$BIN/libscf_sdk_node.so" "$NPM/prebuilds/linux-x64/scf_sdk_node.node"
cp LICENSE "$NPM/LICENSE"
rm -f "$OUT"/scf-sdk-*.tgz
(cd "$NPM" && npm pack --silent --pack-destination "$OUT" >/dev/null)
TGZ=$OUT/scf-sdk-$VERSION.tgz
[ -f "$TGZ" ] || die "npm pack wrote no $TGZ"

# 4. The runtime tarball: the binaries, and the two SDK packages in the runtime layout.
NAME=scf-runtime-$VERSION-$PLATFORM
STAGE=$WORK/$NAME
mkdir -p "$STAGE/bin" "$STAGE/lib/scf-runtime/python" "$STAGE/lib/scf-runtime/node"
cp "$BIN/scf-local" "$BIN/scf-shim" "$STAGE/bin/"
"$VENV/bin/python" -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith("scf_sdk/")])' \
  "$WHEEL" "$STAGE/lib/scf-runtime/python"
chmod 0755 "$STAGE/lib/scf-runtime/python/scf_sdk/"*.so
tar -xzf "$TGZ" -C "$WORK" && cp -R "$WORK/package/." "$STAGE/lib/scf-runtime/node/"
cp README.md LICENSE "$STAGE/"

# 5. glibc 2.17: every ELF file of every artifact, as shipped.
mkdir -p "$WORK/check/wheel" "$WORK/check/npm"
"$VENV/bin/python" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$WHEEL" "$WORK/check/wheel"
tar -xzf "$TGZ" -C "$WORK/check/npm"
scripts/check-glibc.sh "$GLIBC" "$STAGE" "$WORK/check/wheel" "$WORK/check/npm"

# 6. Pack, reproducibly (sorted names, no owners, the commit's time).
MTIME=$(git log -1 --format=%ct 2>/dev/null || echo 0)
TARBALL=$OUT/$NAME.tar.gz
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$MTIME" -C "$WORK" -czf "$TARBALL" "$NAME"
"$STAGE/bin/scf-shim" --version
"$STAGE/bin/scf-local" --version
ls -l "$TARBALL" "$WHEEL" "$TGZ"
