package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/sluice-io/sluice/netio"
)

// `sluice engines` says which engines run here, with the io_uring wake-up
// figures, and which one auto picks, consistently with netio.NewEngine.
func TestEnginesReport(t *testing.T) {
	var out bytes.Buffer
	if code := runEngines(&out); code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || lines[0] != "std: available" {
		t.Fatalf("output:\n%s", out.String())
	}
	_, chosen, err := netio.NewEngine(netio.Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "auto: " + chosen; lines[2] != want {
		t.Errorf("last line %q, but NewEngine(auto) chose %q", lines[2], chosen)
	}
	if netio.UringSupported() != nil {
		if !strings.HasPrefix(lines[1], "uring: unavailable: ") {
			t.Errorf("uring line %q", lines[1])
		}
		return
	}
	// The figures are there: the poller's and one per ring mode.
	re := regexp.MustCompile(`^uring: available; wake-up self-test: Go poller [0-9.]+[µm]?s, defer .*coop .*plain .*; rings use (defer|defer-block|coop|plain) \((pass|fail)\)$`)
	if !re.MatchString(lines[1]) {
		t.Errorf("uring line %q does not match %v", lines[1], re)
	}
}
