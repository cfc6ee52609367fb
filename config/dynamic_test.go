package config

import (
	"errors"
	"slices"
	"testing"
)

func TestDynamicBrokerSettingsAreSettings(t *testing.T) {
	for _, name := range DynamicBrokerSettings() {
		s, ok := Lookup(name)
		if !ok {
			t.Fatalf("dynamic setting %s is no broker setting", name)
		}
		if s.ReadOnly {
			t.Errorf("%s is dynamic but described read-only", name)
		}
	}
	if s, _ := Lookup("num.partitions"); !s.ReadOnly {
		t.Error("num.partitions is static but not described read-only")
	}
}

func TestValidateDynamicBrokerConfig(t *testing.T) {
	for _, c := range []struct {
		name, value string
		want        error // nil: accepted; else errors.Is
		wantErr     bool
	}{
		{"leader.replication.throttled.rate", "1048576", nil, false},
		{"follower.replication.throttled.rate", "0", nil, false},
		{"leader.replication.throttled.rate", "-1", nil, true},
		{"leader.replication.throttled.rate", "fast", nil, true},
		{"num.partitions", "3", ErrNotDynamic, true},
		{"leader.replication.throttled.rat", "1", ErrUnknownBrokerSetting, true},
	} {
		err := ValidateDynamicBrokerConfig(c.name, c.value)
		if (err != nil) != c.wantErr || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s=%s: %v", c.name, c.value, err)
		}
	}
}

// A value set for the broker beats the cluster default, which beats the
// properties file; Describe says which one holds the value and lists the
// others as synonyms, most important first.
func TestDescribeWithDynamic(t *testing.T) {
	b, err := Load("", []string{"leader.replication.throttled.rate=100", "follower.replication.throttled.rate=300"})
	if err != nil {
		t.Fatal(err)
	}
	d := Dynamic{
		PerBroker:      map[string]string{"leader.replication.throttled.rate": "1000"},
		ClusterDefault: map[string]string{"leader.replication.throttled.rate": "2000", "follower.replication.throttled.rate": "3000"},
	}
	if got := d.Int("leader.replication.throttled.rate", b.LeaderReplicationThrottledRate); got != 1000 {
		t.Errorf("leader rate %d, want the broker's 1000", got)
	}
	if got := d.Int("follower.replication.throttled.rate", b.FollowerReplicationThrottledRate); got != 3000 {
		t.Errorf("follower rate %d, want the cluster default 3000", got)
	}
	if got := (Dynamic{}).Int("follower.replication.throttled.rate", b.FollowerReplicationThrottledRate); got != 300 {
		t.Errorf("follower rate %d, want the static 300", got)
	}
	byName := map[string]Entry{}
	for _, e := range b.DescribeWith(d) {
		byName[e.Name] = e
	}
	sources := func(e Entry) []Source {
		var out []Source
		for _, s := range e.Synonyms {
			out = append(out, s.Source)
		}
		return out
	}
	l := byName["leader.replication.throttled.rate"]
	if l.Value != "1000" || l.Source != SourceDynamicBrokerConfig ||
		!slices.Equal(sources(l), []Source{SourceDynamicBrokerConfig, SourceDynamicDefaultBrokerConfig, SourceStaticBrokerConfig, SourceDefaultConfig}) {
		t.Errorf("leader: %+v", l)
	}
	f := byName["follower.replication.throttled.rate"]
	if f.Value != "3000" || f.Source != SourceDynamicDefaultBrokerConfig || f.Synonyms[1].Value != "300" {
		t.Errorf("follower: %+v", f)
	}
	if n := byName["num.partitions"]; n.Source != SourceDefaultConfig || !slices.Equal(sources(n), []Source{SourceDefaultConfig}) {
		t.Errorf("num.partitions: %+v", n)
	}
	defs := b.DescribeClusterDefaults(d.ClusterDefault)
	if len(defs) != 2 || defs[0].Name != "follower.replication.throttled.rate" || defs[0].Value != "3000" || defs[0].Source != SourceDynamicDefaultBrokerConfig {
		t.Errorf("cluster defaults: %+v", defs)
	}
}
