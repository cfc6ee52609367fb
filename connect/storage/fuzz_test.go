package storage

import (
	"os"
	"path/filepath"
	"testing"
)

// Whatever a file holds, reading it fails cleanly or yields entries that
// write and read back the same.
func FuzzReadJavaOffsets(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.offsets")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := readJavaOffsets(b)
		if err != nil {
			return
		}
		back, err := readJavaOffsets(writeJavaOffsets(m))
		if err != nil || len(back) != len(m) {
			t.Fatalf("written entries do not read back: %v", err)
		}
	})
}

// No record, however malformed, panics the config or status state, and a
// key that parses as an offsets key re-encodes to a key that parses the same.
func FuzzRecords(f *testing.F) {
	f.Add("connector-c", []byte(`{"properties":{"a":"1"}}`))
	f.Add("commit-c", []byte(`{"tasks":3}`))
	f.Add("target-state-c", []byte(`{"state":"PAUSED","state.v2":"STOPPED"}`))
	f.Add("status-topic-t:connector-c", []byte(`{"topic":{"name":"t","connector":"c","task":0,"discoverTimestamp":1}}`))
	f.Add(`["c",{"a":1.5e300,"b":[1]}]`, []byte(`{"x":-0.0}`))
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		cs := newConfigState(discard())
		cs.apply("connector-c", []byte(`{"properties":{}}`), 0)
		cs.apply(key, value, 1)
		cs.apply(key, nil, 2)
		_ = cs.snapshot()
		ss := newStatusState(discard())
		ss.apply(key, value)
		ss.apply(key, nil)
		os := newOffsetState(discard())
		os.apply([]byte(key), value)
		_ = os.offsets("c")
		if conn, part, ok := ParseOffsetKey([]byte(key)); ok {
			k, err := appendJSON(nil, []any{conn, part})
			if err != nil {
				return // e.g. a number too large for a float64 kept as text
			}
			conn2, _, ok2 := ParseOffsetKey(k)
			if !ok2 || conn2 != conn {
				t.Fatalf("%q re-encodes to %q", key, k)
			}
		}
	})
}
