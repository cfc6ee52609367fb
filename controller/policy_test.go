package controller

import "testing"

func TestPolicyMinISR(t *testing.T) {
	p := pt(1, ids(1, 2, 3), ids(1, 2, 3))
	for _, tc := range []struct {
		def   int
		topic string // the topic's override, "" for none
		want  int
	}{
		{0, "", 1},  // Kafka's default
		{2, "", 2},  // the broker's
		{2, "3", 3}, // the topic's wins
		{2, "5", 3}, // capped at the replication factor
		{2, "junk", 2},
	} {
		tp := &Topic{Name: "t"}
		if tc.topic != "" {
			tp.Configs = map[string]string{ConfigMinInsyncReplicas: tc.topic}
		}
		if got := (Policy{MinInsyncReplicas: tc.def}).MinISR(tp, p); got != tc.want {
			t.Errorf("default %d, topic %q: %d, want %d", tc.def, tc.topic, got, tc.want)
		}
	}
	tp := &Topic{Configs: map[string]string{ConfigUncleanLeaderElection: "TRUE"}}
	if !(Policy{}).Unclean(tp) || (Policy{UncleanLeaderElection: true}).Unclean(&Topic{Configs: map[string]string{ConfigUncleanLeaderElection: "false"}}) {
		t.Error("the topic's unclean.leader.election.enable must win")
	}
}
