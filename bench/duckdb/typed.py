"""The DuckDB side of bench/tables.sh, beside run.py (the payload-reading chain):

    python typed.py build DATA_DIR OUT_DIR       -> {"seconds", "cpu_seconds", "peak_rss_mib", "tables": {name: rows}}
        writes the typed tables DuckDB's twins of the event views give (TABLES) as Parquet
        files under OUT_DIR, from the events of DATA_DIR: what `gma views refresh` builds.
    python typed.py scan DATA_DIR VIEW time [SHAPE]   -> {"view", "shape", "seconds", "cpu_seconds", "peak_rss_mib"}
    python typed.py scan DATA_DIR VIEW check [SHAPE]  -> {"view", "shape", "rows", "checks": {...}}
        the latest-state twins over gma's own typed tables in DATA_DIR, read as gma reads them
        (the live files: not those a compaction's .covers replaced). SHAPE "window" (default):
        run.py's twins, which sort whole rows by id; "joined": joined/*.sql, the shape of gma's
        own views (the newest version chosen over a few columns, then its row joined back).
"""
import json
import pathlib
import sys
import time

import duckdb

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import run as duck  # noqa: E402

# The typed tables both tools build, and the latest-state twins that read them.
TABLES = ["pull_request_events", "pull_request_review_events", "push_events", "workflow_run_events"]
LATEST = ["pull_requests", "pull_request_reviews", "workflow_runs", "pr_cycle_time"]


def live_files(table_dir):
    """The Parquet files of a table folder as gma lists them (tables::list_files)."""
    files = [p for p in table_dir.rglob("*.parquet") if not p.name.startswith(".")]
    replaced = set()
    for f in files:
        if f.stem.endswith("-compacted"):
            covers = f.with_name(f.stem + ".covers")
            if covers.exists():
                replaced.update(line.strip() for line in covers.read_text().splitlines() if line.strip())
    return sorted(str(f) for f in files if f.name not in replaced)


def connect():
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    con.execute("SET TimeZone='UTC'")
    return con


def quoted(files):
    return "read_parquet([" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "])"


def build(data_dir, out_dir):
    start, cpu_start = time.monotonic(), duck.cpu()
    con = connect()
    events = quoted(duck.parquet_files(data_dir))
    for name in ["unique_events"] + TABLES:
        con.execute((HERE / f"{name}.sql").read_text().replace("${events}", events))
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for name in TABLES:
        target = str(out / f"{name}.parquet").replace("'", "''")
        con.execute(f"COPY (SELECT * FROM {name}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)")
        rows[name] = con.execute(f"SELECT COUNT(*) FROM read_parquet('{target}')").fetchone()[0]
    return {
        "seconds": round(time.monotonic() - start, 3),
        "cpu_seconds": round(duck.cpu() - cpu_start, 3),
        "peak_rss_mib": round(duck.resource.getrusage(duck.resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "tables": rows,
    }


def scan(data_dir, view, mode, shape="window"):
    con = connect()
    tables = pathlib.Path(data_dir) / "tables"
    for name in TABLES:
        files = live_files(tables / name)
        con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {quoted(files)}")
    for name in LATEST:
        joined = HERE / "joined" / f"{name}.sql"
        con.execute((joined if shape == "joined" and joined.exists() else HERE / f"{name}.sql").read_text())
    if mode == "time":
        cpu_start, start = duck.cpu(), time.monotonic()
        con.execute(f"COPY (SELECT * FROM {view}) TO '/dev/null' (FORMAT csv, HEADER)")
        return {
            "view": view,
            "shape": shape,
            "seconds": round(time.monotonic() - start, 3),
            "cpu_seconds": round(duck.cpu() - cpu_start, 3),
            "peak_rss_mib": round(duck.resource.getrusage(duck.resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    cursor = con.execute(f"SELECT {duck.CHECKS[view]} FROM {view}")
    names = [d[0] for d in cursor.description]
    checks = {n: (None if v is None else int(v)) for n, v in zip(names, cursor.fetchone())}
    return {"view": view, "shape": shape, "rows": checks["rows"], "checks": checks}


if __name__ == "__main__":
    if sys.argv[1] == "build":
        print(json.dumps(build(sys.argv[2], sys.argv[3])))
    else:
        print(json.dumps(scan(*sys.argv[2:6])))
