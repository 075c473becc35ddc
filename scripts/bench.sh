#!/usr/bin/env bash
# make bench: every published performance figure, each next to a baseline
# measured in the same run, as medians of several runs (scripts/benchsummary).
#
# Benchmarks other packages own are run when they exist (checked with
# `go test -list`), so this script keeps working while they are written.
#
#   BENCH_OUT        raw `go test -bench` output (default /tmp/itsm-bench.txt)
#   BENCH_COUNT      runs per benchmark for the medians (default 5; e2e 3)
#   E2E_RATE, E2E_DURATION   the end-to-end run (default 1000/s for 20s)
#   ITSM_BENCH_ISSUES        the lanes run's full sync size (default here 20000)
#   FULLSYNC_ISSUES, FULLSYNC_COUNT   the full sync's size and runs (default
#                            100000, issue 21's goal 3, 3 runs)
#   SUSTAINED_RATE, SUSTAINED_DURATION, SUSTAINED_COUNT   goal 2's run
#                            (default 10000/s for 60s, 3 runs)
#   BURST_DURATION, BURST_COUNT   the burst (default 10s, 3 runs)
#   LANES_RATE, LANES_DURATION, LANES_COUNT   webhooks during a full sync
#                            (default 200/s for 20s, 3 runs; size ITSM_BENCH_ISSUES)
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
out=${BENCH_OUT:-/tmp/itsm-bench.txt}
count=${BENCH_COUNT:-5}
: >"$out"

# has PKG NAME: the package compiles and defines benchmark NAME.
# (Captured first: grep -q exiting early would fail the pipe under pipefail.)
has() {
	local names
	names=$($GO test -list "^$2\$" "$1" 2>/dev/null) || return 1
	grep -qx "$2" <<<"$names"
}

# bench PKG NAME BENCHTIME COUNT: run one benchmark, appending its output.
bench() {
	local pkg=$1 name=$2 benchtime=$3 n=$4
	if ! has "$pkg" "$name"; then
		echo "== $name: not in $pkg (yet); skipped" | tee -a "$out"
		return 0
	fi
	echo "== $name ($pkg, -benchtime $benchtime -count $n)"
	$GO test -run '^$' -bench "^$name\$" -benchtime "$benchtime" -count "$n" -timeout 60m "$pkg" | tee -a "$out"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), $($GO version | cut -d' ' -f3)" | tee -a "$out"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out"

# Receiver vs a bare Echo handler that only reads the body (64 clients).
bench ./services/receiver BenchmarkReceiverVsBareEcho 20000x "$count"
# Receiver vs JetStream's own ceiling: the same bodies published directly.
bench ./scripts/loadgen BenchmarkReceiverVsJetStreamCeiling 20000x "$count"
# Normalizer draining a backlog vs raw store upserts of the same documents.
bench ./services/normalizer BenchmarkNormalizerVsRawUpsert 1x "$count"
# Backfill: one full sync through the simulator, RAW, normalizer, SQLite
# (issue 21 goal 3, 100,000 issues: < 30 s end to end; sync_s,
# the worker's crawl of the simulator, is the same-run floor).
ITSM_BENCH_ISSUES=${FULLSYNC_ISSUES:-100000} bench ./services/backfill BenchmarkFullSync 1x "${FULLSYNC_COUNT:-3}"
# End to end at 1,000 events/s: webhook sent → itsm.ticket.updated received.
bench ./scripts/loadgen BenchmarkEndToEnd 1x "${E2E_COUNT:-3}"
# Issue 21 goal 2: sustained 10,000 webhooks/s for 60 s (SUSTAINED_RATE,
# SUSTAINED_DURATION), p99 < 50 ms; the same-run baseline is the receiver's
# own answer latency.
bench ./scripts/loadgen BenchmarkSustainedEndToEnd 1x "${SUSTAINED_COUNT:-3}"
# Issue 21 goal 1: burst acceptance of the whole platform against a bare
# Echo server, alternately in each run (gate on and off).
bench ./scripts/loadgen BenchmarkPlatformBurst 1x "${BURST_COUNT:-3}"
# Live webhooks (200/s, two organizations) during a full sync, against the
# same load with nothing syncing; a small tenant's sync alone and during it.
ITSM_BENCH_ISSUES=${ITSM_BENCH_ISSUES:-20000} E2E_RATE=${LANES_RATE:-200} E2E_DURATION=${LANES_DURATION:-20s} \
	bench ./scripts/loadgen BenchmarkLiveDuringFullSync 1x "${LANES_COUNT:-3}"

echo
echo "== medians (raw output in $out)"
$GO run ./scripts/benchsummary <"$out"
