#!/usr/bin/env bash
# The Claude Desktop bundle: validate its manifest and pack .ci/mcpb/ into mltrainer.mcpb with
# the @anthropic-ai/mcpb tool from the npm registry (pinned), then read the packed bundle back
# (mcpb info, unpack) and check it holds what the manifest names. Fails the build on any
# failure. Leaves the bundle in $BUNDLE_OUT (default: a temporary folder).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
MCPB_VERSION="2.1.2"
TOOLS="${MCPB_TOOLS:-/tmp/mltrainer-mcpb-$MCPB_VERSION}"
OUT="${BUNDLE_OUT:-$(mktemp -d)}"
say() { echo "[bundle-check] $*"; }

if [ ! -x "$TOOLS/node_modules/.bin/mcpb" ]; then
    say "installing @anthropic-ai/mcpb@$MCPB_VERSION"
    mkdir -p "$TOOLS"
    npm install --prefix "$TOOLS" --no-audit --no-fund --silent "@anthropic-ai/mcpb@$MCPB_VERSION"
fi
MCPB="$TOOLS/node_modules/.bin/mcpb"
say "mcpb $("$MCPB" --version)"

"$MCPB" validate "$REPO/.ci/mcpb/manifest.json"
(cd "$REPO/.ci/mcpb" && "$MCPB" pack . "$OUT/mltrainer.mcpb")
"$MCPB" info "$OUT/mltrainer.mcpb"
rm -rf "$OUT/unpacked"
"$MCPB" unpack "$OUT/mltrainer.mcpb" "$OUT/unpacked" >/dev/null
for file in manifest.json pyproject.toml src/server.py; do
    [ -f "$OUT/unpacked/$file" ] || { say "the bundle lacks $file"; exit 1; }
done
"$MCPB" validate "$OUT/unpacked/manifest.json"
if find "$OUT/unpacked" -name '__pycache__' -o -name '*.pyc' | grep -q .; then
    say "the bundle holds build leftovers"; exit 1
fi
say "ok: $OUT/mltrainer.mcpb ($(du -h "$OUT/mltrainer.mcpb" | cut -f1))"
