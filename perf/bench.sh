#!/usr/bin/env bash
# What `make bench` and `make bench-quick` run:
#
#   perf/bench.sh full|quick [harness flags...]
#
# Builds bin/sluice, the harness (perf/bench), the kfake peer and the
# connect benchmark (perf/connectbench) into perf/.tools, installs
# nats-server there from the Go module proxy if it is missing, installs
# iperf3 with apt when it can (root, apt-get present), then runs the
# harness and the reports beside it. Extra arguments go to the harness, e.g.
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
env -u GOFLAGS "$GO" build -o "$TOOLS/connectbench" ./perf/connectbench
env -u GOFLAGS "$GO" build -o "$TOOLS/quorumbench" ./perf/quorumbench

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

# Log compaction's cleaning throughput (issue 18): MB/s of dirty log a
# pass cleans, on 1 KiB records whose keys are 10% unique, in memory and on
# this machine's file system (fsyncs included). A Go benchmark, since a
# pass is not a client workload; run by the full bench unless --only
# narrows it, written beside the harness's report.
case " $* " in
*" --only "* | *" -only "* | *--only=* | *-only=*) ;;
*)
	if [ "$mode" = full ]; then
		out=perf/results/compaction/cleaning-throughput.md
		echo "== cleaning throughput (segment.BenchmarkClean) into $out"
		mkdir -p "$(dirname "$out")"
		if res=$(GOFLAGS=-ldflags=-checklinkname=0 "$GO" test -run XXX -bench 'BenchmarkClean$' -benchtime 5x -count 3 ./segment/ 2>&1); then
			{
				echo "# Cleaning throughput, $(date -u +%Y-%m-%d) ($(git rev-parse --short HEAD 2>/dev/null || echo unknown))"
				echo
				echo "One cleaning pass (segment.Log.Clean) over 16 MiB of dirty log: 1 KiB records, 16 to a batch, keys 10% unique."
				echo "MB/s is dirty log cleaned per second; osfs includes the pass's fsyncs. Kernel $(uname -r), $(nproc) cores."
				echo
				echo '```'
				echo "GOFLAGS=-ldflags=-checklinkname=0 go test -run XXX -bench 'BenchmarkClean\$' -benchtime 5x -count 3 ./segment/"
				grep -E '^Benchmark' <<<"$res"
				echo '```'
			} >"$out"
		else
			echo "   the cleaning benchmark failed:"
			tail -5 <<<"$res"
			status=1
		fi
	fi
	;;
esac
# Kafka Connect (issue 19): records/s through a worker from a generating
# source plugin to a discarding sink plugin, against franz-go alone, and the
# worker's and plugins' CPU per record. Its own driver (it starts a broker
# and a worker and builds the two plugins); full: three configurations,
# three rounds (about two and a half minutes); quick: two, smaller.
case " $* " in
*" --only "* | *" -only "* | *--only=* | *-only=*) ;;
*)
	if [ "$mode" = full ]; then
		connect_args=(--out perf/results)
	else
		connect_args=(--quick --out perf/results/quick)
	fi
	echo "== connect throughput (perf/connectbench) into ${connect_args[-1]}/connect-throughput.md"
	GO="$GO" SLUICE_BENCH_VIA="make bench$([ "$mode" = quick ] && echo -quick)" \
		"$TOOLS/connectbench" --sluice bin/sluice "${connect_args[@]}" || status=1
	# The connectors' own benchmarks (issue 20): file tail, syslog beside
	# rsyslog's omkafka, PostgreSQL CDC and sink, with their targets.
	echo "== connectors (perf/connectbench --connectors) into ${connect_args[-1]}/connectors.md"
	GO="$GO" SLUICE_BENCH_VIA="make bench$([ "$mode" = quick ] && echo -quick)" \
		"$TOOLS/connectbench" --sluice bin/sluice --connectors . "${connect_args[@]}" || status=1
	# The controller quorum (issue 17): failover after kill -9 of the
	# active controller, metadata throughput, a broker's catch-up. 3,000
	# partitions and the issue's 20 kills keep it near ten minutes on 2
	# cores.
	if [ "$mode" = full ]; then
		quorum_args=(--partitions 3000 --kills 20 --out perf/results)
	else
		quorum_args=(--quick --out perf/results/quick)
	fi
	echo "== controller quorum (perf/quorumbench) into ${quorum_args[-1]}/quorum.md"
	"$TOOLS/quorumbench" --sluice bin/sluice "${quorum_args[@]}" || status=1
	;;
esac
echo "== make bench ($mode) took $(($(date +%s) - start))s, exit $status"
exit "$status"
