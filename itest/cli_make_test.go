package itest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeGo writes a "go" that reports version v, as an old or new toolchain
// would, and does nothing else.
func fakeGo(t *testing.T, v string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "go")
	script := "#!/bin/sh\nif [ \"$1\" = env ]; then echo go" + v + "; exit 0; fi\necho go version go" + v + " linux/amd64\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// The Makefile refuses a Go older than go.mod's, or none, before it runs
// anything, saying which version is needed and where the README says how to
// get it; a new enough Go passes.
func TestMakefileChecksGoVersion(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make not on PATH")
	}
	for _, tc := range []struct {
		goBin string
		ok    bool
		want  string
	}{
		{fakeGo(t, "1.19.8"), false, "says 1.19.8, but Sluice needs Go 1."},
		{filepath.Join(t.TempDir(), "missing-go"), false, "no Go found"},
		{fakeGo(t, "1.99.0"), true, ""},
	} {
		out, err := exec.Command("make", "-C", "..", "-n", "build", "GO="+tc.goBin).CombinedOutput()
		if (err == nil) != tc.ok {
			t.Errorf("GO=%s: err %v, want ok=%v:\n%s", tc.goBin, err, tc.ok, out)
		}
		if !tc.ok && (!strings.Contains(string(out), tc.want) || !strings.Contains(string(out), `"Installing Go"`)) {
			t.Errorf("GO=%s: output does not say %q and where to read on:\n%s", tc.goBin, tc.want, out)
		}
	}
}
