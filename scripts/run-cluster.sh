#!/usr/bin/env bash
# Starts a three-node Sluice cluster on this machine (`make run-cluster`):
# node 1 is broker and controller, nodes 2 and 3 are brokers, each from its
# deploy/cluster/nodeN.properties, with data under ./data/node1..3 and logs
# in ./data/nodeN.log. Ctrl-C (or SIGTERM) stops all three, brokers first,
# each with a controlled shutdown.
#
# Usage: scripts/run-cluster.sh [BIN]   (BIN defaults to bin/sluice)
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${1:-bin/sluice}
CONF=deploy/cluster

if [[ ! -x "$BIN" ]]; then
	echo "run-cluster: $BIN not found; run 'make build' first" >&2
	exit 1
fi
mkdir -p data

pids=()
stop() {
	trap - INT TERM EXIT
	echo
	echo "stopping the cluster..."
	# Brokers first, the controller last: a broker's controlled shutdown
	# needs the controller.
	local i
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[i]}" 2>/dev/null || true
		wait "${pids[i]}" 2>/dev/null || true
	done
	echo "stopped; data is in ./data/node1..3, logs in ./data/node1..3.log"
	exit 0
}
trap stop INT TERM EXIT

# prop FILE KEY prints KEY's value in a properties file.
prop() { sed -n "s/^$2=//p" "$1" | tail -n 1; }

for n in 1 2 3; do
	props=$CONF/node$n.properties
	log=data/node$n.log
	touch "$log"
	from=$(($(wc -c <"$log") + 1))
	# Its own session, so a Ctrl-C reaches only this script, which then
	# stops the nodes in order.
	setsid "$BIN" broker --config "$props" >>"$log" 2>&1 &
	pids+=($!)
	# Wait until the node listens (nodes 2 and 3 first wait for node 1's
	# controller), or exits.
	for _ in $(seq 1 300); do
		if ! kill -0 "${pids[-1]}" 2>/dev/null; then
			echo "run-cluster: node $n exited; the end of $log:" >&2
			tail -n 20 "$log" >&2
			exit 1
		fi
		tail -c "+$from" "$log" | grep -q 'msg="broker listening"' && break
		sleep 0.1
	done
	echo "node $n (pid ${pids[-1]}): Kafka on $(prop "$props" listeners), admin http://$(prop "$props" admin.listener)/metrics, data $(prop "$props" log.dirs), log $log"
done

echo
echo "cluster up. Try:"
echo "  bin/sluice cluster describe --brokers 127.0.0.1:9092"
echo "  bin/sluice topic create demo --partitions 3 --brokers 127.0.0.1:9092"
echo "Ctrl-C stops all three."
if wait -n "${pids[@]}"; then :; fi
# Reached only when a node exits by itself (a signal to this script runs
# stop, which exits).
echo "run-cluster: a node exited on its own; stopping the others (see ./data/node*.log)" >&2
