#!/usr/bin/env bash
# What `make bench` and `make bench-quick` run:
#
#   perf/bench.sh full|quick [harness flags...]
#
# Builds bin/sluice, the harness (perf/bench) and the kfake peer into
# perf/.tools, installs nats-server there from the Go module proxy if it is
# missing, installs iperf3 with apt when it can (root, apt-get present),
# then runs the harness. Extra arguments go to the harness, e.g.
#   make bench BENCH_ARGS='--only ^produce-1KiB --rounds 5'
# The report lands in perf/results/ (quick: perf/results/quick/).
set -euo pipefail

cd "$(dirname "$0")/.."
mode=${1:-full}
shift || true
GO=${GO:-go}
TOOLS=perf/.tools
NATS_VERSION=v2.15.2
start=$(date +%s)

case "$mode" in
full) harness_args=() ;;
quick) harness_args=(--quick --out perf/results/quick) ;;
*)
	echo "usage: perf/bench.sh full|quick [harness flags...]" >&2
	exit 2
	;;
esac

mkdir -p bin "$TOOLS"
echo "== building bin/sluice, the harness and the kfake peer"
# giouring needs -checklinkname=0 (see README); only the sluice build gets
# it, everything else builds with GOFLAGS unset.
GOFLAGS=-ldflags=-checklinkname=0 "$GO" build -o bin/sluice ./cmd/sluice
env -u GOFLAGS "$GO" build -o "$TOOLS/sluice-bench" ./perf/bench
env -u GOFLAGS "$GO" build -o "$TOOLS/kfakepeer" ./perf/bench/kfakepeer

if ! "$TOOLS/nats-server" --version 2>/dev/null | grep -q "$NATS_VERSION"; then
	echo "== installing nats-server $NATS_VERSION into $TOOLS"
	env -u GOFLAGS GOBIN="$PWD/$TOOLS" "$GO" install "github.com/nats-io/nats-server/v2@$NATS_VERSION"
fi

if ! command -v iperf3 >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
	echo "== installing iperf3 (the loopback TCP limit; without it a built-in probe measures it)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q iperf3 >/dev/null 2>&1 ||
		{ apt-get update -q >/dev/null 2>&1 && apt-get install -y -q iperf3 >/dev/null 2>&1; } ||
		echo "   iperf3 could not be installed; using the built-in probe"
fi

echo "== running the harness ($mode)"
status=0
SLUICE_BENCH_VIA="make bench$([ "$mode" = quick ] && echo -quick)" \
	"$TOOLS/sluice-bench" "${harness_args[@]}" "$@" || status=$?
echo "== make bench ($mode) took $(($(date +%s) - start))s, exit $status"
exit "$status"
