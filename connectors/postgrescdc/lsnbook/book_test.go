package lsnbook

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestScripts runs the scenarios in testdata/*.txt. Each line is a command
// on one book; "flush N" asserts what may be acknowledged, "covers C L
// yes|no" asserts the skip rule of the position given by "pos R C".
//
//	start R C        a book resumed at position {R, C}
//	begin C          a transaction committing at C starts
//	queue R C        a record with position {R, C} is queued
//	commit C E       the transaction commits at C, ending at E
//	keepalive W      a keepalive with server WAL end W
//	durable R C      Sluice committed everything up to position {R, C}
//	flush N          Flush() must be N
//	idle yes|no      Idle() must say so
func TestScripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.txt")
	if len(files) == 0 {
		t.Fatal("no scripts")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runScript(t, f) })
	}
}

func runScript(t *testing.T, path string) {
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var b *Book
	var pos Pos
	sc := bufio.NewScanner(fh)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		num := func(i int) uint64 {
			v, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				t.Fatalf("%s:%d: %q: %v", path, n, line, err)
			}
			return v
		}
		if b == nil && f[0] != "start" && f[0] != "pos" {
			t.Fatalf("%s:%d: start first", path, n)
		}
		switch f[0] {
		case "start":
			b = New(Pos{num(1), num(2)})
		case "begin":
			b.Begin(num(1))
		case "queue":
			b.Queued(Pos{num(1), num(2)})
		case "commit":
			b.Commit(num(1), num(2))
		case "keepalive":
			b.Keepalive(num(1))
		case "durable":
			b.Durable(Pos{num(1), num(2)})
		case "flush":
			if got := b.Flush(); got != num(1) {
				t.Fatalf("%s:%d: flush = %d, want %d", path, n, got, num(1))
			}
		case "idle":
			if got := b.Idle(); got != (f[1] == "yes") {
				t.Fatalf("%s:%d: idle = %v, want %s", path, n, got, f[1])
			}
		case "pos":
			pos = Pos{num(1), num(2)}
		case "covers":
			if got := pos.Covers(num(1), num(2)); got != (f[3] == "yes") {
				t.Fatalf("%s:%d: %+v covers(%s, %s) = %v, want %s", path, n, pos, f[1], f[2], got, f[3])
			}
		default:
			t.Fatalf("%s:%d: unknown command %q", path, n, f[0])
		}
	}
}
