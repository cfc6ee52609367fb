#!/usr/bin/env bash
# Starts a three-node Sluice cluster on this machine, each node from its
# CONF/nodeN.properties with its data in the file's log.dirs and its log
# beside it (DATA/nodeN.log). Ctrl-C (or SIGTERM) stops all three, node 3
# first, each with a controlled shutdown.
#
#   make run-cluster: CONF=deploy/cluster, node 1 is broker and the one
#     controller, nodes 2 and 3 are brokers; data in ./data/node1..3.
#   make run-quorum: CONF=deploy/quorum, all three are brokers and
#     controller voters; data in ./data/quorum/node1..3.
#
# Usage: scripts/run-cluster.sh [BIN [CONF]]   (defaults bin/sluice, deploy/cluster)
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${1:-bin/sluice}
CONF=${2:-deploy/cluster}
DATA=data
if [[ $CONF == deploy/quorum ]]; then
	DATA=data/quorum
fi

if [[ ! -x "$BIN" ]]; then
	echo "run-cluster: $BIN not found; run 'make build' first" >&2
	exit 1
fi
mkdir -p "$DATA"

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
	echo "stopped; data is in ./$DATA/node1..3, logs in ./$DATA/node1..3.log"
	exit 0
}
trap stop INT TERM EXIT

# prop FILE KEY prints KEY's value in a properties file.
prop() { sed -n "s/^$2=//p" "$1" | tail -n 1; }

# All three start at once: a quorum's voters wait for each other, and
# brokers wait for their controller.
froms=()
for n in 1 2 3; do
	log=$DATA/node$n.log
	touch "$log"
	froms+=($(($(wc -c <"$log") + 1)))
	# Its own session, so a Ctrl-C reaches only this script, which then
	# stops the nodes in order.
	setsid "$BIN" broker --config "$CONF/node$n.properties" >>"$log" 2>&1 &
	pids+=($!)
done
for n in 1 2 3; do
	props=$CONF/node$n.properties
	log=$DATA/node$n.log
	# Wait until the node listens, or exits.
	for _ in $(seq 1 600); do
		if ! kill -0 "${pids[n - 1]}" 2>/dev/null; then
			echo "run-cluster: node $n exited; the end of $log:" >&2
			tail -n 20 "$log" >&2
			exit 1
		fi
		tail -c "+${froms[n - 1]}" "$log" | grep -q 'msg="broker listening"' && break
		sleep 0.1
	done
	echo "node $n (pid ${pids[n - 1]}): Kafka on $(prop "$props" listeners), admin http://$(prop "$props" admin.listener)/metrics, data $(prop "$props" log.dirs), log $log"
done

echo
echo "cluster up. Try:"
echo "  bin/sluice cluster describe --brokers 127.0.0.1:9092"
echo "  bin/sluice topic create demo --partitions 3 --brokers 127.0.0.1:9092"
echo "Ctrl-C stops all three."
if wait -n "${pids[@]}"; then :; fi
# Reached only when a node exits by itself (a signal to this script runs
# stop, which exits).
echo "run-cluster: a node exited on its own; stopping the others (see ./$DATA/node*.log)" >&2
