"""Runs the DuckDB side of bench/views.sh: defines the views of this folder over the Parquet files
of a gma data directory, then times one view's full materialisation or prints its checks.

    python run.py DATA_DIR VIEW time    -> {"view", "seconds", "setup_seconds", "cpu_seconds", "peak_rss_mib"}
    python run.py DATA_DIR VIEW check   -> {"view", "rows", "checks": {...}}

The events are read with read_parquet over exactly the files under DATA_DIR/tables/events
(listed here, and their count printed, so the script can compare it with gma's).
"""
import json
import os
import pathlib
import resource
import sys
import time

import duckdb

HERE = pathlib.Path(__file__).resolve().parent
# Dependency order: each file reads only views defined before it.
ORDER = [
    "unique_events",
    "pull_request_events",
    "pull_request_review_events",
    "push_events",
    "workflow_run_events",
    "pull_requests",
    "pull_request_reviews",
    "workflow_runs",
    "pr_cycle_time",
]
# Sums that must agree with gma's (same expressions, BigQuery and DuckDB spellings alike).
CHECKS = {
    "pull_requests": "COUNT(*) AS rows, SUM(additions) AS additions, COUNT(merged_at) AS merged, COUNT(DISTINCT pr_size) AS sizes, SUM(open_duration_seconds) AS open_seconds, COUNT(ready_at) AS ready",
    "pr_cycle_time": "COUNT(*) AS rows, SUM(cycle_seconds) AS cycle, SUM(coding_seconds) AS coding, SUM(pickup_seconds) AS pickup, SUM(reviews) AS reviews, COUNT(first_commit_at) AS with_commit",
    "workflow_runs": "COUNT(*) AS rows, SUM(run_attempt) AS attempts, SUM(duration_seconds) AS duration, COUNT(conclusion) AS concluded",
}


def parquet_files(data_dir):
    root = pathlib.Path(data_dir) / "tables" / "events"
    return sorted(str(p) for p in root.rglob("*.parquet") if not p.name.startswith("."))


def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main():
    data_dir, view, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    start = time.monotonic()
    files = parquet_files(data_dir)
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    con.execute("SET TimeZone='UTC'")
    events = "read_parquet([" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "])"
    for name in ORDER:
        con.execute((HERE / f"{name}.sql").read_text().replace("${events}", events))
    setup = time.monotonic() - start
    if mode == "time":
        cpu_start = cpu()
        query_start = time.monotonic()
        con.execute(f"COPY (SELECT * FROM {view}) TO '/dev/null' (FORMAT csv, HEADER)")
        seconds = time.monotonic() - query_start
        out = {
            "view": view,
            "seconds": round(seconds, 3),
            "setup_seconds": round(setup, 3),
            "cpu_seconds": round(cpu() - cpu_start, 3),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "threads": int(con.execute("SELECT current_setting('threads')").fetchone()[0]),
            "files": len(files),
        }
    else:
        cursor = con.execute(f"SELECT {CHECKS[view]} FROM {view}")
        names = [d[0] for d in cursor.description]
        row = cursor.fetchone()
        checks = {n: (None if v is None else int(v)) for n, v in zip(names, row)}
        out = {"view": view, "rows": checks["rows"], "checks": checks, "files": len(files)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
