package controller

import (
	"strconv"
	"strings"
)

// Topic config names the replication decisions read (Kafka's names).
const (
	ConfigMinInsyncReplicas     = "min.insync.replicas"
	ConfigUncleanLeaderElection = "unclean.leader.election.enable"
)

// Policy is the broker configuration the replication decisions depend on.
// A topic's override (its Configs) wins over these defaults. It is passed
// to every planner, never kept in State: the records a plan returns carry
// the decision, so changing the policy later does not change how a log
// replays.
type Policy struct {
	// MinInsyncReplicas is min.insync.replicas; below 1 means Kafka's
	// default, 1.
	MinInsyncReplicas int
	// UncleanLeaderElection is unclean.leader.election.enable (default
	// false): may a leader come from outside the ISR and ELR when none is
	// left there.
	UncleanLeaderElection bool
}

// MinISR is the effective min.insync.replicas of partition p of t: the
// topic's or the default, capped at the replication factor
// (ReplicationControlManager.getTopicEffectiveMinIsr).
func (pol Policy) MinISR(t *Topic, p Partition) int {
	n := pol.MinInsyncReplicas
	if v, err := strconv.Atoi(t.Configs[ConfigMinInsyncReplicas]); err == nil {
		n = v
	}
	n = max(n, 1)
	return min(n, len(p.TargetReplicas()))
}

// Unclean reports whether t allows unclean leader elections.
func (pol Policy) Unclean(t *Topic) bool {
	if v, ok := t.Configs[ConfigUncleanLeaderElection]; ok {
		return strings.EqualFold(strings.TrimSpace(v), "true")
	}
	return pol.UncleanLeaderElection
}
