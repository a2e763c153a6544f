#!/usr/bin/env bash
# Typed tables benchmark (issue 14): the analyst views read typed event tables kept by
# `gma views refresh`, instead of every payload of all history. Over EVENTS generated events in
# a data directory, in one run, against DuckDB on the same Parquet files:
#
#   1. building typed tables from scratch: `gma views refresh --only` the four tables DuckDB has
#      twins for (bench/duckdb/*_events.sql) vs DuckDB writing the same four tables
#      (bench/duckdb/typed.py build); then the rest of gma's tables, timed on their own;
#   2. full scans of each view of SCANS: `gma query --no-refresh "SELECT * FROM <view>"` over the
#      typed tables vs DuckDB's payload-reading chain (bench/duckdb/run.py: dedupe by delivery id,
#      extract, newest state) and vs DuckDB running the same latest-state SQL over gma's typed
#      tables (typed.py scan), in both shapes (run.py's twins, which sort whole rows, and
#      joined/*.sql, the shape of gma's views), the ratio taken against DuckDB's faster; the rows
#      are checked equal first (exit 1 if not);
#   3. an incremental refresh after NEW new events (days after the history, landed by `gma
#      import`, which asks the refresh to take them).
#
#   bash bench/tables.sh                  EVENTS=2000000 bash bench/tables.sh
#
# Targets (issue 14): scans <= 0.1 x DuckDB's payload chain and <= 1.0 x DuckDB over the typed
# tables; the build <= 1.0 x DuckDB's; the incremental refresh <= 2 s; every gma process's
# peak RSS <= 1 GiB. Results go to bench/results/tables-<UTC timestamp>.json.
#
# Knobs: EVENTS (600000), DAYS (history in days, 60), NEW (10000), RUNS (3), SCANS (default
# "pull_requests pr_cycle_time workflow_runs dora_lead_time"; DuckDB has no twin of the last, it
# is timed for gma alone), DUCKDB_VERSION (2.0.0), BENCH_VENV, SKIP_BUILD=1, KEEP=1, NOTE.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

EVENTS="${EVENTS:-600000}"
DAYS="${DAYS:-60}"
NEW="${NEW:-10000}"
RUNS="${RUNS:-3}"
SCANS="${SCANS:-pull_requests pr_cycle_time workflow_runs dora_lead_time}"
DUCKDB_VERSION="${DUCKDB_VERSION:-2.0.0}"
BENCH_VENV="${BENCH_VENV:-$HOME/.cache/gma-bench/venv}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
GMA_BIN="${GMA_BIN:-$TARGET_DIR/release/gma}"
GEN_BIN="$TARGET_DIR/release/gma-views-gen"

log() { printf '[tables-bench %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    log "building release binaries (gma, gma-bench)"
    cargo build --release -p gma -p gma-bench
fi
for bin in "$GMA_BIN" "$GEN_BIN"; do
    [[ -x "$bin" ]] || { log "missing binary: $bin"; exit 1; }
done
[[ -x /usr/bin/time ]] || { log "/usr/bin/time is needed for peak RSS (apt-get install time)"; exit 1; }
if ! "$BENCH_VENV/bin/python" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$DUCKDB_VERSION')" 2>/dev/null; then
    log "installing duckdb==$DUCKDB_VERSION into $BENCH_VENV"
    python3 -m venv "$BENCH_VENV"
    PIP_DISABLE_PIP_VERSION_CHECK=1 "$BENCH_VENV/bin/pip" install -q "duckdb==$DUCKDB_VERSION"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/gma-tables-bench.XXXXXX")"
cleanup() { [[ "${KEEP:-0}" == 1 ]] && log "kept $WORK" || rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$ROOT/bench/results"
RESULTS="$ROOT/bench/results/tables-$STAMP.json"

log "generating $EVENTS events over $DAYS days, and $NEW new ones after them"
"$GEN_BIN" --out "$WORK/input" --events "$EVENTS" --days "$DAYS" \
    --payloads "$ROOT/testdata/webhooks" >"$WORK/generate.json"
"$GEN_BIN" --out "$WORK/new" --events "$NEW" --days 1 --files 1 --seed 2 \
    --start-unix $((1767225600 + (DAYS + 7) * 86400)) \
    --payloads "$ROOT/testdata/webhooks" >"$WORK/generate-new.json"

log "gma import into a fresh data directory"
GMA_LOG=warn /usr/bin/time -v -o "$WORK/import.time" \
    "$GMA_BIN" import "$WORK/input" --data-dir "$WORK/data" >"$WORK/import.txt"
rm -rf "$WORK/input"
sync

STATUS=0
"$BENCH_VENV/bin/python" - "$GMA_BIN" "$WORK" "$RESULTS" "$RUNS" "$STAMP" \
    "$(git rev-parse --short --verify -q HEAD 2>/dev/null || echo unknown)" "${NOTE:-}" $SCANS <<'PY' || STATUS=$?
import csv, io, json, os, pathlib, platform, re, statistics, subprocess, sys, time

import duckdb

gma, work, results, runs, stamp, git, note, *scans = sys.argv[1:]
runs = int(runs)
work = pathlib.Path(work)
data = work / "data"
root = pathlib.Path(results).resolve().parents[2]
sys.path.insert(0, str(root / "bench" / "duckdb"))
import run as duck  # noqa: E402
import typed  # noqa: E402

env = dict(os.environ, GMA_LOG="warn")
py = sys.executable
problems = []
loadavg_start = os.getloadavg()


def time_v(path):
    text = pathlib.Path(path).read_text()
    field = lambda name: re.search(rf"{re.escape(name)}: (.+)", text).group(1).strip()
    return {
        "cpu_seconds": round(float(field("User time (seconds)")) + float(field("System time (seconds)")), 3),
        "peak_rss_mib": round(int(field("Maximum resident set size (kbytes)")) / 1024, 1),
    }


def timed_gma(args, name):
    report = work / f"{name}.time"
    start = time.monotonic()
    done = subprocess.run(["/usr/bin/time", "-v", "-o", str(report), gma, *args],
                          env=env, check=True, capture_output=True, text=True)
    return {"seconds": round(time.monotonic() - start, 3), **time_v(report),
            "said": done.stdout.strip()[-600:]}


def gma_query(sql):
    done = subprocess.run([gma, "query", "--no-refresh", "--format", "csv", "--data-dir", str(data), sql],
                          env=env, check=True, capture_output=True, text=True)
    return list(csv.DictReader(io.StringIO(done.stdout)))


def duck_json(args):
    start = time.monotonic()
    out = json.loads(subprocess.run([py, *args], check=True, capture_output=True, text=True).stdout)
    out["process_seconds"] = round(time.monotonic() - start, 3)
    return out


# The page cache holds the events' files before anything is timed.
for f in duck.parquet_files(data):
    with open(f, "rb") as handle:
        while handle.read(1 << 20):
            pass
events_files = len(duck.parquet_files(data))
stored = int(gma_query("SELECT COUNT(*) AS n FROM events")[0]["n"])

# 1. Building the typed tables from scratch.
four = ",".join(typed.TABLES)
build_gma = timed_gma(["views", "refresh", "--data-dir", str(data), "--only", four], "build")
build_duck = duck_json([str(root / "bench/duckdb/typed.py"), "build", str(data), str(work / "duck-typed")])
print(f"  build of {four}: gma {build_gma['seconds']:.2f} s ({build_gma['peak_rss_mib']:.0f} MiB)"
      f"  duckdb {build_duck['seconds']:.2f} s", file=sys.stderr)
for table, rows in build_duck["tables"].items():
    mine = int(gma_query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"])
    if mine != rows:
        problems.append(f"{table}: gma built {mine} rows, duckdb {rows}")
build_rest = timed_gma(["views", "refresh", "--data-dir", str(data)], "build-rest")
print(f"  build of the other 12 tables: gma {build_rest['seconds']:.2f} s"
      f" ({build_rest['peak_rss_mib']:.0f} MiB)", file=sys.stderr)

# 2. Full scans: rows checked, then timed.
checks = {}
for view in scans:
    if view not in duck.CHECKS:
        continue
    mine = {k: (None if v == "" else int(v)) for k, v in gma_query(f"SELECT {duck.CHECKS[view]} FROM {view}")[0].items()}
    payload = duck_json([str(root / "bench/duckdb/run.py"), str(data), view, "check"])["checks"]
    over_typed = duck_json([str(root / "bench/duckdb/typed.py"), "scan", str(data), view, "check"])["checks"]
    joined = duck_json([str(root / "bench/duckdb/typed.py"), "scan", str(data), view, "check", "joined"])["checks"]
    checks[view] = {"gma": mine, "duckdb_payloads": payload, "duckdb_typed": over_typed, "duckdb_typed_joined": joined}
    if not (mine == payload == over_typed == joined):
        problems.append(f"{view}: gma {mine}, duckdb over payloads {payload}, over typed tables {over_typed}"
                        f" (joined shape {joined})")

timings = {view: {"gma": [], "duckdb_payloads": [], "duckdb_typed": [], "duckdb_typed_joined": []} for view in scans}
if not problems:
    for round_ in range(1, runs + 1):
        for view in scans:
            if view in duck.CHECKS:
                timings[view]["duckdb_payloads"].append(
                    duck_json([str(root / "bench/duckdb/run.py"), str(data), view, "time"]))
                for shape in ("window", "joined"):
                    timings[view]["duckdb_typed" if shape == "window" else "duckdb_typed_joined"].append(
                        duck_json([str(root / "bench/duckdb/typed.py"), "scan", str(data), view, "time", shape]))
            timings[view]["gma"].append(timed_gma(
                ["query", "--no-refresh", "--format", "csv", "--data-dir", str(data), f"SELECT * FROM {view}"], "scan"))
            line = "  ".join(f"{k} {v[-1]['seconds']:.2f} s" for k, v in timings[view].items() if v)
            print(f"  round {round_} {view:15} {line}  (gma {timings[view]['gma'][-1]['peak_rss_mib']:.0f} MiB)",
                  file=sys.stderr)

# 3. An incremental refresh after NEW new events.
subprocess.run([gma, "import", str(work / "new"), "--data-dir", str(data)], env=env, check=True,
               capture_output=True)
incremental = timed_gma(["views", "refresh", "--data-dir", str(data)], "incremental")
print(f"  incremental refresh: {incremental['seconds']:.2f} s ({incremental['peak_rss_mib']:.0f} MiB): "
      f"{incremental['said'][:160]}", file=sys.stderr)

median = lambda rows, key="seconds": statistics.median(r[key] for r in rows) if rows else None
summary = {"scans": {}}
for view in scans:
    t = timings[view]
    s = {"gma_seconds": median(t["gma"]), "gma_peak_rss_mib": max((r["peak_rss_mib"] for r in t["gma"]), default=None),
         "duckdb_payloads_seconds": median(t["duckdb_payloads"]), "duckdb_typed_seconds": median(t["duckdb_typed"]),
         "duckdb_typed_joined_seconds": median(t["duckdb_typed_joined"])}
    if s["gma_seconds"] and s["duckdb_payloads_seconds"]:
        # Against DuckDB's faster shape of the latest-state SQL.
        best = min(s["duckdb_typed_seconds"], s["duckdb_typed_joined_seconds"])
        s["ratio_vs_payloads"] = round(s["gma_seconds"] / s["duckdb_payloads_seconds"], 3)
        s["ratio_vs_typed"] = round(s["gma_seconds"] / best, 3)
    summary["scans"][view] = s
summary["build"] = {"gma_seconds": build_gma["seconds"], "duckdb_seconds": build_duck["seconds"],
                    "ratio": round(build_gma["seconds"] / build_duck["seconds"], 3),
                    "gma_peak_rss_mib": build_gma["peak_rss_mib"], "duckdb_peak_rss_mib": build_duck["peak_rss_mib"],
                    "rest_gma_seconds": build_rest["seconds"], "rest_gma_peak_rss_mib": build_rest["peak_rss_mib"]}
summary["incremental"] = {"seconds": incremental["seconds"], "peak_rss_mib": incremental["peak_rss_mib"]}
peaks = [build_gma["peak_rss_mib"], build_rest["peak_rss_mib"], incremental["peak_rss_mib"]] + \
    [r["peak_rss_mib"] for v in scans for r in timings[v]["gma"]]
summary["gma_peak_rss_mib"] = max(peaks)
targets = {
    "scans_vs_payloads_le_0.1": all(s.get("ratio_vs_payloads", 0) <= 0.1 for s in summary["scans"].values()),
    "scans_vs_typed_le_1.0": all(s.get("ratio_vs_typed", 0) <= 1.0 for s in summary["scans"].values()),
    "build_le_1.0": summary["build"]["ratio"] <= 1.0,
    "incremental_le_2s": incremental["seconds"] <= 2.0,
    "peak_rss_le_1GiB": summary["gma_peak_rss_mib"] <= 1024,
}
result = {
    "mode": "tables", "timestamp": stamp, "git": git, "note": note, "duckdb": duckdb.__version__,
    "host": platform.node(), "cpus": os.cpu_count(), "loadavg_start": loadavg_start, "loadavg_end": os.getloadavg(),
    "generate": json.loads((work / "generate.json").read_text()), "events": stored, "events_files": events_files,
    "import": {"summary": (work / "import.txt").read_text().strip(), **time_v(work / "import.time")},
    "build": {"gma": build_gma, "duckdb": build_duck, "gma_rest": build_rest}, "checks": checks,
    "timings": timings, "incremental": incremental, "summary": summary, "targets": targets, "problems": problems,
}
pathlib.Path(results).write_text(json.dumps(result, indent=1) + "\n")
print(f"\n{stored:,} events in {events_files} Parquet files", file=sys.stderr)
for p in problems:
    print(f"!! {p}", file=sys.stderr)
if problems:
    sys.exit(1)
print(f"{'view':16} {'gma s':>7} {'duck payloads s':>16} {'ratio':>6} {'duck typed s':>13} {'ratio':>6} {'gma MiB':>8}", file=sys.stderr)
for view, s in summary["scans"].items():
    fmt = lambda v: f"{v:.2f}" if isinstance(v, (int, float)) else "-"
    print(f"{view:16} {fmt(s['gma_seconds']):>7} {fmt(s['duckdb_payloads_seconds']):>16} {fmt(s.get('ratio_vs_payloads')):>6}"
          f" {fmt(s['duckdb_typed_seconds']):>13} {fmt(s.get('ratio_vs_typed')):>6} {fmt(s['gma_peak_rss_mib']):>8}", file=sys.stderr)
b = summary["build"]
print(f"build (4 tables): gma {b['gma_seconds']:.2f} s, duckdb {b['duckdb_seconds']:.2f} s, ratio {b['ratio']:.2f}", file=sys.stderr)
print(f"incremental after the new events: {incremental['seconds']:.2f} s; gma peak RSS {summary['gma_peak_rss_mib']:.0f} MiB", file=sys.stderr)
for name, met in targets.items():
    print(f"target {name}: {'MET' if met else 'NOT MET'}", file=sys.stderr)
sys.exit(0 if all(targets.values()) else 3)
PY
log "results: ${RESULTS#"$ROOT"/}"
[[ $STATUS -eq 0 || $STATUS -eq 3 ]] || exit "$STATUS"
