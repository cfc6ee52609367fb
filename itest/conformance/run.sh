#!/usr/bin/env bash
# Runs franz-go's own client integration suite (github.com/twmb/franz-go/pkg/kgo,
# at the version pinned in go.mod) against fresh Sluice brokers, in two
# setups:
#
#   single   one broker, KGO_TEST_RF=1: the protocol as one node serves it.
#   cluster  three broker processes on loopback (node 1 broker and
#            controller, nodes 2 and 3 brokers) with
#            default.replication.factor=3, min.insync.replicas=2 and
#            offsets.topic.replication.factor=3, KGO_SEEDS naming all three
#            and KGO_TEST_RF=3: every topic the suite creates has three
#            replicas, so every produce waits for followers, consumers read
#            up to a replicated high watermark and group coordinators live on
#            whichever node leads their __consumer_offsets partition.
#
#   itest/conformance/run.sh [single|cluster]...   (default: both, in turn)
#
# Each top-level test runs in its own process: a failing test of the suite can
# panic the whole test binary (for example TestTxnEtl reports errors after it
# has returned), which would hide the results of every other test.
#
# expected-failures.txt lists the tests that need features not built yet. The
# run fails if an unlisted test fails, or if a listed test passes (so the list
# only shrinks). expected-skips.txt does the same for skipped tests and
# subtests: the suite skips what the broker does not advertise (KIP-848,
# static membership, share groups), so an unlisted skip is a feature silently
# not tested. The cluster setup reads expected-failures-cluster.txt and
# expected-skips-cluster.txt as well, for what fails only on a cluster.
# UPDATE=1 rewrites the lists of the setups run from this run instead.
#
# The cluster setup runs the suite with KGO_TEST_RECORDS=100000 instead of its
# 500000: TestGroupETL chains six consumer groups through 500000 records, and
# with every record acknowledged by three replicas on three brokers that
# share two cores it alone takes over five minutes; a fifth of the records
# runs the same checks (TestGroupETL and TestTxnEtl are the tests that read it).
#
# Environment: CONFORMANCE_RUN (regexp, default all tests), CONFORMANCE_TIMEOUT
# (per test, in seconds, default 300: it is there to catch a hang, and
# TestGroupETL and TestClient_Produce take 70-90 s on this machine kind
# when its two cores are shared with other work; at 120 s they timed out
# in CI runs next to benchmarks, on one broker and on three),
# CONFORMANCE_CLUSTER_RECORDS (default 100000),
# KEEP_LOGS=1 keeps the per-test and broker logs.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
dir=$root/itest/conformance
export GOFLAGS="${GOFLAGS:-} -ldflags=-checklinkname=0"

modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(single cluster)
for m in "${modes[@]}"; do
	case $m in single | cluster) ;; *)
		echo "usage: $0 [single|cluster]..." >&2
		exit 2
		;;
	esac
done

work=$(mktemp -d)
pids=() # the running brokers, node 1 first
stop_brokers() {
	# Brokers before the controller: a broker's controlled shutdown asks
	# node 1 to move its leaderships away. Each gets 20 s, then SIGKILL.
	local i pid
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		pid=${pids[i]}
		kill -0 "$pid" 2>/dev/null || continue
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 200); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "conformance: broker pid $pid did not stop within 20s of SIGTERM; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		wait "$pid" 2>/dev/null || true
	done
	pids=()
}
cleanup() {
	stop_brokers
	if [ "${KEEP_LOGS:-}" = 1 ]; then echo "conformance: logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

go build -o "$work/sluice" ./cmd/sluice
go test -c -o "$work/kgo.test" github.com/twmb/franz-go/pkg/kgo
# Some tests read the package's own source files, so they run from its
# directory in the module cache (read only; the tests only read there).
pkgdir=$(go list -f '{{.Dir}}' github.com/twmb/franz-go/pkg/kgo)
echo "conformance: franz-go $(go list -m -f '{{.Version}}' github.com/twmb/franz-go)"

# free_port prints a loopback port nothing listens on, below the ephemeral
# range so no outgoing connection takes it before the broker binds it.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}

# start_broker LOG ARGS... starts one broker and waits until it listens.
start_broker() {
	local log=$1 pid
	shift
	"$work/sluice" broker --set admin.listener=127.0.0.1:0 --set group.initial.rebalance.delay.ms=0 "$@" >"$log" 2>&1 &
	pid=$!
	pids+=("$pid")
	for _ in $(seq 300); do
		grep -q 'msg="broker listening"' "$log" && return 0
		kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "conformance: broker died at start" >&2; exit 1; }
		sleep 0.1
	done
	cat "$log"
	echo "conformance: broker did not start within 30s" >&2
	exit 1
}

# start_single and start_cluster set seeds, rf, records (KGO_TEST_RECORDS,
# empty for the suite's default) and logs (the broker logs).
start_single() {
	start_broker "$work/single/broker.log" --set listeners=PLAINTEXT://127.0.0.1:0 --set "log.dirs=$work/single/data"
	seeds=$(sed -n 's/.*msg="broker listening".* addr=\([0-9.:]*\).*/\1/p' "$work/single/broker.log" | head -1)
	rf=1 records=
	logs=("$work/single/broker.log")
	echo "conformance: single broker at $seeds"
}

start_cluster() {
	local ctl i port listeners roles addrs=()
	ctl=$(free_port)
	logs=()
	for i in 1 2 3; do
		port=$(free_port)
		while [ "$port" = "$ctl" ]; do port=$(free_port); done
		listeners=PLAINTEXT://127.0.0.1:$port roles=broker
		if [ $i = 1 ]; then
			listeners+=,CONTROLLER://127.0.0.1:$ctl roles=broker,controller
		fi
		logs+=("$work/cluster/node$i.log")
		start_broker "$work/cluster/node$i.log" --set node.id=$i --set process.roles=$roles \
			--set "controller.quorum.voters=1@127.0.0.1:$ctl" --set controller.listener.names=CONTROLLER \
			--set "listeners=$listeners" --set inter.broker.listener.name=PLAINTEXT \
			--set "log.dirs=$work/cluster/node$i" --set default.replication.factor=3 \
			--set min.insync.replicas=2 --set offsets.topic.replication.factor=3
		addrs+=("127.0.0.1:$port")
	done
	seeds=$(IFS=,; echo "${addrs[*]}")
	rf=3 records=${CONFORMANCE_CLUSTER_RECORDS:-100000}
	# Brokers register fenced and are unfenced once caught up with the
	# metadata log; the suite's first CreateTopics with three replicas
	# needs all three unfenced, so wait until a probe topic can be made.
	local probe=conformance-probe ok=
	for _ in $(seq 60); do
		if "$work/sluice" topic create "$probe" --partitions 1 --replication-factor 3 --brokers "$seeds" >/dev/null 2>&1; then
			ok=1
			break
		fi
		sleep 0.5
	done
	[ -n "$ok" ] || { tail -20 "${logs[@]}"; echo "conformance: the cluster never accepted a topic with three replicas" >&2; exit 1; }
	"$work/sluice" topic delete "$probe" --brokers "$seeds" >/dev/null
	echo "conformance: three brokers at $seeds"
}

# read_list FILE... prints the names listed in the files.
read_list() {
	local f name
	for f in "$@"; do
		[ -f "$f" ] || continue
		while read -r name _; do
			case "$name" in '' | '#'*) continue ;; esac
			echo "$name"
		done <"$f"
	done
}

# rewrite_list FILE BASE NAMES... keeps FILE's comments and its line for
# each name (or "name  needs: ?"), leaving out names BASE already lists.
rewrite_list() {
	local file=$1 base=$2 n
	shift 2
	{
		[ -f "$file" ] && sed -n '/^#/p' "$file"
		for n in "$@"; do
			[ "$base" != "$file" ] && grep -qE "^$n( |$)" "$base" && continue
			grep -E "^$n " "$file" 2>/dev/null || echo "$n  needs: ?"
		done
	} >"$file.new"
	mv "$file.new" "$file"
}

total_bad=0
run_suite() {
	local mode=$1 t s log status
	mkdir -p "$work/$mode"
	local fail_files=("$dir/expected-failures.txt") skip_files=("$dir/expected-skips.txt")
	if [ "$mode" = cluster ]; then
		fail_files+=("$dir/expected-failures-cluster.txt")
		skip_files+=("$dir/expected-skips-cluster.txt")
	fi
	start_$mode
	declare -A expected=() expected_skip=()
	while read -r t; do expected[$t]=1; done < <(read_list "${fail_files[@]}")
	while read -r t; do expected_skip[$t]=1; done < <(read_list "${skip_files[@]}")

	local pattern=${CONFORMANCE_RUN:-.} tests timeout=${CONFORMANCE_TIMEOUT:-300}
	mapfile -t tests < <(cd "$pkgdir" && "$work/kgo.test" -test.list "$pattern" | grep '^Test')
	local passed=0 xfailed=0 bad=0 failures=() skipped=() started=$SECONDS
	run_one() {
		local t=$1 log=$2
		shift 2
		(cd "$pkgdir" && KGO_SEEDS="$seeds" KGO_TEST_RF=$rf KGO_LOG_LEVEL=none \
			env ${records:+KGO_TEST_RECORDS=$records} timeout $((timeout + 30)) "$work/kgo.test" -test.run "^${t}\$" \
			-test.timeout "${timeout}s" -test.count=1 -test.v "$@") >"$log" 2>&1
	}
	unexpected_skips() {
		local s
		while read -r s; do
			[ -z "${expected_skip[$s]:-}" ] && return 0
		done < <(sed -n 's/^ *--- SKIP: \([^ ]*\) .*/\1/p' "$1")
		return 1
	}
	for t in "${tests[@]}"; do
		log="$work/$mode/$t.log"
		status=pass
		run_one "$t" "$log" || status=fail
		local tries=0
		while unexpected_skips "$log" && [ $tries -lt 5 ]; do
			# The suite learns what the broker supports in its first admin
			# call; a parallel subtest that checks before that call skips
			# although the broker supports the feature (TestGroupSimple/848
			# does). Which released subtest runs first is up to the Go
			# runtime, even serially, so a serial rerun can lose the same
			# race: up to five reruns tell it from a real skip, which
			# skips every time.
			tries=$((tries + 1))
			status=pass
			run_one "$t" "$log" -test.parallel=1 || status=fail
		done
		declare -A ran_skips=()
		while read -r s; do
			ran_skips[$s]=1
			skipped+=("$s")
			if [ -z "${expected_skip[$s]:-}" ]; then
				echo "UNEXPECTED SKIP ($mode) $s: $({ grep -B1 -A1 -F -- "--- SKIP: $s " "$log" | grep '_test.go:[0-9]*:' || true; } | head -1 | sed 's/^ *//')"
				bad=$((bad + 1))
			fi
		done < <(sed -n 's/^ *--- SKIP: \([^ ]*\) .*/\1/p' "$log")
		for s in "${!expected_skip[@]}"; do
			if [[ $s == "$t" || $s == "$t/"* ]] && [ -z "${ran_skips[$s]:-}" ]; then
				echo "UNEXPECTED RUN ($mode) $s: remove it from the expected skips of itest/conformance"
				bad=$((bad + 1))
			fi
		done
		unset ran_skips
		for pid in "${pids[@]}"; do
			if ! kill -0 "$pid" 2>/dev/null; then
				tail -n 50 "${logs[@]}"
				echo "conformance: a broker (pid $pid) died during $t ($mode)" >&2
				exit 1
			fi
		done
		if [ $status = fail ]; then failures+=("$t"); fi
		if [ -n "${expected[$t]:-}" ]; then
			if [ $status = fail ]; then
				xfailed=$((xfailed + 1))
			else
				echo "UNEXPECTED PASS ($mode) $t: remove it from the expected failures of itest/conformance"
				bad=$((bad + 1))
			fi
		elif [ $status = fail ]; then
			echo "FAIL ($mode) $t"
			{ grep -E -- '--- FAIL|_test.go:[0-9]+:|panic:' "$log" || true; } | head -20 | sed 's/^/    /' || true
			bad=$((bad + 1))
		else
			passed=$((passed + 1))
		fi
	done

	for log in "${logs[@]}"; do
		if grep -q 'DATA RACE\|panic:' "$log"; then
			grep -A30 'DATA RACE\|panic:' "$log" | head -60 || true
			echo "conformance: $log reports a race or panic" >&2
			bad=$((bad + 1))
		fi
	done
	stop_brokers

	if [ "${UPDATE:-}" = 1 ]; then
		# The base lists keep what fails or skips in this setup and are
		# listed there; the cluster lists take the rest.
		local last=$((${#fail_files[@]} - 1))
		if [ "$mode" = single ]; then
			rewrite_list "${fail_files[0]}" "${fail_files[0]}" "${failures[@]}"
			rewrite_list "${skip_files[0]}" "${skip_files[0]}" "${skipped[@]}"
		else
			rewrite_list "${fail_files[last]}" "${fail_files[0]}" "${failures[@]}"
			rewrite_list "${skip_files[last]}" "${skip_files[0]}" "${skipped[@]}"
		fi
		echo "conformance ($mode): rewrote the lists from ${#failures[@]} failing tests and ${#skipped[@]} skips"
	fi

	echo "conformance ($mode): $xfailed expected failures (features not built yet, see ${fail_files[*]#"$root/"})"
	echo "conformance ($mode): ${#skipped[@]} expected skips (see ${skip_files[*]#"$root/"})"
	echo "conformance ($mode): $passed passed, $bad failed in $((SECONDS - started))s"
	total_bad=$((total_bad + bad))
}

for m in "${modes[@]}"; do
	run_suite "$m"
done
[ "$total_bad" -eq 0 ]
