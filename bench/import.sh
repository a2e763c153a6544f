#!/usr/bin/env bash
# Import benchmark: `gma import` of >= 1 GiB of NDJSON (GMA's BigQuery export shape) into a
# fresh data directory, side by side with DuckDB reading the same files into one zstd Parquet
# file, in the same run.
#
#   bash bench/import.sh
#
# Steps: build release binaries (gma and gma-bench together: building gma alone changes feature
# unification and rebuilds much of the tree), install PyPI duckdb in a venv, generate the input
# with gma-import-gen, read it once so both tools start from a warm page cache, then run
# DuckDB and gma alternately $ROUNDS times each. Both keep the payload as text and both end
# with their output fsynced (gma fsyncs every file it writes; the DuckDB run fsyncs its file
# after COPY). Results go to bench/results/import-<UTC timestamp>.jsonl and a summary is
# printed.
#
# Knobs (environment): BYTES (input size, default 1 GiB), FILES (input files, default 8),
# ROUNDS (default 2), DUCKDB_VERSION (default 2.0.0), BENCH_VENV (venv path, default
# ~/.cache/gma-bench/venv), SKIP_BUILD=1 (use existing release binaries), GMA_BIN, KEEP=1
# (keep the work directory), STRICT=1 (exit 3 when gma is slower than DuckDB).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

BYTES="${BYTES:-1073741824}"
FILES="${FILES:-8}"
ROUNDS="${ROUNDS:-2}"
DUCKDB_VERSION="${DUCKDB_VERSION:-2.0.0}"
BENCH_VENV="${BENCH_VENV:-$HOME/.cache/gma-bench/venv}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
GMA_BIN="${GMA_BIN:-$TARGET_DIR/release/gma}"
GEN_BIN="$TARGET_DIR/release/gma-import-gen"

log() { printf '[import-bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    log "building release binaries (gma, gma-bench)"
    cargo build --release -p gma -p gma-bench
fi
for bin in "$GMA_BIN" "$GEN_BIN"; do
    [[ -x "$bin" ]] || { log "missing binary: $bin"; exit 1; }
done

if ! "$BENCH_VENV/bin/python" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$DUCKDB_VERSION')" 2>/dev/null; then
    log "installing duckdb==$DUCKDB_VERSION into $BENCH_VENV"
    python3 -m venv "$BENCH_VENV"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$BENCH_VENV/bin/pip" install -q "duckdb==$DUCKDB_VERSION"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gma-import-bench.XXXXXX")"
cleanup() { [[ "${KEEP:-0}" == 1 ]] && log "kept $WORK" || rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$ROOT/bench/results"
RESULTS="$ROOT/bench/results/import-$STAMP.jsonl"
: >"$RESULTS"
python3 - "$STAMP" "$(git rev-parse --short --verify -q HEAD 2>/dev/null || echo unknown)" \
    "$("$BENCH_VENV/bin/python" -c 'import duckdb; print(duckdb.__version__)')" >>"$RESULTS" <<'PY'
import json, os, platform, sys
print(json.dumps({
    "mode": "meta", "timestamp": sys.argv[1], "git": sys.argv[2], "duckdb": sys.argv[3],
    "host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
    "loadavg": os.getloadavg(),
}))
PY

log "generating $BYTES bytes of NDJSON in $FILES files"
"$GEN_BIN" --out "$WORK/export" --bytes "$BYTES" --files "$FILES" \
    --payloads "$ROOT/testdata/webhooks" >>"$RESULTS"
# Warm the page cache, so neither tool pays for the first read from disk.
cat "$WORK"/export/*.ndjson >/dev/null
sync

run_duckdb() { # round
    local out="$WORK/duckdb-$1.parquet"
    "$BENCH_VENV/bin/python" - "$WORK/export" "$out" "$1" <<'PY'
import json, os, resource, sys, time
import duckdb
export, out, round_ = sys.argv[1], sys.argv[2], int(sys.argv[3])
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
start, cpu_start = time.monotonic(), cpu()
con = duckdb.connect(config={"autoinstall_known_extensions": False})
con.execute("SET TimeZone='UTC'")
con.execute(f"""
COPY (
  SELECT delivery_id, signature, CAST(received AS TIMESTAMPTZ) AS received, event, payload
  FROM read_json('{export}/*.ndjson', format = 'newline_delimited',
       columns = {{delivery_id: 'VARCHAR', signature: 'VARCHAR', received: 'VARCHAR',
                  event: 'VARCHAR', payload: 'VARCHAR'}})
) TO '{out}' (FORMAT parquet, COMPRESSION zstd)
""")
fd = os.open(out, os.O_RDONLY)
os.fsync(fd)
os.close(fd)
seconds, cpu_seconds = time.monotonic() - start, cpu() - cpu_start
rows = con.execute(f"SELECT COUNT(*) FROM '{out}'").fetchone()[0]
print(json.dumps({"mode": "import", "label": "duckdb", "round": round_, "seconds": round(seconds, 3),
                  "cpu_seconds": round(cpu_seconds, 3),
                  "rows": rows, "threads": int(con.execute("SELECT current_setting('threads')").fetchone()[0]),
                  "output_bytes": os.path.getsize(out)}))
PY
    rm -f "$out"
}

run_gma() { # round
    local data="$WORK/gma-data-$1"
    python3 - "$GMA_BIN" "$WORK/export" "$data" "$1" <<'PY'
import json, os, resource, subprocess, sys, time
gma, export, data, round_ = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
env = dict(os.environ, GMA_LOG="warn")
def cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
start, cpu_start = time.monotonic(), cpu()
done = subprocess.run([gma, "import", export, "--data-dir", data], env=env, check=True,
                      capture_output=True, text=True)
seconds, cpu_seconds = time.monotonic() - start, cpu() - cpu_start
rows = subprocess.run([gma, "query", "--format", "csv", "--data-dir", data,
                       "SELECT COUNT(*) AS n FROM events"], env=env, check=True,
                      capture_output=True, text=True).stdout.split()[-1]
size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(os.path.join(data, "tables")) for f in fs)
print(json.dumps({"mode": "import", "label": "gma", "round": round_, "seconds": round(seconds, 3),
                  "cpu_seconds": round(cpu_seconds, 3), "rows": int(rows), "output_bytes": size,
                  "summary": done.stdout.strip()}))
PY
    rm -rf "$data"
}

for round in $(seq "$ROUNDS"); do
    sync
    log "round $round: duckdb"
    run_duckdb "$round" >>"$RESULTS"
    sync
    log "round $round: gma import"
    run_gma "$round" >>"$RESULTS"
done

log "results: ${RESULTS#"$ROOT"/}"
SUMMARY_RC=0
python3 - "$RESULTS" <<'PY' || SUMMARY_RC=$?
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
gen = next(r for r in rows if r["mode"] == "generate")
runs = [r for r in rows if r["mode"] == "import"]
best = {label: min(r["seconds"] for r in runs if r["label"] == label) for label in ("duckdb", "gma")}
cpu = {label: min(r["cpu_seconds"] for r in runs if r["label"] == label) for label in ("duckdb", "gma")}
print()
print(f"input: {gen['bytes'] / 2**30:.2f} GiB, {gen['lines']:,} lines in {gen['files']} files")
for r in runs:
    print(f"  round {r['round']} {r['label']:7} {r['seconds']:8.2f} s (cpu {r['cpu_seconds']:6.2f} s)  {gen['bytes'] / 2**20 / r['seconds']:7.1f} MiB/s"
          f"  rows {r['rows']:,}  output {r['output_bytes'] / 2**20:.0f} MiB")
ratio = best["gma"] / best["duckdb"]
print(f"best: duckdb {best['duckdb']:.2f} s, gma {best['gma']:.2f} s; gma/duckdb = {ratio:.2f} (target <= 1.0: {'MET' if ratio <= 1.0 else 'NOT MET'})")
print(f"least CPU: duckdb {cpu['duckdb']:.2f} s, gma {cpu['gma']:.2f} s; gma/duckdb = {cpu['gma'] / cpu['duckdb']:.2f}")
with open(sys.argv[1], "a") as f:
    f.write(json.dumps({"mode": "summary", "duckdb_best_seconds": best["duckdb"], "gma_best_seconds": best["gma"],
                        "duckdb_least_cpu_seconds": cpu["duckdb"], "gma_least_cpu_seconds": cpu["gma"],
                        "ratio_gma_over_duckdb": round(ratio, 3), "target_met": ratio <= 1.0}) + "\n")
bad = [r for r in runs if r["rows"] != gen["lines"]]
for r in bad:
    print(f"!! {r['label']} round {r['round']} stored {r['rows']} rows, expected {gen['lines']}")
sys.exit(1 if bad else (3 if ratio > 1.0 else 0))
PY
if [[ $SUMMARY_RC -eq 1 ]]; then
    log "a run stored the wrong number of rows; see $RESULTS"
    exit 1
fi
if [[ "${STRICT:-0}" == 1 && $SUMMARY_RC -ne 0 ]]; then
    exit "$SUMMARY_RC"
fi
