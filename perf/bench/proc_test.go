package main

import (
	"math"
	"os"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// A command name with spaces and a ')' must not shift the fields.
	stat := "4242 (sluice (x) y) S 1 4242 4242 0 -1 4194560 1200 0 0 0 250 75 0 0 20 0 12 0 100 2000000 5000 18446744073709551615\n"
	got, err := parseStatCPU([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if want := 3.25; math.Abs(got-want) > 1e-9 { // (250+75) ticks at 100 Hz
		t.Fatalf("cpu = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "12 (x) S 1 2", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 1 0"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q) succeeded", bad)
		}
	}
}

func TestParseStatusRSS(t *testing.T) {
	status := "Name:\tsluice\nVmPeak:\t 900000 kB\nVmRSS:\t  123456 kB\nThreads:\t12\n"
	got, err := parseStatusRSS([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	if got != 123456*1024 {
		t.Fatalf("rss = %d, want %d", got, 123456*1024)
	}
	if _, err := parseStatusRSS([]byte("Name:\tzombie\nState:\tZ\n")); err == nil {
		t.Error("status without VmRSS parsed")
	}
	if _, err := parseStatusRSS([]byte("VmRSS:\t12 MB\n")); err == nil {
		t.Error("VmRSS in an unknown unit parsed")
	}
}

// The harness reads its own /proc files the same way as a peer's.
func TestReadOwnProc(t *testing.T) {
	cpu, err := readProcCPU(os.Getpid())
	if err != nil || cpu < 0 {
		t.Fatalf("own cpu = %v, %v", cpu, err)
	}
	rss, err := readProcRSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Fatalf("own rss = %d, %v; a Go test binary holds more than 1 MiB", rss, err)
	}
}

func TestCPUBetweenInterpolates(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := []procSample{
		{at: t0, cpu: 10},
		{at: t0.Add(time.Second), cpu: 11}, // 1 CPU-second per second
		{at: t0.Add(2 * time.Second), cpu: 11.5},
	}
	for _, c := range []struct {
		from, to time.Duration
		want     float64
	}{
		{0, 2 * time.Second, 1.5},
		{500 * time.Millisecond, 1500 * time.Millisecond, 0.5 + 0.25},
		{-time.Second, 500 * time.Millisecond, 0.5}, // clamped to the first sample
		{1500 * time.Millisecond, 9 * time.Second, 0.25},
		{time.Second, time.Second, 0},
	} {
		got := cpuBetween(s, t0.Add(c.from), t0.Add(c.to))
		if math.Abs(got-c.want) > 1e-9 {
			t.Errorf("cpuBetween(%v, %v) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
	if got := cpuBetween(nil, t0, t0.Add(time.Second)); got != 0 {
		t.Errorf("no samples: %v", got)
	}
	if got := peakRSS([]procSample{{rss: 5}, {rss: 9}, {rss: 7}}); got != 9 {
		t.Errorf("peakRSS = %d, want 9", got)
	}
}

func TestParseIperf(t *testing.T) {
	got, err := parseIperf([]byte(`{"start":{},"end":{"sum_sent":{"bits_per_second":9e10},"sum_received":{"bits_per_second":8e10}}}`))
	if err != nil || got != 1e4 {
		t.Fatalf("parseIperf = %v, %v; want 10000 MB/s", got, err)
	}
	if _, err := parseIperf([]byte(`{"error":"unable to connect to server"}`)); err == nil {
		t.Error("iperf3 error accepted")
	}
}

func TestTCPListening(t *testing.T) {
	text := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1451 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1
   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
`
	for port, want := range map[int]bool{5201: true, 8080: false, 22: false, 1: false} {
		// 8080 is only an established connection, 22 listens on 0.0.0.0.
		if got := tcpListening(text, port); got != want {
			t.Errorf("tcpListening(%d) = %v, want %v", port, got, want)
		}
	}
}

func TestGoModVersions(t *testing.T) {
	m := goModVersions("module x\n\ngo 1.26\n\nrequire (\n\tgithub.com/twmb/franz-go v1.22.2\n\tgithub.com/nats-io/nats.go v1.55.0 // indirect\n)\n\nrequire golang.org/x/sys v0.49.0\n")
	for mod, want := range map[string]string{
		"github.com/twmb/franz-go": "v1.22.2", "github.com/nats-io/nats.go": "v1.55.0", "golang.org/x/sys": "v0.49.0",
	} {
		if m[mod] != want {
			t.Errorf("%s = %q, want %q", mod, m[mod], want)
		}
	}
}
