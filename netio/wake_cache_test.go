//go:build linux

package netio

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func fakeWake() WakeReport {
	return WakeReport{Poller: 12345 * time.Nanosecond, Chosen: "coop", Pass: true, RTTErr: nil,
		Modes: []ModeWake{
			{Mode: "defer", Median: 15 * time.Millisecond, Misses: 7},
			{Mode: "defer-block", Err: errors.New("needs GOMAXPROCS >= 2")},
			{Mode: "coop", Median: 20 * time.Microsecond, RTT: 90 * time.Microsecond, RTTStd: 95 * time.Microsecond},
		}}
}

// A kept result is taken only on the same boot, kernel and binary, within
// its age, and comes back as measured, errors included.
func TestWakeCacheKeepsAResultPerBoot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "uring-wake.json")
	key := wakeCacheKey{Version: wakeCacheVersion, BootID: "b1", Kernel: "6.18", GOMAXPROCS: 2, Executable: "/bin/sluice 1 2"}
	now := time.Unix(1_800_000_000, 0)
	if _, ok := loadWake(path, key, now); ok {
		t.Fatal("a result loaded from no file")
	}
	storeWake(path, key, fakeWake(), now)
	got, ok := loadWake(path, key, now.Add(time.Hour))
	if !ok {
		t.Fatal("kept result not loaded")
	}
	want := fakeWake()
	if got.Measured.Unix() != now.Unix() {
		t.Fatalf("measured %v, want %v", got.Measured, now)
	}
	got.Measured = time.Time{}
	if got.String() != want.String() || got.Pass != want.Pass || !reflect.DeepEqual(errText(got.Modes[1].Err), errText(want.Modes[1].Err)) {
		t.Fatalf("kept result\n%s\nwant\n%s", got, want)
	}
	for name, k := range map[string]wakeCacheKey{
		"another boot":   {Version: wakeCacheVersion, BootID: "b2", Kernel: "6.18", GOMAXPROCS: 2, Executable: key.Executable},
		"another kernel": {Version: wakeCacheVersion, BootID: "b1", Kernel: "6.19", GOMAXPROCS: 2, Executable: key.Executable},
		"another binary": {Version: wakeCacheVersion, BootID: "b1", Kernel: "6.18", GOMAXPROCS: 2, Executable: "/bin/sluice 1 3"},
		"other procs":    {Version: wakeCacheVersion, BootID: "b1", Kernel: "6.18", GOMAXPROCS: 4, Executable: key.Executable},
		"older format":   {Version: wakeCacheVersion - 1, BootID: "b1", Kernel: "6.18", GOMAXPROCS: 2, Executable: key.Executable},
	} {
		if _, ok := loadWake(path, k, now); ok {
			t.Errorf("%s: kept result taken", name)
		}
	}
	if _, ok := loadWake(path, key, now.Add(wakeCacheMaxAge+time.Second)); ok {
		t.Error("a result older than the max age taken")
	}
	if _, ok := loadWake(path, key, now.Add(-time.Minute)); ok {
		t.Error("a result from the future taken")
	}
	if err := os.WriteFile(path, []byte(`{"key":`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := loadWake(path, key, now); ok {
		t.Error("a torn file taken")
	}
	if _, ok := loadWake("", key, now); ok {
		t.Error("a result taken with no cache path")
	}
}

// A start on this boot takes the kept result without measuring (the fake
// figures could not come from a measurement), and says so.
func TestWakeTakesTheKeptResult(t *testing.T) {
	path := filepath.Join(t.TempDir(), "uring-wake.json")
	t.Setenv("SLUICE_ENGINE_CACHE", path)
	key, ok := currentWakeKey()
	if !ok {
		t.Skip("no boot id here")
	}
	storeWake(path, key, fakeWake(), time.Now())
	got := keptOrMeasuredWake()
	if got.Poller != 12345*time.Nanosecond || got.Chosen != "coop" || got.Measured.IsZero() {
		t.Fatalf("start took %+v, want the kept fake", got)
	}
	if !strings.Contains(got.String(), "as measured at") {
		t.Fatalf("report %q does not say it was kept", got)
	}
	t.Setenv("SLUICE_ENGINE_CACHE", "off")
	if wakeCachePath() != "" {
		t.Fatal("SLUICE_ENGINE_CACHE=off still names a file")
	}
}
