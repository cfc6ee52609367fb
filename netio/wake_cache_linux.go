//go:build linux

package netio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// The wake-up self-test takes 1-3 s of a broker's start (rings and engines
// set up, sequential round trips in rounds), and a broker restarted after
// a crash is not ready until it ends. What it measures is the kernel's
// wake-up path, which cannot change without a reboot, so its result is
// kept per boot: a start on the same boot, kernel, CPU count and
// executable takes the kept result instead of measuring again. `sluice
// engines` always measures, and keeps what it measured.
//
// The file is $SLUICE_ENGINE_CACHE, or uring-wake.json in the user's cache
// directory (os.UserCacheDir()/sluice); SLUICE_ENGINE_CACHE=off keeps
// nothing. A result older than wakeCacheMaxAge is measured again (load
// during one measurement should not decide for ever), and a file that
// cannot be read, parsed or written only costs the measurement.

const (
	wakeCacheVersion = 1
	wakeCacheMaxAge  = 24 * time.Hour
)

// wakeCacheKey is what must match for a kept result to apply.
type wakeCacheKey struct {
	Version    int    `json:"version"`
	BootID     string `json:"boot_id"`
	Kernel     string `json:"kernel"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	// Executable is the binary's path, size and modification time: a new
	// build may test differently.
	Executable string `json:"executable"`
}

type wakeCacheFile struct {
	Key      wakeCacheKey `json:"key"`
	Measured time.Time    `json:"measured"`
	Report   wakeJSON     `json:"report"`
}

// wakeJSON is WakeReport with its errors as text.
type wakeJSON struct {
	Poller time.Duration  `json:"poller"`
	Modes  []modeWakeJSON `json:"modes"`
	Chosen string         `json:"chosen"`
	RTTErr string         `json:"rtt_err,omitempty"`
	Pass   bool           `json:"pass"`
}

type modeWakeJSON struct {
	Mode   string        `json:"mode"`
	Median time.Duration `json:"median"`
	Misses int           `json:"misses"`
	Err    string        `json:"err,omitempty"`
	RTT    time.Duration `json:"rtt"`
	RTTStd time.Duration `json:"rtt_std"`
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func textErr(s string) error {
	if s == "" {
		return nil
	}
	return errors.New(s)
}

func toJSON(w WakeReport) wakeJSON {
	j := wakeJSON{Poller: w.Poller, Chosen: w.Chosen, RTTErr: errText(w.RTTErr), Pass: w.Pass}
	for _, m := range w.Modes {
		j.Modes = append(j.Modes, modeWakeJSON{Mode: m.Mode, Median: m.Median, Misses: m.Misses, Err: errText(m.Err), RTT: m.RTT, RTTStd: m.RTTStd})
	}
	return j
}

func fromJSON(j wakeJSON) WakeReport {
	w := WakeReport{Poller: j.Poller, Chosen: j.Chosen, RTTErr: textErr(j.RTTErr), Pass: j.Pass}
	for _, m := range j.Modes {
		w.Modes = append(w.Modes, ModeWake{Mode: m.Mode, Median: m.Median, Misses: m.Misses, Err: textErr(m.Err), RTT: m.RTT, RTTStd: m.RTTStd})
	}
	return w
}

// wakeCachePath is where the result is kept, "" for nowhere.
func wakeCachePath() string {
	switch p := os.Getenv("SLUICE_ENGINE_CACHE"); p {
	case "off":
		return ""
	case "":
	default:
		return p
	}
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "sluice", "uring-wake.json")
}

// currentWakeKey describes this boot, kernel and binary; ok is false when
// any of it cannot be told, and nothing is then kept or taken.
func currentWakeKey() (wakeCacheKey, bool) {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil || len(bytes.TrimSpace(boot)) == 0 {
		return wakeCacheKey{}, false
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return wakeCacheKey{}, false
	}
	exe, err := os.Executable()
	if err != nil {
		return wakeCacheKey{}, false
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return wakeCacheKey{}, false
	}
	return wakeCacheKey{
		Version:    wakeCacheVersion,
		BootID:     string(bytes.TrimSpace(boot)),
		Kernel:     unix.ByteSliceToString(u.Release[:]) + " " + unix.ByteSliceToString(u.Version[:]),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		Executable: fmt.Sprintf("%s %d %d", exe, fi.Size(), fi.ModTime().UnixNano()),
	}, true
}

// loadWake returns the kept result for key at path, if it applies now.
func loadWake(path string, key wakeCacheKey, now time.Time) (WakeReport, bool) {
	if path == "" {
		return WakeReport{}, false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return WakeReport{}, false
	}
	var f wakeCacheFile
	if json.Unmarshal(b, &f) != nil || f.Key != key || now.Sub(f.Measured) > wakeCacheMaxAge || now.Before(f.Measured) {
		return WakeReport{}, false
	}
	w := fromJSON(f.Report)
	w.Measured = f.Measured
	return w, true
}

// storeWake keeps w for key at path: written aside and renamed, so a
// concurrent start reads the old file or the new one, never half.
func storeWake(path string, key wakeCacheKey, w WakeReport, now time.Time) {
	if path == "" {
		return
	}
	b, err := json.Marshal(wakeCacheFile{Key: key, Measured: now, Report: toJSON(w)})
	if err != nil {
		return
	}
	if os.MkdirAll(filepath.Dir(path), 0o755) != nil {
		return
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".uring-wake-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), path) != nil {
		_ = os.Remove(tmp.Name())
	}
}

// keptOrMeasuredWake is the self-test's result for this boot: the kept
// one if it applies, else a fresh measurement, which is then kept.
func keptOrMeasuredWake() WakeReport {
	path := wakeCachePath()
	key, ok := currentWakeKey()
	if !ok {
		return runWakeSelfTest()
	}
	if w, ok := loadWake(path, key, time.Now()); ok {
		return w
	}
	return measureAndKeepWake(path, key)
}

func measureAndKeepWake(path string, key wakeCacheKey) WakeReport {
	w := runWakeSelfTest()
	storeWake(path, key, w, time.Now())
	return w
}

// UringWakeMeasure runs the wake-up self-test now, whatever is kept, and
// keeps its result for later starts on this boot: `sluice engines`.
func UringWakeMeasure() WakeReport {
	path := wakeCachePath()
	key, ok := currentWakeKey()
	if !ok {
		return runWakeSelfTest()
	}
	return measureAndKeepWake(path, key)
}
