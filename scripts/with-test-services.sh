#!/usr/bin/env bash
# Runs a command with the services the tests need: a private Redis and a local SQS server (moto),
# each on a free port of 127.0.0.1, installed on first use and always stopped afterwards.
#
#   scripts/with-test-services.sh cargo test --workspace
#
# The command sees (and only the command: nothing is exported to the caller's shell):
#   HOOKBRIDGE_TEST_REDIS_URL     redis://127.0.0.1:PORT/
#   HOOKBRIDGE_TEST_SQS_ENDPOINT  http://127.0.0.1:PORT
#   AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
#
#   HOOKBRIDGE_CHROMIUM           path of Debian's chromium (the browser tests drive it headless)
#   HOOKBRIDGE_CHROMEDRIVER       path of its chromedriver
#
# With HOOKBRIDGE_NEED_WRK=1 (make bench) it also installs wrk, the benchmarks' load generator.
#
# Why a script and not Docker: these machines have no Docker, but they do have apt and PyPI. moto is
# installed into .test-env/venv (reused on later runs); logs are kept in .test-env/ for post-mortems.
# The script exits with the command's status.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMMAND [ARGS...]" >&2
    exit 2
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
env_dir="$root/.test-env"
venv="$env_dir/venv"
mkdir -p "$env_dir"

log() { echo "with-test-services: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root (or sudo) to run: $*"
    fi
}

apt_updated=0
apt_install() {
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install $* by hand"
    if [ "$apt_updated" -eq 0 ]; then
        as_root apt-get update
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

# --- install what is missing -------------------------------------------------------------------
# One install at a time: two first runs at once would each delete the other's half-made venv.
if command -v flock >/dev/null 2>&1; then
    exec 9>"$env_dir/install.lock"
    flock 9
fi
if ! command -v redis-server >/dev/null 2>&1; then
    log "redis-server not found: installing it with apt-get"
    apt_install redis-server
fi
command -v python3 >/dev/null 2>&1 || die "python3 not found (needed for moto_server and port selection)"

if ! { [ -x "$venv/bin/moto_server" ] && "$venv/bin/python" -c 'import moto.server' >/dev/null 2>&1; }; then
    log "installing moto_server into $venv (first run only)"
    rm -rf "$venv"
    if ! python3 -m venv "$venv" >"$env_dir/venv.log" 2>&1; then
        # Debian ships the venv module separately.
        log "python3 -m venv failed (see $env_dir/venv.log); installing python3-venv"
        rm -rf "$venv"
        apt_install python3-venv
        python3 -m venv "$venv" || die "could not create $venv"
    fi
    "$venv/bin/python" -m pip install --quiet --upgrade pip >"$env_dir/pip.log" 2>&1 || true
    if ! "$venv/bin/python" -m pip install --quiet 'moto[server]' >>"$env_dir/pip.log" 2>&1; then
        tail -n 20 "$env_dir/pip.log" >&2
        die "pip install 'moto[server]' failed (full log: $env_dir/pip.log)"
    fi
fi
# The browser tests' headless browser and its WebDriver server (Debian's packages of the same
# version, so they always match). Without recommends, which would add systemd, avahi and printing;
# fonts-liberation (a recommend) is kept so screenshots show the usual sans-serif font.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    log "chromium or chromedriver not found: installing chromium and chromium-driver with apt-get"
    apt_install --no-install-recommends chromium chromium-driver fonts-liberation
fi
# The benchmarks' load generator (make bench sets HOOKBRIDGE_NEED_WRK=1).
if [ "${HOOKBRIDGE_NEED_WRK:-0}" = 1 ] && ! command -v wrk >/dev/null 2>&1; then
    log "wrk not found: installing it with apt-get"
    apt_install wrk
fi
if command -v flock >/dev/null 2>&1; then
    flock -u 9
fi

# --- pick two free ports (both sockets held open at once so they differ) ------------------------
read -r redis_port moto_port < <(python3 -c '
import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0)); b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])
a.close(); b.close()
')
[ -n "${redis_port:-}" ] && [ -n "${moto_port:-}" ] || die "could not pick free ports"

# --- start the servers; stop them whatever happens ---------------------------------------------
redis_log="$env_dir/redis.log"
moto_log="$env_dir/moto.log"
redis_pid=""
moto_pid=""

stop_services() {
    local pid
    for pid in $redis_pid $moto_pid; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in $redis_pid $moto_pid; do
        # Give each a moment to exit cleanly, then make sure.
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    redis_pid=""
    moto_pid=""
}
# Bash runs a trap only once the foreground command has returned, so the command runs in the
# background and the script waits for it (a wait that signals interrupt). A background command of a
# script ignores SIGINT, so on INT or TERM the command is sent TERM, given time to finish, and then
# the EXIT trap stops the servers.
child=""
on_signal() {
    if [ -n "$child" ]; then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    exit "$1"
}
trap stop_services EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --daemonize no \
    >"$redis_log" 2>&1 &
redis_pid=$!
# moto_server, with ReceiveMessage made atomic (moto picks and marks messages without a lock; see
# the wrapper's docstring).
"$venv/bin/python" "$root/scripts/moto_server_atomic_receive.py" -H 127.0.0.1 -p "$moto_port" \
    >"$moto_log" 2>&1 &
moto_pid=$!

# Waits until `check` succeeds, failing with the log's tail when the server dies or times out.
wait_for() {
    local name=$1 pid=$2 logfile=$3 timeout=$4
    shift 4
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited before answering; last lines of $logfile:"
            tail -n 20 "$logfile" >&2
            exit 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "$name did not answer within ${timeout}s; last lines of $logfile:"
            tail -n 20 "$logfile" >&2
            exit 1
        fi
        sleep 0.2
    done
}

redis_ping() {
    if command -v redis-cli >/dev/null 2>&1; then
        [ "$(redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null)" = "PONG" ]
    else
        python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.sendall(b"PING\r\n")
sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
' "$redis_port"
    fi
}

# Any HTTP answer (even 404) means moto is serving.
moto_ping() {
    python3 -c '
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen("http://127.0.0.1:%s/" % sys.argv[1], timeout=2)
except urllib.error.HTTPError:
    pass
' "$moto_port"
}

wait_for redis-server "$redis_pid" "$redis_log" 20 redis_ping
wait_for moto_server "$moto_pid" "$moto_log" 60 moto_ping
log "redis on 127.0.0.1:$redis_port, moto_server on 127.0.0.1:$moto_port (logs in $env_dir)"

# --- run the command with the services in its environment only ----------------------------------
status=0
# A profile or session token from the caller's shell would not match the test credentials.
env -u AWS_PROFILE -u AWS_SESSION_TOKEN \
    HOOKBRIDGE_TEST_REDIS_URL="redis://127.0.0.1:$redis_port/" \
    HOOKBRIDGE_TEST_SQS_ENDPOINT="http://127.0.0.1:$moto_port" \
    HOOKBRIDGE_CHROMIUM="$(command -v chromium)" \
    HOOKBRIDGE_CHROMEDRIVER="$(command -v chromedriver)" \
    AWS_ACCESS_KEY_ID=testing \
    AWS_SECRET_ACCESS_KEY=testing \
    AWS_REGION=us-east-1 \
    "$@" <&0 &
child=$!
wait "$child" || status=$?
child=""
exit "$status"
