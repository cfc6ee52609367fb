package storage

import (
	"fmt"
	"sort"
	"strings"
	"testing"
)

// renderSnapshot prints a snapshot in a fixed order, one fact a line.
func renderSnapshot(s ConfigSnapshot) string {
	var b strings.Builder
	fmt.Fprintf(&b, "offset=%d\n", s.Offset)
	names := map[string]bool{}
	for n := range s.Connectors {
		names[n] = true
	}
	for n := range s.TargetStates {
		names[n] = true
	}
	for n := range s.TaskCounts {
		names[n] = true
	}
	var sorted []string
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		fmt.Fprintf(&b, "%s:", n)
		if c, ok := s.Connectors[n]; ok {
			fmt.Fprintf(&b, " config=%s", renderProps(c))
		}
		if ts, ok := s.TargetStates[n]; ok {
			fmt.Fprintf(&b, " target=%s", ts)
		}
		if c, ok := s.TaskCounts[n]; ok {
			fmt.Fprintf(&b, " count=%d", c)
		}
		if s.Inconsistent[n] {
			b.WriteString(" inconsistent")
		}
		for _, id := range s.Tasks(n) {
			fmt.Fprintf(&b, " task%d=%s", id.Task, renderProps(s.TaskConfig(id)))
		}
		if g, ok := s.Generations[n]; ok {
			fmt.Fprintf(&b, " gen=%d", g)
		}
		if a, ok := s.AppliedConfigs[n]; ok {
			fmt.Fprintf(&b, " applied=%s", renderProps(a))
		}
		b.WriteString("\n")
	}
	if s.SessionKey != nil {
		fmt.Fprintf(&b, "session-key %x %s %d\n", s.SessionKey.Key, s.SessionKey.Algorithm, s.SessionKey.CreationTimestamp)
	}
	return b.String()
}

func renderProps(m map[string]string) string {
	var kv []string
	for k, v := range m {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return "{" + strings.Join(kv, ",") + "}"
}

func renderUpdate(u ConfigUpdate) string {
	s := u.Kind.String() + " " + u.Connector
	switch u.Kind {
	case TaskConfigsCommitted:
		s += fmt.Sprint(" ", u.Tasks)
	case RestartRequested:
		s += fmt.Sprintf(" include-tasks=%v only-failed=%v", u.Restart.IncludeTasks, u.Restart.OnlyFailed)
	case LoggerLevelChanged:
		s = u.Kind.String() + " " + u.Namespace + " " + u.Level
	}
	return strings.TrimSpace(s)
}

// The config topic's rules, one record at a time: records are "key value",
// "key" alone is a tombstone; want is the snapshot after all records and
// updates every update they produced.
func TestConfigStateRules(t *testing.T) {
	for _, tc := range []struct {
		name    string
		records []string
		want    string
		updates []string
	}{{
		name: "tasks wait for their commit, then apply together",
		records: []string{
			`connector-c {"properties":{"a":"1"}}`,
			`task-c-0 {"properties":{"t":"0"}}`,
			`task-c-1 {"properties":{"t":"1"}}`,
		},
		want:    "offset=3\nc: config={a=1} target=STARTED\n",
		updates: []string{"connector-config-updated c"},
	}, {
		name: "commit applies; fewer tasks later",
		records: []string{
			`connector-c {"properties":{"a":"1"}}`,
			`task-c-0 {"properties":{"t":"0"}}`,
			`task-c-1 {"properties":{"t":"1"}}`,
			`commit-c {"tasks":2}`,
			`connector-c {"properties":{"a":"2"}}`,
			`task-c-0 {"properties":{"t":"new"}}`,
			`commit-c {"tasks":1}`,
		},
		want: "offset=7\nc: config={a=2} target=STARTED count=1 task0={t=new} gen=1 applied={a=2}\n",
		updates: []string{"connector-config-updated c", "task-configs-committed c [c-0 c-1]",
			"connector-config-updated c", "task-configs-committed c [c-0]"},
	}, {
		// Kafka's javadoc case: compaction removed task-foo-1's first
		// config, and the second update failed midway.
		name: "incomplete commit after compaction is inconsistent until a complete one",
		records: []string{
			`connector-foo {"properties":{}}`,
			`task-foo-1 {"properties":{"t":"1"}}`,
			`commit-foo {"tasks":2}`,
			`task-foo-0 {"properties":{"t":"0b"}}`,
		},
		want:    "offset=4\nfoo: config={} target=STARTED count=2 inconsistent\n",
		updates: []string{"connector-config-updated foo", "task-configs-committed foo []"},
	}, {
		name: "a complete commit clears inconsistency",
		records: []string{
			`connector-foo {"properties":{}}`,
			`commit-foo {"tasks":1}`,
			`task-foo-0 {"properties":{"t":"0"}}`,
			`commit-foo {"tasks":1}`,
		},
		want:    "offset=4\nfoo: config={} target=STARTED count=1 task0={t=0} gen=0 applied={}\n",
		updates: []string{"connector-config-updated foo", "task-configs-committed foo []", "task-configs-committed foo [foo-0]"},
	}, {
		name: "state.v2 wins; old workers' state is read; a target state may precede its connector",
		records: []string{
			`target-state-c {"state":"PAUSED","state.v2":"STOPPED"}`,
			`connector-c {"properties":{}}`,
			`target-state-d {"state":"PAUSED"}`,
			`connector-d {"properties":{}}`,
			`target-state-d {"state":"PAUSED"}`,
			`target-state-d {"state":"RUNNING"}`,
			`target-state-d {"state.v2":"STARTED"}`,
		},
		want:    "offset=7\nc: config={} target=STOPPED\nd: config={} target=STARTED\n",
		updates: []string{"connector-config-updated c", "connector-config-updated d", "target-state-changed d"},
	}, {
		name: "deletion: config tombstone drops tasks, target-state tombstone its state",
		records: []string{
			`connector-c {"properties":{}}`,
			`target-state-c {"state":"PAUSED","state.v2":"PAUSED"}`,
			`task-c-0 {"properties":{}}`,
			`commit-c {"tasks":1}`,
			`connector-c`,
			`target-state-c`,
			`connector-e {"properties":{}}`,
			`target-state-e {"state":"PAUSED","state.v2":"PAUSED"}`,
			`target-state-e`,
		},
		want: "offset=9\ne: config={} target=STARTED\n",
		updates: []string{"connector-config-updated c", "target-state-changed c", "task-configs-committed c [c-0]",
			"connector-config-removed c", "connector-config-updated e", "target-state-changed e"},
	}, {
		name: "a commit for a deleted connector is dropped",
		records: []string{
			`task-gone-0 {"properties":{}}`,
			`commit-gone {"tasks":1}`,
		},
		want: "offset=2\n",
	}, {
		name: "connector names with dashes; restart, logger and session key records",
		records: []string{
			`connector-my-conn-2 {"properties":{"n":null,"i":7}}`,
			`task-my-conn-2-10 {"properties":{}}`,
			`restart-connector-my-conn-2 {"include-tasks":true}`,
			`restart-connector-my-conn-2`,
			`logger-cluster-org.x {"level":"TRACE"}`,
			`session-key {"key":"AQI=","algorithm":"HmacSHA256","creation-timestamp":12}`,
		},
		want: "offset=6\nmy-conn-2: config={i=7} target=STARTED\nsession-key 0102 HmacSHA256 12\n",
		updates: []string{"connector-config-updated my-conn-2", "restart-requested my-conn-2 include-tasks=true only-failed=false",
			"logger-level-changed org.x TRACE", "session-key-updated"},
	}, {
		name: "unknown keys and malformed values are skipped; only unparsable JSON keeps the offset",
		records: []string{
			`connector-c {"properties":{}}`,
			`mystery {"x":1}`,
			`tasks-fencing-c {"task-count":1}`,
			`connector-c [1,2]`,
			`connector-c {"props":{}}`,
			`commit-c {"tasks":"two"}`,
			`target-state-c {"state":"ASLEEP"}`,
			`task-c-x {"properties":{}}`,
			`connector-d {not json`,
		},
		want:    "offset=8\nc: config={} target=STARTED\n",
		updates: []string{"connector-config-updated c"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			s := newConfigState(discard())
			var got []string
			for i, r := range tc.records {
				key, val, hasVal := strings.Cut(r, " ")
				var v []byte
				if hasVal {
					v = []byte(val)
				}
				for _, u := range s.apply(key, v, int64(i)) {
					got = append(got, renderUpdate(u))
				}
			}
			if snap := renderSnapshot(s.snapshot()); snap != tc.want {
				t.Errorf("snapshot:\n%s\nwant:\n%s", snap, tc.want)
			}
			if strings.Join(got, "\n") != strings.Join(tc.updates, "\n") {
				t.Errorf("updates:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.updates, "\n"))
			}
		})
	}
}

// A snapshot does not change when the state moves on.
func TestConfigSnapshotIsStable(t *testing.T) {
	s := newConfigState(discard())
	s.apply("connector-c", []byte(`{"properties":{"a":"1"}}`), 0)
	snap := s.snapshot()
	s.apply("connector-c", []byte(`{"properties":{"a":"2"}}`), 1)
	s.apply("connector-d", []byte(`{"properties":{}}`), 2)
	if snap.Connectors["c"]["a"] != "1" || snap.Contains("d") || snap.Offset != 1 {
		t.Fatalf("snapshot changed: %+v", snap)
	}
}
