#!/usr/bin/env bash
# Runs franz-go's own client integration suite (github.com/twmb/franz-go/pkg/kgo,
# at the version pinned in go.mod) against a fresh single-node Sluice broker.
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
# not tested. UPDATE=1 rewrites both lists from this run instead.
#
# Environment: CONFORMANCE_RUN (regexp, default all tests), CONFORMANCE_TIMEOUT
# (per test, default 120s), KEEP_LOGS=1 keeps the per-test logs.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
expected_file=$root/itest/conformance/expected-failures.txt
skips_file=$root/itest/conformance/expected-skips.txt
export GOFLAGS="${GOFLAGS:-} -ldflags=-checklinkname=0"

work=$(mktemp -d)
broker_pid=
cleanup() {
	if [ -n "$broker_pid" ] && kill -0 "$broker_pid" 2>/dev/null; then
		kill -TERM "$broker_pid" 2>/dev/null || true
		wait "$broker_pid" 2>/dev/null || true
	fi
	if [ "${KEEP_LOGS:-}" = 1 ]; then echo "conformance: logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

go build -o "$work/sluice" ./cmd/sluice
go test -c -o "$work/kgo.test" github.com/twmb/franz-go/pkg/kgo
# Some tests read the package's own source files, so they run from its
# directory in the module cache (read only; the tests only read there).
pkgdir=$(go list -f '{{.Dir}}' github.com/twmb/franz-go/pkg/kgo)

"$work/sluice" broker --set listeners=PLAINTEXT://127.0.0.1:0 --set admin.listener=127.0.0.1:0 --set "log.dirs=$work/data" \
	--set group.initial.rebalance.delay.ms=0 >"$work/broker.log" 2>&1 &
broker_pid=$!
addr=
for _ in $(seq 100); do
	addr=$(sed -n 's/.*msg="broker listening".* addr=\([0-9.:]*\).*/\1/p' "$work/broker.log" | head -1 || true)
	[ -n "$addr" ] && break
	kill -0 "$broker_pid" 2>/dev/null || { cat "$work/broker.log"; echo "conformance: broker died at start" >&2; exit 1; }
	sleep 0.1
done
[ -n "$addr" ] || { cat "$work/broker.log"; echo "conformance: broker did not start" >&2; exit 1; }
echo "conformance: broker at $addr; franz-go $(go list -m -f '{{.Version}}' github.com/twmb/franz-go)"

declare -A expected=()
while read -r name _; do
	case "$name" in ''|'#'*) continue ;; esac
	expected[$name]=1
done <"$expected_file"
declare -A expected_skip=()
while read -r name _; do
	case "$name" in ''|'#'*) continue ;; esac
	expected_skip[$name]=1
done <"$skips_file"

pattern=${CONFORMANCE_RUN:-.}
mapfile -t tests < <(cd "$pkgdir" && "$work/kgo.test" -test.list "$pattern" | grep '^Test')
passed=0 xfailed=0 bad=0
failures=() skipped=()
run_one() {
	local t=$1 log=$2
	shift 2
	(cd "$pkgdir" && KGO_SEEDS="$addr" KGO_TEST_RF=1 KGO_LOG_LEVEL=none \
		timeout $((${CONFORMANCE_TIMEOUT:-120} + 30)) "$work/kgo.test" -test.run "^${t}\$" \
		-test.timeout "${CONFORMANCE_TIMEOUT:-120}s" -test.count=1 -test.v "$@") >"$log" 2>&1
}
unexpected_skips() {
	local s
	while read -r s; do
		[ -z "${expected_skip[$s]:-}" ] && return 0
	done < <(sed -n 's/^ *--- SKIP: \([^ ]*\) .*/\1/p' "$1")
	return 1
}
for t in "${tests[@]}"; do
	log="$work/$t.log"
	status=pass
	run_one "$t" "$log" || status=fail
	if unexpected_skips "$log"; then
		# The suite learns what the broker supports in its first admin
		# call; a parallel subtest that checks before that call skips
		# although the broker supports the feature (TestGroupSimple/848
		# does). One serial rerun tells that race from a real skip.
		status=pass
		run_one "$t" "$log" -test.parallel=1 || status=fail
	fi
	declare -A ran_skips=()
	while read -r s; do
		ran_skips[$s]=1
		skipped+=("$s")
		if [ -z "${expected_skip[$s]:-}" ]; then
			echo "UNEXPECTED SKIP $s: $({ grep -B1 -A1 -F -- "--- SKIP: $s " "$log" | grep '_test.go:[0-9]*:' || true; } | head -1 | sed 's/^ *//')"
			bad=$((bad + 1))
		fi
	done < <(sed -n 's/^ *--- SKIP: \([^ ]*\) .*/\1/p' "$log")
	for s in "${!expected_skip[@]}"; do
		if [[ $s == "$t" || $s == "$t/"* ]] && [ -z "${ran_skips[$s]:-}" ]; then
			echo "UNEXPECTED RUN $s: remove it from itest/conformance/expected-skips.txt"
			bad=$((bad + 1))
		fi
	done
	unset ran_skips
	if ! kill -0 "$broker_pid" 2>/dev/null; then
		tail -50 "$work/broker.log"
		echo "conformance: the broker died during $t" >&2
		exit 1
	fi
	if [ $status = fail ]; then failures+=("$t"); fi
	if [ -n "${expected[$t]:-}" ]; then
		if [ $status = fail ]; then
			xfailed=$((xfailed + 1))
		else
			echo "UNEXPECTED PASS $t: remove it from itest/conformance/expected-failures.txt"
			bad=$((bad + 1))
		fi
	elif [ $status = fail ]; then
		echo "FAIL $t"
		{ grep -E -- '--- FAIL|_test.go:[0-9]+:|panic:' "$log" || true; } | head -20 | sed 's/^/    /' || true
		bad=$((bad + 1))
	else
		passed=$((passed + 1))
	fi
done

if grep -q 'DATA RACE\|panic:' "$work/broker.log"; then
	grep -A30 'DATA RACE\|panic:' "$work/broker.log" | head -60 || true
	echo "conformance: the broker logged a race or panic" >&2
	bad=$((bad + 1))
fi

if [ "${UPDATE:-}" = 1 ]; then
	{
		sed -n '/^#/p' "$expected_file"
		for t in "${failures[@]}"; do
			grep -E "^$t " "$expected_file" || echo "$t  needs: ?"
		done
	} >"$expected_file.new"
	mv "$expected_file.new" "$expected_file"
	{
		sed -n '/^#/p' "$skips_file"
		for s in "${skipped[@]}"; do
			grep -E "^$s " "$skips_file" || echo "$s  needs: ?"
		done
	} >"$skips_file.new"
	mv "$skips_file.new" "$skips_file"
	echo "conformance: rewrote $expected_file with ${#failures[@]} failing tests and $skips_file with ${#skipped[@]} skips"
fi

echo "conformance: $xfailed expected failures (features not built yet, see itest/conformance/expected-failures.txt)"
echo "conformance: ${#skipped[@]} expected skips (see itest/conformance/expected-skips.txt)"
echo "conformance: $passed passed, $bad failed"
[ "$bad" -eq 0 ]
