package broker

import "github.com/twmb/franz-go/pkg/kerr"

// fdsPerPartition is what a partition has open while it is used: its
// active segment's .log, .index and .timeindex. Idle partitions hold none
// (segment_files.go), so the budget below is what a create would take if
// every new partition were used at once: it bounds one request, not how
// many partitions the broker may hold over time.
const fdsPerPartition = 3

// fdReserve is how many descriptors a create must leave free, for client
// connections, checkpoint and metadata writes and segment rolls: a tenth of
// the limit, at least 256. Without it a create could take the last
// descriptors and the broker would refuse new connections.
func fdReserve(limit int64) int64 { return max(256, limit/10) }

// fdUsage returns the process's descriptor limit (the soft RLIMIT_NOFILE,
// systemd's LimitNOFILE) and how many descriptors are open; ok is false
// where that cannot be told. A variable so tests can pretend to be short.
var fdUsage = processFDUsage

// checkFDBudget refuses adding partitions the process has no descriptors
// for, before anything is created: running out halfway used to fail the
// create with KAFKA_STORAGE_ERROR and leave the broker unable to accept
// connections. The error says what LimitNOFILE would be enough.
func checkFDBudget(partitions int64) error {
	limit, open, ok := fdUsage()
	if !ok {
		return nil
	}
	need := partitions * fdsPerPartition
	reserve := fdReserve(limit)
	if open+need+reserve <= limit {
		return nil
	}
	// The reserve grows with the limit; find a limit that covers it.
	enough := open + need + reserve
	for enough < open+need+fdReserve(enough) {
		enough = open + need + fdReserve(enough)
	}
	return refuse(kerr.PolicyViolation,
		"%d new partitions need about %d file descriptors (%d each); the process may open %d (LimitNOFILE, ulimit -n), has %d open and keeps %d for connections: raise LimitNOFILE to at least %d",
		partitions, need, fdsPerPartition, limit, open, reserve, enough)
}
