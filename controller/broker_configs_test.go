package controller

import (
	"errors"
	"maps"
	"testing"

	"github.com/sluice-io/sluice/segment"
)

const leaderRate = "leader.replication.throttled.rate"

func TestBrokerConfigRecords(t *testing.T) {
	s := NewState("c")
	v1, v2 := "100", "200"
	mustApply(t, s,
		ConfigRecord{ResourceType: ConfigResourceBroker, ResourceName: "2", Name: leaderRate, Value: &v1},
		ConfigRecord{ResourceType: ConfigResourceBroker, ResourceName: "", Name: leaderRate, Value: &v2},
	)
	img := newImage(s, 0, 1)
	if got := img.BrokerConfigs("2"); !maps.Equal(got, map[string]string{leaderRate: "100"}) {
		t.Fatalf("broker 2: %v", got)
	}
	if got := img.BrokerConfigs(""); !maps.Equal(got, map[string]string{leaderRate: "200"}) {
		t.Fatalf("cluster default: %v", got)
	}
	if got := img.BrokerConfigs("3"); got != nil {
		t.Fatalf("broker 3 has %v, set nowhere", got)
	}
	// A published state never changes: the Store applies to a clone.
	c := s.clone()
	mustApply(t, c, ConfigRecord{ResourceType: ConfigResourceBroker, ResourceName: "2", Name: leaderRate})
	if got := s.BrokerConfigs["2"][leaderRate]; got != "100" {
		t.Fatalf("removing from a clone changed the original: %q", got)
	}
	if _, ok := c.BrokerConfigs["2"]; ok {
		t.Fatal("a broker with no setting left keeps an empty entry")
	}
	for _, bad := range []string{"one", "-1", "01", " 2"} {
		err := s.Apply(ConfigRecord{ResourceType: ConfigResourceBroker, ResourceName: bad, Name: leaderRate, Value: &v1})
		if !errors.Is(err, ErrInvalidBrokerResource) {
			t.Errorf("resource %q: %v", bad, err)
		}
	}
	// The records survive the log's encoding.
	b, err := EncodeRecord(ConfigRecord{ResourceType: ConfigResourceBroker, ResourceName: "", Name: leaderRate, Value: &v2})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := DecodeRecord(b); err != nil || r.(ConfigRecord).ResourceType != ConfigResourceBroker || *r.(ConfigRecord).Value != v2 {
		t.Fatalf("decoded %+v, %v", r, err)
	}
}

// PlanBrokerConfigs writes only what changes: a record per key set or
// changed, and a removal per key dropped.
func TestPlanBrokerConfigs(t *testing.T) {
	s := NewState("c")
	rs, err := s.PlanBrokerConfigs("1", map[string]string{leaderRate: "5", "follower.replication.throttled.rate": "6"})
	if err != nil || len(rs) != 2 {
		t.Fatalf("%v %v", rs, err)
	}
	mustApply(t, s, rs...)
	rs, err = s.PlanBrokerConfigs("1", map[string]string{leaderRate: "5"})
	if err != nil || len(rs) != 1 {
		t.Fatalf("dropping one key: %v %v", rs, err)
	}
	if r := rs[0].(ConfigRecord); r.ResourceType != ConfigResourceBroker || r.Name != "follower.replication.throttled.rate" || r.Value != nil {
		t.Fatalf("dropping one key: %+v", r)
	}
	if _, err := s.PlanBrokerConfigs("x", nil); !errors.Is(err, ErrInvalidBrokerResource) {
		t.Fatalf("resource x: %v", err)
	}
}

// Dynamic broker configs survive a restart, from the log and from the
// snapshot.
func TestBrokerConfigsSurviveRestart(t *testing.T) {
	fsys := segment.NewMemFS()
	s, err := Create(fsys, "/d", 1, quiet())
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, func(st *State) ([]Record, error) {
		return st.PlanBrokerConfigs("", map[string]string{leaderRate: "7"})
	})
	for _, how := range []string{"replayed", "snapshot"} {
		if how == "snapshot" {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		s2, err := Open(fsys, "/d", 1, quiet())
		if err != nil {
			t.Fatal(err)
		}
		if got := s2.Image().BrokerConfigs(""); got[leaderRate] != "7" {
			t.Fatalf("%s: cluster default %v", how, got)
		}
	}
}
