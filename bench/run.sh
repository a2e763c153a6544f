#!/usr/bin/env bash
# Ingest benchmark: `gma serve` against a bare axum baseline, in one run.
#
#   bash bench/run.sh
#
# Builds release binaries, starts both servers on free loopback ports, runs
#   1. throughput  (closed loop, $CONNECTIONS connections, $DURATION s + $WARMUP s warm-up)
#   2. rate        (open loop at $RATE req/s for $RATE_SECS s)
#   3. big         ($BIG_CONCURRENCY concurrent bodies of $BIG_SIZE bytes, server RSS sampled)
# against each server, writes every JSON result line to
# bench/results/ingest-<UTC timestamp>.jsonl and prints a summary with the targets.
#
# Knobs (environment): CONNECTIONS DURATION WARMUP RATE RATE_SECS BIG_CONCURRENCY
# BIG_SIZE, SKIP_BUILD=1 (use existing target/release binaries), GMA_BIN (gma
# binary to benchmark, default target/release/gma), STRICT=1 (exit 3 when a
# target is missed).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

CONNECTIONS="${CONNECTIONS:-16}"
DURATION="${DURATION:-10}"
WARMUP="${WARMUP:-2}"
RATE="${RATE:-5000}"
RATE_SECS="${RATE_SECS:-10}"
BIG_CONCURRENCY="${BIG_CONCURRENCY:-16}"
BIG_SIZE="${BIG_SIZE:-26214400}"
GMA_BIN="${GMA_BIN:-$ROOT/target/release/gma}"
BARE_BIN="$ROOT/target/release/bare-axum"
LOADGEN="$ROOT/target/release/gma-loadgen"

log() { printf '[bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    log "building release binaries (gma, gma-bench)"
    cargo build --release -p gma -p gma-bench
fi
for bin in "$GMA_BIN" "$BARE_BIN" "$LOADGEN"; do
    [[ -x "$bin" ]] || { log "missing binary: $bin"; exit 1; }
done

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$ROOT/bench/results"
RESULTS="$ROOT/bench/results/ingest-$STAMP.jsonl"
: >"$RESULTS"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gma-bench.XXXXXX")"
DATA_DIR="$WORK/gma-data"
GITHUB_WEBHOOK_SECRET="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
export GITHUB_WEBHOOK_SECRET

BARE_PID=""
GMA_PID=""
cleanup() {
    local pid
    for pid in "$GMA_PID" "$BARE_PID"; do
        if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
        fi
    done
    for pid in "$GMA_PID" "$BARE_PID"; do
        if [[ -n "$pid" ]]; then
            # Give the server a few seconds to exit cleanly, then insist.
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_ready() { # name pid port logfile
    if ! "$LOADGEN" wait-ready --url "http://127.0.0.1:$3/healthz" --timeout-secs 60 >/dev/null; then
        log "$1 did not become ready; last log lines:"
        tail -n 40 "$4" >&2 || true
        exit 1
    fi
    kill -0 "$2" 2>/dev/null || { log "$1 exited"; tail -n 40 "$4" >&2; exit 1; }
}

BARE_PORT="$(free_port)"
log "starting bare-axum on 127.0.0.1:$BARE_PORT"
"$BARE_BIN" --port "$BARE_PORT" >"$WORK/bare-axum.log" 2>&1 &
BARE_PID=$!
wait_ready bare-axum "$BARE_PID" "$BARE_PORT" "$WORK/bare-axum.log"

declare -A URL=([bare-axum]="http://127.0.0.1:$BARE_PORT/webhook")
declare -A PID=([bare-axum]="$BARE_PID")

# gma starts afresh (new process, empty data directory) for each phase, so no phase measures
# the previous one's backlog: the throughput phase leaves about a gigabyte of log for the
# compactor, which would otherwise be folded into Parquet during the 5,000 req/s phase.
GMA_RUN=0
start_gma() {
    if [[ -n "$GMA_PID" ]]; then
        kill -9 "$GMA_PID" 2>/dev/null || true
        wait "$GMA_PID" 2>/dev/null || true
    fi
    # Let the kernel finish writing back the previous phase's data first, so its writeback
    # does not land in this phase's fsyncs.
    sync
    GMA_RUN=$((GMA_RUN + 1))
    # Earlier data directories stay until the end: deleting a gigabyte mid-run (with the
    # filesystem's discard) stalls the next phase's fsyncs.
    DATA_DIR="$WORK/gma-data-$GMA_RUN"
    GMA_PORT="$(free_port)"
    while [[ "$GMA_PORT" == "$BARE_PORT" ]]; do GMA_PORT="$(free_port)"; done
    log "starting gma serve on 127.0.0.1:$GMA_PORT (data dir $DATA_DIR)"
    "$GMA_BIN" serve --host 127.0.0.1 --port "$GMA_PORT" --data-dir "$DATA_DIR" >"$WORK/gma.log" 2>&1 &
    GMA_PID=$!
    wait_ready gma "$GMA_PID" "$GMA_PORT" "$WORK/gma.log"
    URL[gma]="http://127.0.0.1:$GMA_PORT/webhook"
    PID[gma]="$GMA_PID"
}

# Run metadata first, so a results file can be read on its own later.
python3 - "$STAMP" "$(git rev-parse --short --verify -q HEAD 2>/dev/null || echo unknown)" >>"$RESULTS" <<'PY'
import json, os, platform, sys
print(json.dumps({
    "mode": "meta", "timestamp": sys.argv[1], "git": sys.argv[2],
    "host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
    "loadavg": os.getloadavg(),
}))
PY

FAILED=0
loadgen() { # label mode args...
    local label="$1" mode="$2" out rc=0
    shift 2
    log "$mode -> $label"
    out="$("$LOADGEN" "$mode" --url "${URL[$label]}" --label "$label" "$@")" || rc=$?
    if [[ -n "$out" ]]; then
        printf '%s\n' "$out" >>"$RESULTS"
    else
        printf '{"mode":"%s","label":"%s","failed":true,"exit_code":%d}\n' "$mode" "$label" "$rc" >>"$RESULTS"
    fi
    if [[ $rc -ne 0 ]]; then
        log "$mode -> $label exited with $rc"
        FAILED=1
    fi
    if ! kill -0 "${PID[$label]}" 2>/dev/null; then
        log "$label is no longer running"
        FAILED=1
    fi
}

# Each phase runs against both servers back to back, so the two numbers that are
# compared are taken under the same machine conditions.
for label in bare-axum gma; do
    [[ "$label" == gma ]] && start_gma
    loadgen "$label" throughput --connections "$CONNECTIONS" \
        --duration-secs "$DURATION" --warmup-secs "$WARMUP"
done
for label in bare-axum gma; do
    [[ "$label" == gma ]] && start_gma
    loadgen "$label" rate --rate "$RATE" --duration-secs "$RATE_SECS"
done
for label in gma bare-axum; do
    [[ "$label" == gma ]] && start_gma
    loadgen "$label" big --concurrency "$BIG_CONCURRENCY" --size-bytes "$BIG_SIZE" \
        --pid "${PID[$label]}"
done

du -sb "$DATA_DIR" 2>/dev/null | awk '{printf "{\"mode\":\"data-dir\",\"label\":\"gma\",\"bytes\":%s}\n", $1}' >>"$RESULTS" || true

log "results: ${RESULTS#"$ROOT"/}"
SUMMARY_RC=0
python3 - "$RESULTS" "$RATE" "$BIG_CONCURRENCY" "$BIG_SIZE" <<'PY' || SUMMARY_RC=$?
import json, sys

path, rate, conc, size = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rows = [json.loads(l) for l in open(path) if l.strip()]
by = {(r.get("mode"), r.get("label")): r for r in rows}

def get(mode, label, key):
    r = by.get((mode, label))
    return None if r is None else r.get(key)

def fmt(v, unit=""):
    return "n/a" if v is None else f"{v:,.2f}{unit}" if isinstance(v, float) else f"{v}{unit}"

RATIO_MIN, P99_MAX_MS, RSS_MAX_MIB = 0.7, 10.0, 200.0
bare_rps, gma_rps = get("throughput", "bare-axum", "rps"), get("throughput", "gma", "rps")
ratio = gma_rps / bare_rps if gma_rps is not None and bare_rps else None

print()
print(f"{'':34}{'bare-axum':>14}{'gma':>14}")
def line(name, mode, key, unit=""):
    print(f"{name:34}{fmt(get(mode, 'bare-axum', key), unit):>14}{fmt(get(mode, 'gma', key), unit):>14}")
line("throughput req/s", "throughput", "rps")
line("throughput p50 ms", "throughput", "p50_ms")
line("throughput p99 ms", "throughput", "p99_ms")
line("throughput errors", "throughput", "errors")
line(f"p50 ms @ {rate:g} req/s", "rate", "p50_ms")
line(f"p99 ms @ {rate:g} req/s", "rate", "p99_ms")
line(f"max ms @ {rate:g} req/s", "rate", "max_ms")
line("achieved req/s", "rate", "achieved_rps")
line("rate errors", "rate", "errors")
line("rate dropped (in-flight cap)", "rate", "dropped")
line(f"peak RSS MiB, {conc} x {size / 2**20:g} MiB", "big", "peak_rss_mib")
line("RSS MiB before burst", "big", "baseline_rss_mib")
line("big errors", "big", "errors")
print()

def verdict(ok):
    return "n/a" if ok is None else ("MET" if ok else "NOT MET")
gma_p99 = get("rate", "gma", "p99_ms")
gma_rss = get("big", "gma", "peak_rss_mib")
targets = [
    (f"throughput ratio gma/bare >= {RATIO_MIN}", fmt(ratio), None if ratio is None else ratio >= RATIO_MIN),
    (f"p99 @ {rate:g} req/s <= {P99_MAX_MS:g} ms", fmt(gma_p99, " ms"),
     None if gma_p99 is None else gma_p99 <= P99_MAX_MS and not get("rate", "gma", "errors") and not get("rate", "gma", "dropped")),
    (f"peak RSS ({conc} x 25 MiB) <= {RSS_MAX_MIB:g} MiB", fmt(gma_rss, " MiB"),
     None if gma_rss is None else gma_rss <= RSS_MAX_MIB and not get("big", "gma", "errors")),
]
print(f"{'target (gma)':40}{'value':>14}  result")
for name, value, ok in targets:
    print(f"{name:40}{value:>14}  {verdict(ok)}")
errs = [r for r in rows if r.get("errors") or r.get("dropped") or r.get("failed")]
for r in errs:
    print(f"!! {r.get('label')} {r.get('mode')}: errors={r.get('errors')} dropped={r.get('dropped')} "
          f"statuses={r.get('statuses')} first_errors={r.get('first_errors')}")
sys.exit(0 if all(ok for _, _, ok in targets) else 3)
PY

if [[ $FAILED -ne 0 ]]; then
    log "some runs reported errors; see $RESULTS"
    exit 1
fi
if [[ "${STRICT:-0}" == 1 && $SUMMARY_RC -ne 0 ]]; then
    exit "$SUMMARY_RC"
fi
