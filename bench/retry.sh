#!/usr/bin/env bash
# Retry benchmark: `gma retry` over a backlog of 100,000 App webhook deliveries (1,000 pages of
# 100) with 1% failures, served by the fake GitHub API (gma-fake-github), side by side with a
# sequential curl walk of the same 1,000 pages in the same run.
#
#   bash bench/retry.sh
#
# Steps: build release binaries (gma and gma-bench together, as bench/import.sh), start
# gma-fake-github, and `gma import` the deliveries that succeeded into a fresh data directory
# (untimed: the events table a real run queries holds them). Then, timed:
# - baseline: walk every page of GET /app/hook/deliveries?per_page=100 with curl, one request
#   after another, following Link rel="next", App JWT as Bearer: the floor of any tool that
#   must read 1,000 pages one after another. Two figures: the walk's wall time (a curl process
#   per page) and the sum of curl's own per-request times (%{time_total}: the same walk
#   without process start-ups, the tighter floor);
# - gma: `gma retry` once on that data directory (local store; no failed event is in it, so
#   each is recovered) with mutations unthrottled (--github-mutations-per-minute 0: the
#   default 60/min, under GitHub's secondary limit, would make 1,000 redeliveries take 17
#   minutes by design), under /usr/bin/time -v for the peak RSS.
# The fake's counters are snapshotted (SIGUSR1) between the two, so each tool's requests are
# counted separately.
#
# Asserted (exit 1 otherwise): the curl walk saw every delivery on `pages` pages; gma made
# exactly one events-table query; gma's GitHub requests == pages + failures; the fake served
# gma exactly `pages` list calls and `failures` redelivery POSTs; every failed delivery was
# redelivered exactly once and nothing else was.
#
# Knobs (environment): DELIVERIES (100000), FAILURE_RATE (0.01), SEED (1), CONCURRENCY (gma's
# --concurrency, default: gma's own, 4), SKIP_BUILD=1, GMA_BIN, FAKE_BIN, KEEP=1 (keep the work
# directory), NOTE (a remark kept in the result). Result: bench/results/retry-<UTC timestamp>.json.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DELIVERIES="${DELIVERIES:-100000}"
FAILURE_RATE="${FAILURE_RATE:-0.01}"
SEED="${SEED:-1}"
BENCH=retry-bench
# shellcheck source=bench/fake_github.sh
source "$ROOT/bench/fake_github.sh"
require jq curl

# --- the fake -----------------------------------------------------------------------------
log "starting gma-fake-github with $DELIVERIES deliveries, failure rate $FAILURE_RATE"
mkdir -p "$WORK/landed"
start_fake retry --deliveries "$DELIVERIES" --failure-rate "$FAILURE_RATE" \
    --landed-ndjson "$WORK/landed/landed.ndjson"
API_URL="$(jq -r .GITHUB_API_URL <<<"$READY")"
APP_ID="$(jq -r .GITHUB_APP_ID <<<"$READY")"
TOTAL="$(jq -r .deliveries <<<"$READY")"
FAILURES="$(jq -r .failures <<<"$READY")"
PAGES="$(jq -r .pages <<<"$READY")"
log "fake at $API_URL: $TOTAL deliveries, $FAILURES failed, $PAGES pages"

# --- baseline: a sequential curl walk -----------------------------------------------------
JWT="$("$FAKE_BIN" --print-jwt)"
log "baseline: curl walk of every page (per_page=100, following Link rel=\"next\")"
mkdir -p "$WORK/pages"
url="$API_URL/app/hook/deliveries?per_page=100"
walked=0
: >"$WORK/curl-times"
start="$(now)"
while [[ -n "$url" ]]; do
    walked=$((walked + 1))
    out="$(curl -sS --fail -H "Authorization: Bearer $JWT" \
        -H 'Accept: application/vnd.github+json' -H 'X-GitHub-Api-Version: 2022-11-28' \
        -o "$WORK/pages/$walked.json" -w '%{time_total} %header{link}' "$url")"
    echo "${out%% *}" >>"$WORK/curl-times"
    url=""
    if [[ "$out" =~ \<([^>]*)\>\;\ rel=\"next\" ]]; then
        url="${BASH_REMATCH[1]}"
    fi
done
CURL_S="$(echo "$(now) - $start" | bc -l)"
# The same walk without curl's process start-ups: the sum of its per-request times.
CURL_HTTP_S="$(awk '{s += $1} END {printf "%.3f", s}' "$WORK/curl-times")"
CURL_SEEN="$(cat "$WORK"/pages/*.json | jq -s 'map(length) | add')"
log "curl: $walked pages, $CURL_SEEN deliveries in $(printf '%.2f' "$CURL_S") s ($CURL_HTTP_S s in requests)"
[[ "$walked" == "$PAGES" ]] || fail "curl walked $walked pages, expected $PAGES"
[[ "$CURL_SEEN" == "$TOTAL" ]] || fail "curl saw $CURL_SEEN deliveries, expected $TOTAL"
rm -rf "$WORK/pages"
snapshot retry "$WORK/stats-before.json"

# --- the events that did land --------------------------------------------------------------
# A real run queries an events table that holds every delivery that succeeded: import them
# (untimed) so the one anti-join query runs against $TOTAL - $FAILURES rows, not an empty table.
LANDED="$(jq -r .landed_lines <<<"$READY")"
log "importing the $LANDED events that landed into a fresh data dir (untimed)"
GMA_LOG=warn "$GMA_BIN" import "$WORK/landed" --data-dir "$WORK/gma-data" >"$WORK/import.out" 2>&1 \
    || { cat "$WORK/import.out" >&2; fail "gma import failed"; }
IN_TABLE="$(GMA_LOG=warn "$GMA_BIN" query --format csv --data-dir "$WORK/gma-data" \
    'SELECT COUNT(*) AS n FROM events' | tail -n1)"
[[ "$IN_TABLE" == "$LANDED" ]] || fail "the events table holds $IN_TABLE rows, expected $LANDED"
rm -rf "$WORK/landed"

# --- gma retry ----------------------------------------------------------------------------
log "gma retry (local store, $LANDED events in it, --github-mutations-per-minute 0)"
extra=()
[[ -n "${CONCURRENCY:-}" ]] && extra+=(--concurrency "$CONCURRENCY")
sync
start="$(now)"
GITHUB_API_URL="$API_URL" GITHUB_APP_ID="$APP_ID" GITHUB_PRIVATE_KEY="$(cat "$KEY_FILE")" \
    GMA_LOG=warn /usr/bin/time -v -o "$WORK/gma.time" \
    "$GMA_BIN" retry --data-dir "$WORK/gma-data" --github-mutations-per-minute 0 "${extra[@]}" \
    >"$WORK/gma.out" 2>"$WORK/gma.err" || {
    cat "$WORK/gma.err" >&2
    fail "gma retry exited non-zero"
}
GMA_S="$(echo "$(now) - $start" | bc -l)"
cat "$WORK/gma.out" >&2
snapshot retry "$WORK/stats-after.json"

RSS_KIB="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/gma.time")"
CPU_S="$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u + s}' "$WORK/gma.time")"
QUERIES="$(sed -nE 's/.*events queries ([0-9]+), GitHub requests ([0-9]+).*/\1/p' "$WORK/gma.out")"
REQUESTS="$(sed -nE 's/.*events queries ([0-9]+), GitHub requests ([0-9]+).*/\2/p' "$WORK/gma.out")"
RECOVERED="$(sed -nE 's/.*recovered ([0-9]+),.*/\1/p' "$WORK/gma.out")"
SCANNED_PAGES="$(sed -nE 's/.*deliveries on ([0-9]+) pages.*/\1/p' "$WORK/gma.out")"
[[ -n "$QUERIES" && -n "$REQUESTS" ]] || fail "no 'events queries N, GitHub requests M' line in gma's summary"

# --- what the fake served gma (after - before), and the checks ----------------------------
delta() { echo $(($(jq -r ".$1" "$WORK/stats-after.json") - $(jq -r ".$1" "$WORK/stats-before.json"))); }
FAKE_LIST="$(delta list_calls)"
FAKE_POSTS="$(delta redelivery_posts)"
FAKE_API="$(delta api_calls)"
ONCE="$(jq -r .failed_redelivered_once "$WORK/stats-after.json")"
NONE="$(jq -r .failed_not_redelivered "$WORK/stats-after.json")"
MORE="$(jq -r .failed_redelivered_more "$WORK/stats-after.json")"
OTHER="$(jq -r .other_redeliveries "$WORK/stats-after.json")"

stop_fake

check "events queries == 1 (got $QUERIES)" "$([[ "$QUERIES" == 1 ]] && echo 1)"
check "GitHub requests == pages + failures = $((PAGES + FAILURES)) (got $REQUESTS)" \
    "$([[ "$REQUESTS" == $((PAGES + FAILURES)) ]] && echo 1)"
check "recovered == failures = $FAILURES (got $RECOVERED)" "$([[ "$RECOVERED" == "$FAILURES" ]] && echo 1)"
check "fake served gma $PAGES list calls (got $FAKE_LIST)" "$([[ "$FAKE_LIST" == "$PAGES" ]] && echo 1)"
check "fake served gma $FAILURES redelivery POSTs (got $FAKE_POSTS)" "$([[ "$FAKE_POSTS" == "$FAILURES" ]] && echo 1)"
check "fake's API calls from gma == gma's GitHub requests ($FAKE_API vs $REQUESTS)" \
    "$([[ "$FAKE_API" == "$REQUESTS" ]] && echo 1)"
check "every failed delivery redelivered exactly once ($ONCE once, $NONE never, $MORE more than once)" \
    "$([[ "$ONCE" == "$FAILURES" && "$NONE" == 0 && "$MORE" == 0 ]] && echo 1)"
check "no other delivery redelivered (got $OTHER)" "$([[ "$OTHER" == 0 ]] && echo 1)"
report_checks

# --- the result -----------------------------------------------------------------------------
mkdir -p "$ROOT/bench/results"
RESULT="$ROOT/bench/results/retry-$STAMP.json"
jq -n \
    --arg timestamp "$STAMP" \
    --arg git "$(git rev-parse --short --verify -q HEAD 2>/dev/null || echo unknown)" \
    --arg loadavg "$LOADAVG" \
    --arg note "${NOTE:-}" --arg gma_bin "$GMA_BIN" \
    --argjson cpus "$(nproc)" \
    --argjson deliveries "$TOTAL" --argjson pages "$PAGES" --argjson failures "$FAILURES" \
    --argjson events_in_table "$IN_TABLE" \
    --argjson gma_wall_s "$(printf '%.3f' "$GMA_S")" \
    --argjson gma_cpu_s "$(printf '%.2f' "$CPU_S")" \
    --argjson curl_wall_s "$(printf '%.3f' "$CURL_S")" \
    --argjson curl_http_s "$CURL_HTTP_S" \
    --argjson ratio_http "$(printf '%.3f' "$(echo "$GMA_S / $CURL_HTTP_S" | bc -l)")" \
    --argjson ratio "$(printf '%.3f' "$(echo "$GMA_S / $CURL_S" | bc -l)")" \
    --argjson rss "$(printf '%.1f' "$(echo "$RSS_KIB / 1024" | bc -l)")" \
    --argjson queries "$QUERIES" --argjson requests "$REQUESTS" \
    --argjson recovered "${RECOVERED:-0}" --argjson gma_pages "${SCANNED_PAGES:-0}" \
    --argjson fake_list "$FAKE_LIST" --argjson fake_posts "$FAKE_POSTS" --argjson fake_api "$FAKE_API" \
    --argjson once "$ONCE" --argjson ok "$([[ $OK == 1 ]] && echo true || echo false)" \
    --arg summary "$(cat "$WORK/gma.out")" \
    '{timestamp: $timestamp, git: $git, note: $note, gma_bin: $gma_bin, cpus: $cpus, loadavg: $loadavg,
      deliveries: $deliveries, pages: $pages, failures: $failures,
      events_in_table: $events_in_table,
      gma_wall_s: $gma_wall_s, curl_wall_s: $curl_wall_s, ratio_gma_curl: $ratio,
      curl_requests_s: $curl_http_s, ratio_gma_curl_requests: $ratio_http,
      gma_cpu_s: $gma_cpu_s, peak_rss_mib: $rss,
      events_queries: $queries, github_requests: $requests, recovered: $recovered,
      gma_pages: $gma_pages,
      fake: {list_calls: $fake_list, redelivery_posts: $fake_posts, api_calls: $fake_api,
             failed_redelivered_once: $once},
      mutations_per_minute: 0, checks_passed: $ok, gma_summary: $summary}' >"$RESULT"
log "results: ${RESULT#"$ROOT"/}"
printf '%-34s %12s\n' "deliveries / pages / failures" "$TOTAL / $PAGES / $FAILURES" \
    "curl walk wall s" "$(printf '%.2f' "$CURL_S")" \
    "curl walk, time in requests s" "$CURL_HTTP_S" \
    "gma retry wall s" "$(printf '%.2f' "$GMA_S")" \
    "ratio gma / curl walk" "$(printf '%.2f' "$(echo "$GMA_S / $CURL_S" | bc -l)")" \
    "ratio gma / curl requests" "$(printf '%.2f' "$(echo "$GMA_S / $CURL_HTTP_S" | bc -l)")" \
    "gma peak RSS MiB" "$(printf '%.1f' "$(echo "$RSS_KIB / 1024" | bc -l)")" \
    "events queries / GitHub requests" "$QUERIES / $REQUESTS"
[[ "$OK" == 1 ]] || fail "some checks failed (the result file has checks_passed: false)"
