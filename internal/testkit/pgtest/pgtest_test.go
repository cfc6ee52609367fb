package pgtest

import (
	"strings"
	"testing"
)

// The server takes SQL, does logical decoding (wal_level=logical), and
// keeps committed rows across a kill -9 and a restart.
func TestServer(t *testing.T) {
	s := Start(t, Options{})
	s.CreateDB("app")
	s.Psql("app", "CREATE TABLE kv (k int PRIMARY KEY, v text)")
	s.Psql("app", "SELECT pg_create_logical_replication_slot('pgtest_slot', 'pgoutput')")
	s.Psql("app", "INSERT INTO kv VALUES (1, 'one'), (2, 'two')")
	if got := s.Psql("app", "SHOW wal_level"); got != "logical" {
		t.Fatalf("wal_level %q", got)
	}
	s.Kill()
	s.Restart()
	if got := s.Psql("app", "SELECT string_agg(v, ',' ORDER BY k) FROM kv"); got != "one,two" {
		t.Fatalf("rows after kill -9 and restart: %q", got)
	}
	if got := s.Psql("app", "SELECT slot_name FROM pg_replication_slots"); !strings.Contains(got, "pgtest_slot") {
		t.Fatalf("slots after restart: %q", got)
	}
}
