package cli

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

// Flag errors show the flag as it was typed, whatever the flag package
// wrote.
func TestFlagErrorShowsFlagAsTyped(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--jsn"}, "unknown flag --jsn"},
		{[]string{"-jsn"}, "unknown flag -jsn"},
		{[]string{"x", "--nope=1"}, "unknown flag --nope"},
		{[]string{"--timeout"}, "flag needs an argument: --timeout"},
		{[]string{"--timeout", "soon"}, `invalid value "soon" for flag --timeout: parse error`},
		{[]string{"--json=maybe"}, `invalid boolean value "maybe" for --json: parse error`},
	} {
		fs, _ := newFlagSet("test")
		_, err := parseArgs(fs, tc.args)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: got %v, want %q", tc.args, err, tc.want)
		}
	}
	fs := flag.NewFlagSet("h", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if err := FlagError(fs.Parse([]string{"--help"}), []string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("help became %v", err)
	}
	// Through a whole command: the message and the usage, exit 2.
	r := runCLI("topic", "list", "--jsn")
	if r.code != exitUsage || !strings.HasPrefix(r.stderr, "sluice: unknown flag --jsn\n") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}
