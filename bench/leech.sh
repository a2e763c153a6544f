#!/usr/bin/env bash
# Leech benchmark: `gma leech` archiving 1,000 workflow run attempts' logs (2 MiB zips each,
# GitHub's 302 to a signed archive URL) from the fake GitHub API (gma-fake-github), side by
# side with parallel curl copies of the same 1,000 archives in the same run; then one run whose
# logs are a 1 GiB zip, for gma's peak RSS.
#
#   bash bench/leech.sh
#
# Steps: build release binaries (gma and gma-bench together), start gma-fake-github in leech
# mode and `gma import` its workflow_run events into a fresh data directory (untimed). Then:
# - baseline: `xargs -P $CONCURRENCY -n 3 curl` of the 1,000 signed archive URLs (signed just
#   before: the fake's links live one minute, as GitHub's) into files of a temporary directory;
#   wall time, bytes;
# - gma: `gma leech --data-dir D --concurrency $CONCURRENCY` under /usr/bin/time -v (the logs
#   go to D/logs, a local directory): wall time, peak RSS;
#   throughput (MiB/s) of each and the ratio gma / curl (target >= 0.8);
# - 1 GiB: a second fake with one run whose logs are a 1 GiB generated zip, a second fresh data
#   directory, `gma leech` under /usr/bin/time -v: peak RSS (target <= 100 MiB), wall time.
#
# Asserted (exit 1 otherwise, after writing the result): curl fetched every archive; gma's
# summary says "archived $RUNS" (and 1 for the 1 GiB run); gma stored $RUNS zips, each
# byte-identical to curl's copy (sha256 of all); the fake served gma exactly $RUNS archive
# downloads and refused none for carrying a token; the 1 GiB run was archived (1) and its stored
# zip holds at least GENERATED_GIB GiB.
#
# Knobs (environment): RUNS (1000), ZIP_BYTES (2MiB), GENERATED_GIB (1; 0 skips that part),
# CONCURRENCY (8, both sides), SEED (1), PERF=1 (the timed gma run under `perf record`; the
# top of its profile goes to stderr; timings then include perf's overhead), SKIP_BUILD=1, GMA_BIN, FAKE_BIN, KEEP=1 (keep the
# work directory), NOTE (a remark kept in the result).
# Result: bench/results/leech-<UTC timestamp>.json.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

RUNS="${RUNS:-1000}"
ZIP_BYTES="${ZIP_BYTES:-2MiB}"
GENERATED_GIB="${GENERATED_GIB:-1}"
CONCURRENCY="${CONCURRENCY:-8}"
SEED="${SEED:-1}"
BENCH=leech-bench
# shellcheck source=bench/fake_github.sh
source "$ROOT/bench/fake_github.sh"
require jq curl bc sha256sum
mib() { printf '%.1f' "$(echo "$1 / 1048576" | bc -l)"; }

# Imports $2 (workflow_run events) into data directory $1 (untimed) and checks the count.
import_events() {
    GMA_LOG=warn "$GMA_BIN" import "$2" --data-dir "$1" >"$WORK/import.out" 2>&1 \
        || { cat "$WORK/import.out" >&2; fail "gma import failed"; }
    local n
    n="$(GMA_LOG=warn "$GMA_BIN" query --format csv --data-dir "$1" \
        "SELECT COUNT(*) AS n FROM events WHERE event = 'workflow_run'" | tail -n1)"
    [[ "$n" == "$3" ]] || fail "the events table holds $n workflow_run events, expected $3"
}

# Runs `gma leech` on data directory $1 under /usr/bin/time -v, output to $WORK/$2.*;
# sets LEECH_S (wall seconds), LEECH_RSS_KIB, LEECH_CPU_S, LEECH_SUMMARY.
gma_leech() {
    local data="$1" name="$2" start
    local prefix=()
    if [[ -n "${PERF:-}" && "$name" == leech ]]; then
        prefix=(perf record -q -F 997 -o "$WORK/perf.data" --)
    fi
    sync
    start="$(now)"
    GITHUB_API_URL="$API_URL" GITHUB_APP_ID="$APP_ID" GITHUB_PRIVATE_KEY="$(cat "$KEY_FILE")" \
        GMA_LOG=warn /usr/bin/time -v -o "$WORK/$name.time" \
        "${prefix[@]}" "$GMA_BIN" leech --data-dir "$data" --concurrency "$CONCURRENCY" \
        >"$WORK/$name.out" 2>"$WORK/$name.err" || {
        cat "$WORK/$name.err" >&2
        fail "gma leech exited non-zero"
    }
    LEECH_S="$(echo "$(now) - $start" | bc -l)"
    LEECH_RSS_KIB="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/$name.time")"
    LEECH_CPU_S="$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u + s}' "$WORK/$name.time")"
    LEECH_SUMMARY="$(grep -h 'leech: archived' "$WORK/$name.out" "$WORK/$name.err" | tail -n1 || true)"
    log "${LEECH_SUMMARY:-no summary line}"
    if [[ ${#prefix[@]} -gt 0 ]]; then
        perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --percent-limit 0.7 \
            --stdio 2>/dev/null | grep "%" | grep -v "^#" | sed "s/ *$//" | cut -c1-140 | head -40 >&2 || true
    fi
}

checks=()

# --- 1,000 runs of 2 MiB -------------------------------------------------------------------
log "starting gma-fake-github with $RUNS workflow runs of $ZIP_BYTES logs"
start_fake runs --workflow-runs "$RUNS" --zip-bytes "$ZIP_BYTES" \
    --runs-ndjson "$WORK/runs.ndjson" --archive-urls "$WORK/urls.tsv"
API_URL="$(jq -r .GITHUB_API_URL <<<"$READY")"
APP_ID="$(jq -r .GITHUB_APP_ID <<<"$READY")"
SERVED_BYTES="$(jq -r .zip_bytes_total <<<"$READY")"
log "fake at $API_URL: $RUNS runs, $(mib "$SERVED_BYTES") MiB of zips"

log "importing the $RUNS workflow_run events into a fresh data dir (untimed)"
import_events "$WORK/gma-data" "$WORK/runs.ndjson" "$RUNS"

# --- baseline: parallel curl ------------------------------------------------------------------
# Fresh signatures (SIGUSR2), then curl -o CURL/owner/repo/run/attempt/logs.zip, the layout
# gma's logs store uses, so the two trees compare file by file.
snapshot runs "$WORK/stats-0.json"
rm -f "$WORK/urls.tsv"
kill -USR2 "$FAKE_PID"
for _ in $(seq 200); do [[ -s "$WORK/urls.tsv" ]] && break; sleep 0.05; done
[[ -s "$WORK/urls.tsv" ]] || fail "gma-fake-github wrote no archive URLs on SIGUSR2"
awk -F'\t' -v dir="$WORK/curl" '{print "-o"; print dir "/" $1 "/logs.zip"; print $2}' \
    "$WORK/urls.tsv" >"$WORK/curl-args"
[[ "$(wc -l <"$WORK/urls.tsv")" == "$RUNS" ]] || fail "the fake wrote $(wc -l <"$WORK/urls.tsv") URLs, expected $RUNS"
log "baseline: curl of the $RUNS archive URLs, $CONCURRENCY at a time"
sync
start="$(now)"
xargs -d '\n' -P "$CONCURRENCY" -n 3 curl -sS --fail --create-dirs <"$WORK/curl-args" \
    || fail "curl failed on some archive"
CURL_S="$(echo "$(now) - $start" | bc -l)"
CURL_FILES="$(find "$WORK/curl" -name logs.zip | wc -l)"
CURL_BYTES="$(find "$WORK/curl" -name logs.zip -printf '%s\n' | awk '{s += $1} END {print s + 0}')"
log "curl: $CURL_FILES files, $(mib "$CURL_BYTES") MiB in $(printf '%.2f' "$CURL_S") s"
snapshot runs "$WORK/stats-1.json"

# --- gma leech --------------------------------------------------------------------------------
log "gma leech --concurrency $CONCURRENCY (local logs store)"
gma_leech "$WORK/gma-data" leech
GMA_S="$LEECH_S"
GMA_RSS_KIB="$LEECH_RSS_KIB"
GMA_CPU_S="$LEECH_CPU_S"
GMA_SUMMARY="$LEECH_SUMMARY"
snapshot runs "$WORK/stats-2.json"
stop_fake

STORE="$WORK/gma-data/logs"
GMA_FILES="$(find "$STORE" -name logs.zip 2>/dev/null | wc -l)"
GMA_BYTES="$(find "$STORE" -name logs.zip -printf '%s\n' 2>/dev/null | awk '{s += $1} END {print s + 0}')"
(cd "$WORK/curl" && find . -name logs.zip | sort | xargs sha256sum) >"$WORK/curl.sha256"
(cd "$STORE" && find . -name logs.zip | sort | xargs sha256sum) >"$WORK/gma.sha256" || true
IDENTICAL="$(cmp -s "$WORK/curl.sha256" "$WORK/gma.sha256" && echo 1 || echo 0)"
DISTINCT="$(cut -d' ' -f1 "$WORK/gma.sha256" | sort -u | wc -l)"
delta() { echo $(($(jq -r ".$1" "$WORK/$3") - $(jq -r ".$1" "$WORK/$2"))); }
CURL_DOWNLOADS="$(delta archive_downloads stats-0.json stats-1.json)"
GMA_DOWNLOADS="$(delta archive_downloads stats-1.json stats-2.json)"
GMA_API="$(delta api_calls stats-1.json stats-2.json)"
GMA_TOKENS="$(delta access_tokens stats-1.json stats-2.json)"
REFUSALS="$(jq -r .archive_auth_refusals "$WORK/stats-2.json")"
ARCHIVED="$(sed -nE 's/.*leech: archived ([0-9]+) run attempts.*/\1/p' <<<"$GMA_SUMMARY")"

CURL_MIBS="$(echo "$CURL_BYTES / 1048576 / $CURL_S" | bc -l)"
GMA_MIBS="$(echo "$GMA_BYTES / 1048576 / $GMA_S" | bc -l)"
RATIO="$(echo "$GMA_MIBS / $CURL_MIBS" | bc -l)"

check "curl fetched $RUNS archives (got $CURL_FILES, the fake served $CURL_DOWNLOADS)" \
    "$([[ "$CURL_FILES" == "$RUNS" && "$CURL_DOWNLOADS" == "$RUNS" ]] && echo 1)"
check "gma's summary says archived $RUNS (got ${ARCHIVED:-none})" "$([[ "$ARCHIVED" == "$RUNS" ]] && echo 1)"
check "gma stored $RUNS zips (got $GMA_FILES, $GMA_BYTES bytes; curl $CURL_BYTES)" \
    "$([[ "$GMA_FILES" == "$RUNS" && "$GMA_BYTES" == "$CURL_BYTES" ]] && echo 1)"
check "every stored zip byte-identical to curl's copy (sha256 of all $RUNS)" "$IDENTICAL"
check "the $RUNS zips are distinct (got $DISTINCT distinct sha256)" "$([[ "$DISTINCT" == "$RUNS" ]] && echo 1)"
check "the fake served gma $RUNS archive downloads (got $GMA_DOWNLOADS)" "$([[ "$GMA_DOWNLOADS" == "$RUNS" ]] && echo 1)"
check "no archive request carried a token (refusals: $REFUSALS)" "$([[ "$REFUSALS" == 0 ]] && echo 1)"
rm -rf "$WORK/curl"

# --- one run of 1 GiB -----------------------------------------------------------------------
BIG_S=null BIG_RSS=null BIG_BYTES=null BIG_SUMMARY="" BIG_CPU=null BIG_MIBS=null
if [[ "$GENERATED_GIB" != 0 ]]; then
    log "starting gma-fake-github with one run of $GENERATED_GIB GiB of logs"
    start_fake big --generated-gib "$GENERATED_GIB" --runs-ndjson "$WORK/big.ndjson" \
        --archive-urls "$WORK/big-urls.tsv"
    API_URL="$(jq -r .GITHUB_API_URL <<<"$READY")"
    import_events "$WORK/big-data" "$WORK/big.ndjson" 1
    log "gma leech of one $GENERATED_GIB GiB run"
    gma_leech "$WORK/big-data" big
    stop_fake
    BIG_S="$(printf '%.3f' "$LEECH_S")"
    BIG_RSS="$(printf '%.1f' "$(echo "$LEECH_RSS_KIB / 1024" | bc -l)")"
    BIG_CPU="$(printf '%.2f' "$LEECH_CPU_S")"
    BIG_SUMMARY="$LEECH_SUMMARY"
    BIG_BYTES="$(find "$WORK/big-data/logs" -name logs.zip -printf '%s\n' | awk '{s += $1} END {print s + 0}')"
    BIG_MIBS="$(printf '%.1f' "$(echo "$BIG_BYTES / 1048576 / $LEECH_S" | bc -l)")"
    big_archived="$(sed -nE 's/.*leech: archived ([0-9]+) run attempts.*/\1/p' <<<"$BIG_SUMMARY")"
    check "1 GiB run: summary says archived 1 (got ${big_archived:-none})" "$([[ "$big_archived" == 1 ]] && echo 1)"
    check "1 GiB run: stored zip is $BIG_BYTES bytes (>= 1 GiB × $GENERATED_GIB)" \
        "$([[ "$(echo "$BIG_BYTES >= $GENERATED_GIB * 1073741824" | bc -l)" == 1 ]] && echo 1)"
    rm -rf "$WORK/big-data"
fi

report_checks

# --- the result -------------------------------------------------------------------------------
mkdir -p "$ROOT/bench/results"
RESULT="$ROOT/bench/results/leech-$STAMP.json"
jq -n \
    --arg timestamp "$STAMP" \
    --arg git "$(git rev-parse --short --verify -q HEAD 2>/dev/null || echo unknown)" \
    --arg loadavg "$LOADAVG" --arg note "${NOTE:-}" --arg gma_bin "$GMA_BIN" \
    --argjson cpus "$(nproc)" \
    --argjson runs "$RUNS" --arg zip_bytes "$ZIP_BYTES" --argjson concurrency "$CONCURRENCY" \
    --argjson served_bytes "$SERVED_BYTES" \
    --argjson curl_wall_s "$(printf '%.3f' "$CURL_S")" \
    --argjson curl_bytes "$CURL_BYTES" \
    --argjson curl_mibs "$(printf '%.1f' "$CURL_MIBS")" \
    --argjson gma_wall_s "$(printf '%.3f' "$GMA_S")" \
    --argjson gma_bytes "$GMA_BYTES" \
    --argjson gma_mibs "$(printf '%.1f' "$GMA_MIBS")" \
    --argjson ratio "$(printf '%.3f' "$RATIO")" \
    --argjson gma_cpu_s "$(printf '%.2f' "$GMA_CPU_S")" \
    --argjson rss "$(printf '%.1f' "$(echo "$GMA_RSS_KIB / 1024" | bc -l)")" \
    --argjson gma_api "$GMA_API" --argjson gma_tokens "$GMA_TOKENS" \
    --argjson gma_downloads "$GMA_DOWNLOADS" --argjson identical "$IDENTICAL" \
    --arg summary "$GMA_SUMMARY" \
    --arg big_gib "$GENERATED_GIB" --argjson big_s "$BIG_S" --argjson big_rss "$BIG_RSS" \
    --argjson big_bytes "$BIG_BYTES" --argjson big_cpu "$BIG_CPU" --argjson big_mibs "$BIG_MIBS" \
    --arg big_summary "$BIG_SUMMARY" \
    --argjson ok "$([[ $OK == 1 ]] && echo true || echo false)" \
    '{timestamp: $timestamp, git: $git, note: $note, gma_bin: $gma_bin, cpus: $cpus,
      loadavg: $loadavg, runs: $runs, zip_bytes: $zip_bytes, concurrency: $concurrency,
      served_bytes: $served_bytes,
      curl: {wall_s: $curl_wall_s, bytes: $curl_bytes, mib_per_s: $curl_mibs},
      gma: {wall_s: $gma_wall_s, bytes: $gma_bytes, mib_per_s: $gma_mibs, cpu_s: $gma_cpu_s,
            peak_rss_mib: $rss, api_calls: $gma_api, access_tokens: $gma_tokens,
            archive_downloads: $gma_downloads, summary: $summary},
      ratio_gma_curl_throughput: $ratio, zips_identical: ($identical == 1),
      one_big_run: {gib: $big_gib, wall_s: $big_s, bytes: $big_bytes, mib_per_s: $big_mibs,
                    cpu_s: $big_cpu, peak_rss_mib: $big_rss, summary: $big_summary},
      checks_passed: $ok}' >"$RESULT"
log "results: ${RESULT#"$ROOT"/}"
printf '%-34s %14s\n' "runs x zip" "$RUNS x $ZIP_BYTES" \
    "curl MiB/s (wall s)" "$(printf '%.1f (%.2f)' "$CURL_MIBS" "$CURL_S")" \
    "gma leech MiB/s (wall s)" "$(printf '%.1f (%.2f)' "$GMA_MIBS" "$GMA_S")" \
    "ratio gma / curl" "$(printf '%.2f' "$RATIO")" \
    "gma peak RSS MiB" "$(printf '%.1f' "$(echo "$GMA_RSS_KIB / 1024" | bc -l)")" \
    "1 GiB run: wall s" "$BIG_S" \
    "1 GiB run: peak RSS MiB" "$BIG_RSS"
[[ "$OK" == 1 ]] || fail "some checks failed (the result file has checks_passed: false)"
