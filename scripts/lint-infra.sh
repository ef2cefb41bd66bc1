#!/usr/bin/env bash
# Lints the deployment material in infra/ with real linters, installed on first use into
# .test-env (pinned versions; nothing goes into /etc or stays running):
#   checkov (PyPI)             — infra/terraform (framework terraform, with terraform.tfvars.example
#                                so the optional Redis and security group are checked too),
#                                infra/k8s (kubernetes), infra/container/Dockerfile (dockerfile)
#   kubernetes-validate (PyPI) — infra/k8s against the Kubernetes API schemas, strictly (an unknown
#                                or misspelt field is an error; KEDA's kinds have no schema there)
#   terraform (if on PATH)     — `fmt -check`, and `validate` when the providers can be downloaded
#   nginx (Debian's package)   — `nginx -t` on infra/ec2/nginx-hookbridge.conf, included from a
#                                throwaway nginx.conf with a throwaway self-signed certificate
#   systemd-analyze            — `verify` and `security` (exposure at most 2.0) on infra/ec2/*.service
# Checks skipped on purpose are skipped in place, each with its reason (`#checkov:skip=` in the
# .tf files, `checkov.io/skip` annotations in the manifests). A tool that cannot run on this
# machine is reported as `lint-infra: skipped X: <reason>`. Exits non-zero on any finding.
# `make lint-infra` and `make lint` (so `make test`) run it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
infra="$root/infra"
env_dir="$root/.test-env"
venv="$env_dir/infra-lint-venv"
nginx_dir="$env_dir/nginx"
CHECKOV_VERSION=3.3.30
KUBERNETES_VALIDATE_VERSION=1.37.0
# The Kubernetes API version the manifests are validated against.
KUBERNETES_VERSION=1.33.0
# systemd-analyze security's exposure score times ten (the units score 1.2 today).
SYSTEMD_EXPOSURE_MAX=20
mkdir -p "$env_dir"

log() { echo "lint-infra: $*" >&2; }
skip() { log "skipped $1: $2"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
    as_root apt-get update >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null
}
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()

# --- install ---------------------------------------------------------------------------------------
# A venv of its own (beside lint-actions.sh's lint-venv): checkov brings many dependencies, and
# either script may rebuild its venv without disturbing the other.
stamp="checkov==$CHECKOV_VERSION kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
if [ "$(cat "$venv/.lint-infra-versions" 2>/dev/null)" != "$stamp" ]; then
    log "installing $stamp into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$venv"; }
    # shellcheck disable=SC2086 # $stamp is the list of requirements
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $stamp
    echo "$stamp" >"$venv/.lint-infra-versions"
fi

# --- checkov -------------------------------------------------------------------------------------
# --skip-download and these variables keep checkov offline (no Prisma Cloud guidelines, no update
# check): the results are the same, without the network.
export CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE
checkov() {
    "$venv/bin/checkov" --skip-download --compact --quiet "$@"
}
checkov --framework terraform -d "$infra/terraform" \
    --var-file "$infra/terraform/terraform.tfvars.example" || failed+=("checkov terraform")
checkov --framework kubernetes -d "$infra/k8s" || failed+=("checkov kubernetes")
checkov --framework dockerfile -f "$infra/container/Dockerfile" || failed+=("checkov dockerfile")

# --- Kubernetes schemas --------------------------------------------------------------------------
mapfile -t manifests < <(find "$infra/k8s" -name '*.yaml' ! -name kustomization.yaml | sort)
if "$venv/bin/kubernetes-validate" --strict --quiet --no-warn -k "$KUBERNETES_VERSION" "${manifests[@]}"; then
    log "kubernetes-validate: ${#manifests[@]} files match the Kubernetes $KUBERNETES_VERSION schemas (KEDA objects: checkov only)"
else
    failed+=("kubernetes-validate")
fi

# --- terraform -----------------------------------------------------------------------------------
if command -v terraform >/dev/null 2>&1; then
    # A CLI configuration file named by the environment but absent only adds a warning.
    if [ -n "${TF_CLI_CONFIG_FILE:-}" ] && ! [ -e "$TF_CLI_CONFIG_FILE" ]; then unset TF_CLI_CONFIG_FILE; fi
    if terraform fmt -check -diff -recursive "$infra/terraform" >&2; then
        log "terraform fmt: formatted"
    else
        failed+=("terraform fmt")
    fi
    # validate needs the providers: in a copy, so no .terraform/ or lock file lands in infra/.
    cp -r "$infra/terraform" "$work/terraform"
    export TF_PLUGIN_CACHE_DIR="$env_dir/terraform-plugins"
    mkdir -p "$TF_PLUGIN_CACHE_DIR"
    if (cd "$work/terraform" && terraform init -backend=false -input=false -no-color >"$work/tf-init.log" 2>&1); then
        (cd "$work/terraform" && terraform validate -no-color) >&2 || failed+=("terraform validate")
    else
        skip "terraform validate" "terraform init could not download the providers ($(grep -m1 -E 'Error|error' "$work/tf-init.log" | cut -c1-120))"
    fi
else
    skip "terraform fmt/validate" "no terraform binary on PATH (no package registry reachable here ships it)"
fi

# --- nginx -t ------------------------------------------------------------------------------------
# Debian's nginx package is unpacked into .test-env rather than installed: installing it would
# start a server on port 80 and put files in /etc/nginx.
nginx_bin="$(command -v nginx || true)"
if [ -z "$nginx_bin" ]; then
    nginx_bin="$nginx_dir/root/usr/sbin/nginx"
    if ! [ -x "$nginx_bin" ]; then
        log "nginx not found: unpacking Debian's nginx package into $nginx_dir"
        rm -rf "$nginx_dir" && mkdir -p "$nginx_dir"
        (cd "$nginx_dir" && { apt-get download nginx >/dev/null 2>&1 \
            || { as_root apt-get update >/dev/null && apt-get download nginx >/dev/null 2>&1; }; })
        dpkg-deb -x "$nginx_dir"/nginx_*.deb "$nginx_dir/root"
    fi
    # Its shared libraries (openssl, pcre2, zlib, libcrypt), when this machine lacks any of them.
    if ! "$nginx_bin" -v >/dev/null 2>&1; then
        apt_install libssl3 libpcre2-8-0 zlib1g libcrypt1
    fi
fi
command -v openssl >/dev/null 2>&1 || apt_install openssl
# The site file names its certificate relative to nginx's configuration directory, which is the
# directory of the nginx.conf given with -c: here the throwaway one.
mkdir -p "$work/nginx/tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=hooks.example.com" \
    -keyout "$work/nginx/tls/hookbridge.key" -out "$work/nginx/tls/hookbridge.crt" >/dev/null 2>&1
cat >"$work/nginx/nginx.conf" <<EOF
pid $work/nginx/nginx.pid;
error_log stderr;
events {}
http {
    access_log off;
    client_body_temp_path $work/nginx/client_body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    include $infra/ec2/nginx-hookbridge.conf;
}
EOF
# A warning (a duplicate or deprecated directive, a conflicting server name) counts as a finding.
if "$nginx_bin" -t -q -p "$work/nginx/" -c "$work/nginx/nginx.conf" -e stderr >"$work/nginx.log" 2>&1 \
    && ! grep -q '\[warn\]' "$work/nginx.log"; then
    log "nginx -t: infra/ec2/nginx-hookbridge.conf is valid ($("$nginx_bin" -v 2>&1 | sed 's/.*: //'))"
else
    cat "$work/nginx.log" >&2
    failed+=("nginx -t")
fi

# --- systemd units -------------------------------------------------------------------------------
if ! command -v systemd-analyze >/dev/null 2>&1; then
    skip "systemd-analyze verify/security" "systemd is not installed on this machine"
else
    # The binaries are not installed here and `verify` insists that ExecStart= is executable:
    # copies of the units point it at stubs; every other line is checked as written.
    mkdir -p "$work/units/bin"
    for unit in "$infra"/ec2/*.service; do
        sed "s|^ExecStart=/usr/local/bin/|ExecStart=$work/units/bin/|" "$unit" >"$work/units/$(basename "$unit")"
        binary="$(sed -n 's|^ExecStart=/usr/local/bin/\([^ ]*\).*|\1|p' "$unit")"
        printf '#!/bin/sh\nexit 0\n' >"$work/units/bin/$binary" && chmod +x "$work/units/bin/$binary"
    done
    printf '[Service]\nExecStart=/bin/true\n' >"$work/units/lint-infra-probe.service"
    mapfile -t units < <(cd "$work/units" && ls hookbridge-*.service)
    if ! (cd "$work/units" && systemd-analyze verify --man=no lint-infra-probe.service) >/dev/null 2>&1; then
        skip "systemd-analyze verify/security" "systemd-analyze cannot load even a trivial unit on this machine"
    else
        # verify only warns (exit 0) about unknown or malformed settings: any output is a finding.
        if (cd "$work/units" && systemd-analyze verify --man=no "${units[@]}") >"$work/verify.log" 2>&1 \
            && ! [ -s "$work/verify.log" ]; then
            log "systemd-analyze verify: ${units[*]} are valid"
        else
            cat "$work/verify.log" >&2
            failed+=("systemd-analyze verify")
        fi
        if (cd "$work/units" && systemd-analyze security --offline=yes --no-pager \
            --threshold="$SYSTEMD_EXPOSURE_MAX" "${units[@]}") >"$work/security.log" 2>&1; then
            log "systemd-analyze security: $(grep -o 'Overall exposure level for [^ ]*: [0-9.]*' "$work/security.log" | sed 's/Overall exposure level for //' | paste -sd, - | sed 's/,/, /g') (max $((SYSTEMD_EXPOSURE_MAX / 10)).$((SYSTEMD_EXPOSURE_MAX % 10)))"
        else
            grep -E '✗|Overall' "$work/security.log" >&2 || cat "$work/security.log" >&2
            failed+=("systemd-analyze security")
        fi
    fi
fi

if [ "${#failed[@]}" -gt 0 ]; then
    log "FAILED: ${failed[*]}"
    exit 1
fi
log "all infra checks passed"
