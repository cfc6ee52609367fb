#!/usr/bin/env bash
# Runs every Fuzz* target of the module for FUZZTIME each (make fuzz).
# Targets are discovered with `go test -list`, so new ones are picked up.
#
# Go's fuzzer sometimes fails a run with "context deadline exceeded" when a
# worker answers its coordinator late on a loaded machine; no input failed
# then. Such a run (that error, no failing input written) is retried once;
# any other failure, or the same error twice, fails the step.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-10s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

n=0
for pkg in $($GO list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...); do
	targets=$($GO test -run '^$' -list '^Fuzz' "$pkg" | grep -E '^Fuzz' || true)
	for t in $targets; do
		for attempt in 1 2; do
			echo "==> fuzz $pkg $t for $FUZZTIME"
			if $GO test -run '^$' -fuzz "^$t\$" -fuzztime "$FUZZTIME" "$pkg" >"$log" 2>&1; then
				cat "$log"
				break
			fi
			cat "$log"
			if [ "$attempt" = 1 ] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
				echo "fuzz: $t hit the fuzzer's coordinator timeout without a failing input; running it again"
				continue
			fi
			exit 1
		done
		n=$((n + 1))
	done
done
echo "fuzz: $n target(s) ran for $FUZZTIME each"
