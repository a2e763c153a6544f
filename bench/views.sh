#!/usr/bin/env bash
# Views benchmark: `gma query "SELECT * FROM <view>"` over 200,000 generated events in the data
# directory's Parquet files, side by side with DuckDB running equivalent SQL
# (bench/duckdb/*.sql) over the same Parquet files, in the same run.
#
#   bash bench/views.sh
#
# Steps: build release binaries (gma and gma-bench together), install PyPI duckdb in a venv,
# generate linked events with gma-views-gen (pull requests with their pushes, reviews, workflow
# runs, deployments...), `gma import` them into a fresh data directory (checked: every event
# ends up in Parquet files, none left in the log), read the files once so both tools start from a
# warm page cache, check that both tools return the same rows (counts and sums per view; exit 1
# if not), then time each view $RUNS times per tool, alternating, and report the medians.
# Results go to bench/results/views-<UTC timestamp>.json.
#
# Knobs (environment): EVENTS (default 200000), FILES (input files, 8), RUNS (3), VIEWS
# (default "pull_requests pr_cycle_time workflow_runs"), DUCKDB_VERSION (2.0.0), BENCH_VENV
# (~/.cache/gma-bench/venv), SKIP_BUILD=1, GMA_BIN, KEEP=1 (keep the work directory),
# STRICT=1 (exit 3 when gma is slower than DuckDB in total), NOTE (free text kept in the result).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

EVENTS="${EVENTS:-200000}"
FILES="${FILES:-8}"
RUNS="${RUNS:-3}"
VIEWS="${VIEWS:-pull_requests pr_cycle_time workflow_runs}"
DUCKDB_VERSION="${DUCKDB_VERSION:-2.0.0}"
BENCH_VENV="${BENCH_VENV:-$HOME/.cache/gma-bench/venv}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
GMA_BIN="${GMA_BIN:-$TARGET_DIR/release/gma}"
GEN_BIN="$TARGET_DIR/release/gma-views-gen"

log() { printf '[views-bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    log "building release binaries (gma, gma-bench)"
    cargo build --release -p gma -p gma-bench
fi
for bin in "$GMA_BIN" "$GEN_BIN"; do
    [[ -x "$bin" ]] || { log "missing binary: $bin"; exit 1; }
done
[[ -x /usr/bin/time ]] || { log "/usr/bin/time is needed for gma's peak RSS (apt-get install time)"; exit 1; }

if ! "$BENCH_VENV/bin/python" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$DUCKDB_VERSION')" 2>/dev/null; then
    log "installing duckdb==$DUCKDB_VERSION into $BENCH_VENV"
    python3 -m venv "$BENCH_VENV"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$BENCH_VENV/bin/pip" install -q "duckdb==$DUCKDB_VERSION"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gma-views-bench.XXXXXX")"
cleanup() { [[ "${KEEP:-0}" == 1 ]] && log "kept $WORK" || rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$ROOT/bench/results"
RESULTS="$ROOT/bench/results/views-$STAMP.json"

log "generating $EVENTS events in $FILES files"
"$GEN_BIN" --out "$WORK/input" --events "$EVENTS" --files "$FILES" \
    --payloads "$ROOT/testdata/webhooks" >"$WORK/generate.json"

log "gma import into a fresh data directory"
GMA_LOG=warn /usr/bin/time -v -o "$WORK/import.time" \
    "$GMA_BIN" import "$WORK/input" --data-dir "$WORK/data" >"$WORK/import.txt"
cat "$WORK/import.txt" >&2
rm -rf "$WORK/input"
sync

log "checking rows and timing: $VIEWS ($RUNS runs each, alternating)"
STATUS=0
"$BENCH_VENV/bin/python" - "$GMA_BIN" "$WORK" "$RESULTS" "$RUNS" "$STAMP" \
    "$(git rev-parse --short --verify -q HEAD 2>/dev/null || echo unknown)" "${NOTE:-}" $VIEWS <<'PY' || STATUS=$?
import csv, io, json, os, pathlib, platform, re, statistics, subprocess, sys, time

import duckdb

gma, work, results, runs, stamp, git, note, *views = sys.argv[1:]
runs = int(runs)
work = pathlib.Path(work)
data = work / "data"
root = pathlib.Path(results).resolve().parents[2]
duckdb_run = [sys.executable, str(root / "bench" / "duckdb" / "run.py"), str(data)]
sys.path.insert(0, str(root / "bench" / "duckdb"))
import run as duck  # noqa: E402  (bench/duckdb/run.py: the views' check expressions)

env = dict(os.environ, GMA_LOG="warn")
loadavg_start = os.getloadavg()


def time_v(path):
    """Wall seconds, CPU seconds and peak RSS (MiB) from a /usr/bin/time -v report."""
    text = pathlib.Path(path).read_text()
    field = lambda name: re.search(rf"{re.escape(name)}: (.+)", text).group(1).strip()
    return {
        "cpu_seconds": round(float(field("User time (seconds)")) + float(field("System time (seconds)")), 3),
        "peak_rss_mib": round(int(field("Maximum resident set size (kbytes)")) / 1024, 1),
    }


# The store: every event in Parquet files, nothing left in the log.
files = duck.parquet_files(data)
parquet_bytes = sum(os.path.getsize(f) for f in files)
log_files = [p for p in (data / "wal").rglob("*") if p.is_file()] if (data / "wal").exists() else []
generate = json.loads((work / "generate.json").read_text())
imported = {"summary": (work / "import.txt").read_text().strip(), **time_v(work / "import.time")}
problems = []
if not files:
    problems.append("gma import left no Parquet file under tables/events")
if log_files:
    problems.append(f"gma import left {len(log_files)} files in the log: {[str(p) for p in log_files[:3]]}")


def gma_query(sql):
    done = subprocess.run([gma, "query", "--format", "csv", "--data-dir", str(data), sql],
                          env=env, check=True, capture_output=True, text=True)
    return list(csv.DictReader(io.StringIO(done.stdout)))


stored = int(gma_query("SELECT COUNT(*) AS n FROM events")[0]["n"])
if stored != generate["lines"]:
    problems.append(f"the events table holds {stored} rows, {generate['lines']} were generated")

# The page cache holds the files before anything is timed.
for f in files:
    with open(f, "rb") as handle:
        while handle.read(1 << 20):
            pass

checks = {}
for view in views:
    gma_row = gma_query(f"SELECT {duck.CHECKS[view]} FROM {view}")[0]
    gma_checks = {k: (None if v == "" else int(v)) for k, v in gma_row.items()}
    duck_checks = json.loads(subprocess.run(duckdb_run + [view, "check"], check=True,
                                            capture_output=True, text=True).stdout)["checks"]
    same = gma_checks == duck_checks
    checks[view] = {"gma": gma_checks, "duckdb": duck_checks, "same": same}
    print(f"  {view:14} rows: gma {gma_checks['rows']:,}  duckdb {duck_checks['rows']:,}"
          f"  {'same' if same else 'DIFFERENT'}", file=sys.stderr)
    if not same:
        problems.append(f"{view}: gma {gma_checks} but duckdb {duck_checks}")


def run_gma(view):
    report = work / "gma.time"
    start = time.monotonic()
    with open(os.devnull, "wb") as null:
        subprocess.run(["/usr/bin/time", "-v", "-o", str(report), gma, "query", "--format", "csv",
                        "--data-dir", str(data), f"SELECT * FROM {view}"],
                       env=env, check=True, stdout=null)
    return {"seconds": round(time.monotonic() - start, 3), **time_v(report)}


def run_duckdb(view):
    start = time.monotonic()
    done = subprocess.run(duckdb_run + [view, "time"], check=True, capture_output=True, text=True)
    out = json.loads(done.stdout)
    out["process_seconds"] = round(time.monotonic() - start, 3)
    return out


timings = {view: {"gma": [], "duckdb": []} for view in views}
if not problems:
    for round_ in range(1, runs + 1):
        for view in views:
            for label, fn in (("duckdb", run_duckdb), ("gma", run_gma)):
                result = fn(view)
                timings[view][label].append(result)
                print(f"  round {round_} {view:14} {label:6} {result['seconds']:7.2f} s"
                      f"  cpu {result['cpu_seconds']:6.2f} s  rss {result['peak_rss_mib']:7.1f} MiB",
                      file=sys.stderr)

summary = {}
if not problems:
    for view in views:
        med = lambda label, key: statistics.median(r[key] for r in timings[view][label])
        summary[view] = {
            "gma_seconds": med("gma", "seconds"),
            "duckdb_seconds": med("duckdb", "seconds"),
            "duckdb_process_seconds": med("duckdb", "process_seconds"),
            "gma_cpu_seconds": med("gma", "cpu_seconds"),
            "duckdb_cpu_seconds": med("duckdb", "cpu_seconds"),
            "gma_peak_rss_mib": max(r["peak_rss_mib"] for r in timings[view]["gma"]),
            "duckdb_peak_rss_mib": max(r["peak_rss_mib"] for r in timings[view]["duckdb"]),
            "rows": checks[view]["gma"]["rows"],
        }
        s = summary[view]
        s["ratio_gma_over_duckdb"] = round(s["gma_seconds"] / s["duckdb_seconds"], 3)
        s["ratio_gma_over_duckdb_process"] = round(s["gma_seconds"] / s["duckdb_process_seconds"], 3)
    total = {
        "gma_seconds": round(sum(summary[v]["gma_seconds"] for v in views), 3),
        "duckdb_seconds": round(sum(summary[v]["duckdb_seconds"] for v in views), 3),
        "duckdb_process_seconds": round(sum(summary[v]["duckdb_process_seconds"] for v in views), 3),
    }
    total["ratio_gma_over_duckdb"] = round(total["gma_seconds"] / total["duckdb_seconds"], 3)
    total["ratio_gma_over_duckdb_process"] = round(total["gma_seconds"] / total["duckdb_process_seconds"], 3)
    total["target_met"] = total["ratio_gma_over_duckdb"] <= 1.0
    summary["total"] = total

result = {
    "mode": "views", "timestamp": stamp, "git": git, "note": note, "duckdb": duckdb.__version__,
    "host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
    "loadavg_start": loadavg_start, "loadavg_end": os.getloadavg(),
    "generate": generate, "import": imported,
    "store": {"events": stored, "parquet_files": len(files), "parquet_bytes": parquet_bytes,
              "log_files": len(log_files)},
    "runs": runs, "checks": checks, "timings": timings, "summary": summary, "problems": problems,
}
pathlib.Path(results).write_text(json.dumps(result, indent=1) + "\n")

print(file=sys.stderr)
print(f"input: {generate['lines']:,} events, {generate['bytes'] / 2**30:.2f} GiB of NDJSON, "
      f"{generate['stories']:,} pull request stories; store: {len(files)} Parquet files, "
      f"{parquet_bytes / 2**20:.1f} MiB", file=sys.stderr)
for p in problems:
    print(f"!! {p}", file=sys.stderr)
if problems:
    sys.exit(1)
print(f"{'view':16} {'rows':>8} {'gma s':>8} {'duckdb s':>9} {'gma/duckdb':>11} {'duckdb proc s':>14}"
      f" {'gma/proc':>9} {'gma RSS MiB':>12} {'duckdb RSS':>11}", file=sys.stderr)
for view in views:
    s = summary[view]
    print(f"{view:16} {s['rows']:8,} {s['gma_seconds']:8.2f} {s['duckdb_seconds']:9.2f}"
          f" {s['ratio_gma_over_duckdb']:11.2f} {s['duckdb_process_seconds']:14.2f}"
          f" {s['ratio_gma_over_duckdb_process']:9.2f} {s['gma_peak_rss_mib']:12.1f}"
          f" {s['duckdb_peak_rss_mib']:11.1f}", file=sys.stderr)
t = summary["total"]
print(f"{'total':16} {'':8} {t['gma_seconds']:8.2f} {t['duckdb_seconds']:9.2f}"
      f" {t['ratio_gma_over_duckdb']:11.2f} {t['duckdb_process_seconds']:14.2f}"
      f" {t['ratio_gma_over_duckdb_process']:9.2f}", file=sys.stderr)
print(f"target gma <= 1.0 x DuckDB (total, medians of {runs}): "
      f"{'MET' if t['target_met'] else 'NOT MET'} ({t['ratio_gma_over_duckdb']:.2f})", file=sys.stderr)
sys.exit(0 if t["target_met"] else 3)
PY
log "results: ${RESULTS#"$ROOT"/}"
if [[ $STATUS -eq 1 ]]; then
    log "a check failed; see $RESULTS"
    exit 1
fi
if [[ "${STRICT:-0}" == 1 && $STATUS -ne 0 ]]; then
    exit "$STATUS"
fi
[[ $STATUS -eq 0 || $STATUS -eq 3 ]] || exit "$STATUS"
