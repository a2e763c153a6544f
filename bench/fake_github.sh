# What the benchmarks that run against gma-fake-github share: the binaries, logging, a work
# directory cleaned up on exit, starting and stopping the fake, snapshots of its counters, and
# the list of checks. Sourced by bench/retry.sh and bench/leech.sh after they set BENCH (their
# name in log lines) and cd to the repository root.

TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
GMA_BIN="${GMA_BIN:-$TARGET_DIR/release/gma}"
FAKE_BIN="${FAKE_BIN:-$TARGET_DIR/release/gma-fake-github}"
KEY_FILE="$ROOT/testdata/github-app/test-app-private-key.pem"

log() { printf '[%s %s] %s\n' "$BENCH" "$(date -u +%H:%M:%S)" "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }
now() { date +%s.%N; }

# Builds the release binaries (unless SKIP_BUILD=1) and checks them and the tools named.
require() {
    if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
        log "building release binaries (gma, gma-bench)"
        cargo build --release -p gma -p gma-bench
    fi
    for bin in "$GMA_BIN" "$FAKE_BIN"; do
        [[ -x "$bin" ]] || fail "missing binary: $bin"
    done
    [[ -x /usr/bin/time ]] || fail "/usr/bin/time is missing (sudo apt-get install -y time)"
    for tool in "$@"; do
        command -v "$tool" >/dev/null || fail "$tool is missing (sudo apt-get install -y $tool)"
    done
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gma-$BENCH.XXXXXX")"
FAKE_PID=""
stop_fake() {
    if [[ -n "$FAKE_PID" ]] && kill -0 "$FAKE_PID" 2>/dev/null; then
        kill -TERM "$FAKE_PID" 2>/dev/null || true
        wait "$FAKE_PID" 2>/dev/null || true
    fi
    FAKE_PID=""
}
cleanup() {
    stop_fake
    [[ "${KEEP:-0}" == 1 ]] && log "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
LOADAVG="$(cut -d' ' -f1-3 /proc/loadavg)"

# Starts the fake named $1 with the other arguments; sets FAKE_PID and READY (its first
# stdout line: GITHUB_API_URL, GITHUB_APP_ID and its counts, as JSON).
start_fake() {
    local name="$1"
    shift
    "$FAKE_BIN" --seed "$SEED" --stats-file "$WORK/$name.stats.json" "$@" \
        >"$WORK/$name.fake.out" 2>"$WORK/$name.fake.err" &
    FAKE_PID=$!
    for _ in $(seq 1200); do
        [[ -s "$WORK/$name.fake.out" ]] && break
        kill -0 "$FAKE_PID" 2>/dev/null || fail "gma-fake-github exited: $(cat "$WORK/$name.fake.err")"
        sleep 0.1
    done
    [[ -s "$WORK/$name.fake.out" ]] || fail "gma-fake-github did not start within 120 s"
    READY="$(head -n1 "$WORK/$name.fake.out")"
}

# Writes the counters of the fake named $1 to $2 (SIGUSR1 snapshot).
snapshot() {
    local stats="$WORK/$1.stats.json"
    rm -f "$stats"
    kill -USR1 "$FAKE_PID"
    for _ in $(seq 100); do [[ -s "$stats" ]] && break; sleep 0.05; done
    [[ -s "$stats" ]] || fail "gma-fake-github wrote no stats"
    mv "$stats" "$2"
}

checks=()
# Records check $1 as passed when $2 is 1.
check() {
    if [[ "$2" == 1 ]]; then checks+=("ok: $1"); else checks+=("FAILED: $1"); fi
}

# Logs every check; sets OK to 1 when all passed, else 0.
report_checks() {
    OK=1
    for c in "${checks[@]}"; do
        log "$c"
        [[ "$c" == ok:* ]] || OK=0
    done
}
