package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// leafCommands walks the table: every command path that takes flags,
// with its spec. broker, engines and version belong to package main and are left
// out of the checks that need Run.
// mainCommands are run by package main, not by Run; cmd/sluice's tests
// check them.
var mainCommands = map[string]bool{"broker": true, "engines": true, "version": true, "help": true}

func leafCommands() map[string]cmdSpec {
	out := map[string]cmdSpec{}
	var visit func(prefix string, cmds []cmdSpec)
	visit = func(prefix string, cmds []cmdSpec) {
		for _, c := range cmds {
			p := strings.TrimSpace(prefix + " " + c.name)
			if c.name == "perf" {
				continue // package perf's; cmd/sluice's tests check it
			}
			if len(c.subs) > 0 {
				visit(p, c.subs)
			} else if !mainCommands[c.name] {
				out[p] = c
			}
		}
	}
	visit("", commandTable)
	return out
}

// helpFlags are the flags a usage text lists in its "flags:" section,
// where every flag line starts with two spaces and the flag.
var helpFlagRE = regexp.MustCompile(`(?m)^  (-{1,2}[a-z][a-z-]*)(?:, (--[a-z][a-z-]*))?`)

func helpFlags(usage string) []string {
	_, section, ok := strings.Cut(usage, "\nflags:\n")
	if !ok {
		return nil
	}
	var out []string
	for _, m := range helpFlagRE.FindAllStringSubmatch(section, -1) {
		out = append(out, m[1])
		if m[2] != "" {
			out = append(out, m[2])
		}
	}
	slices.Sort(out)
	return out
}

// sampleValue is a value each flag's parser accepts.
func sampleValue(f flagSpec) string {
	switch {
	case len(f.values) > 0:
		return f.values[0]
	case f.name == "--timeout":
		return "1s"
	case slices.Contains([]string{"--partitions", "--replication-factor", "--total", "--partition", "--count", "--to-offset", "--shift-by", "--throttle"}, f.name):
		return "1"
	case f.name == "--config" || f.name == "--set" || f.name == "--header":
		return "k=v"
	}
	return "x"
}

// The table must list exactly the flags each command documents, and each
// of them must be one its flag set accepts.
func TestCommandTableMatchesCommands(t *testing.T) {
	for path, spec := range leafCommands() {
		args := strings.Fields(path)
		r := runCLI(append(args, "--help")...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "usage: sluice "+path) {
			t.Errorf("%s --help: exit %d, stdout %q", path, r.code, r.stdout)
			continue
		}
		var table []string
		for _, f := range spec.flags {
			table = append(table, f.name)
			flagArgs := []string{f.name}
			if f.value {
				flagArgs = append(flagArgs, sampleValue(f))
			}
			if r := runCLI(slices.Concat(args, flagArgs, []string{"--help"})...); r.code != 0 {
				t.Errorf("%s does not accept %q: exit %d, stderr %q", path, flagArgs, r.code, r.stderr)
			}
		}
		slices.Sort(table)
		if got := helpFlags(r.stdout); !slices.Equal(got, table) {
			t.Errorf("%s: --help lists %q, the completion table %q", path, got, table)
		}
	}
	// Every top-level command of the table is known to "sluice help" (cli's
	// or main's).
	r := runCLI("help")
	for _, c := range commandTable {
		if !mainCommands[c.name] && c.name != "perf" && !strings.Contains(r.stdout, "\n  "+c.name+" ") {
			t.Errorf("usage does not mention %q:\n%s", c.name, r.stdout)
		}
	}
}

// Scripts single-quote the table's words without escaping them.
func TestCommandTableWordsArePlain(t *testing.T) {
	plain := regexp.MustCompile(`^-{0,2}[A-Za-z0-9][A-Za-z0-9.-]*$`)
	e := flatten(commandTable)
	var words []string
	for _, ws := range e.words {
		words = append(words, ws...)
	}
	for _, fs := range e.flags {
		words = append(words, fs...)
	}
	for _, v := range e.values {
		words = append(words, strings.Fields(v[2])...)
	}
	for _, w := range words {
		if !plain.MatchString(w) {
			t.Errorf("%q is not a plain word", w)
		}
	}
}

func TestCompletionCommand(t *testing.T) {
	for _, shell := range completionShells {
		r := runCLI("completion", shell)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("%s: exit %d, stderr %q", shell, r.code, r.stderr)
		}
		for path, spec := range leafCommands() {
			words := strings.Fields(path)
			for _, f := range spec.flags {
				words = append(words, f.name)
			}
			for _, w := range words {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("%s script lacks %q", shell, w)
				}
			}
		}
		if _, err := exec.LookPath(shell); err == nil {
			file := filepath.Join(t.TempDir(), "sluice."+shell)
			if err := os.WriteFile(file, []byte(r.stdout), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(shell, "-n", file).CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", shell, err, out)
			}
		}
	}
	if !strings.HasPrefix(runCLI("completion", "zsh").stdout, "#compdef sluice\n") {
		t.Error("zsh script does not start with #compdef")
	}
	for _, args := range [][]string{{"completion"}, {"completion", "powershell"}, {"completion", "bash", "zsh"}} {
		if r := runCLI(args...); r.code != exitUsage || !strings.Contains(r.stderr, "usage: sluice completion") {
			t.Errorf("%q: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
}

// completionCases are command lines (the last word is being completed)
// and what every shell must offer, sorted.
var completionCases = []struct {
	line string
	want string
}{
	{"sluice ", "broker cluster completion connect consume engines group help partitions perf produce topic version"},
	{"sluice connect st", "status stop"},
	{"sluice gr", "group"},
	{"sluice group ", "delete delete-offsets describe list reset-offsets"},
	{"sluice group reset-offsets g --to", "--to-datetime --to-earliest --to-latest --to-offset --topic"},
	{"sluice produce t --brokers x --comp", "--compression"},
	{"sluice produce t --acks ", "0 1 all"},
	{"sluice consume t --from ", "earliest latest"},
	{"sluice consume t -e --f", "--format --from"},
	{"sluice completion ", "bash fish zsh"},
	{"sluice completion bash ", ""},
	{"sluice topic create x --brokers ", ""}, // a value nobody can guess
	{"sluice broker --engine u", "uring"},
	{"sluice cluster info --j", "--json"},
	{"sluice partitions ", "elect-leaders reassign"},
	{"sluice partitions elect-leaders --election-type ", "preferred unclean"},
	{"sluice partitions reassign --ver", "--verify"},
	{"sluice topic describe --un", "--unavailable-partitions --under-min-isr-partitions --under-replicated-partitions"},
}

// runShell runs script in shell and returns its output, skipping the
// test when the shell is not installed.
func runShell(t *testing.T, shell, script string) string {
	t.Helper()
	if _, err := exec.LookPath(shell); err != nil {
		t.Skipf("%s is not installed", shell)
	}
	gen := filepath.Join(t.TempDir(), "sluice."+shell)
	if err := os.WriteFile(gen, []byte(completionScript(shell, commandTable)), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-c", strings.ReplaceAll(script, "GENERATED", gen)}
	if shell == "zsh" {
		args = append([]string{"-f"}, args...)
	}
	out, err := exec.Command(shell, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", shell, err, out)
	}
	return string(out)
}

func checkCompletions(t *testing.T, shell, out string) {
	t.Helper()
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(got) != len(completionCases) {
		t.Fatalf("%s printed %d lines for %d cases:\n%s", shell, len(got), len(completionCases), out)
	}
	for i, tc := range completionCases {
		words := strings.Fields(got[i])
		slices.Sort(words)
		if g := strings.Join(words, " "); g != tc.want {
			t.Errorf("%s: %q completes to %q, want %q", shell, tc.line, g, tc.want)
		}
	}
}

// Each shell's script is loaded in the real shell and asked to complete
// the cases.
func TestCompletionInBash(t *testing.T) {
	var script strings.Builder
	script.WriteString("source GENERATED\n")
	for _, tc := range completionCases {
		script.WriteString("COMP_WORDS=(" + quoteWords(tc.line) + "); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _sluice; echo \"${COMPREPLY[*]}\"\n")
	}
	checkCompletions(t, "bash", runShell(t, "bash", script.String()))
}

func TestCompletionInZsh(t *testing.T) {
	// compadd only works inside zsh's completion system; a stand-in that
	// prints its arguments and filters by prefix, as compadd does, runs
	// the function as the completion system would.
	var script strings.Builder
	script.WriteString("compdef() { :; }\nsource GENERATED\n")
	script.WriteString("compadd() { [[ $1 == -- ]] && shift; local w out=(); for w in \"$@\"; do [[ $w == ${words[CURRENT]}* ]] && out+=($w); done; print -r -- \"${out[*]}\"; }\n")
	script.WriteString("_files() { print -r -- FILES; }\n")
	for _, tc := range completionCases {
		script.WriteString("words=(" + quoteWords(tc.line) + "); CURRENT=${#words}; out=$(_sluice); print -r -- \"$out\"\n")
	}
	checkCompletions(t, "zsh", runShell(t, "zsh", script.String()))
}

func TestCompletionInFish(t *testing.T) {
	var script strings.Builder
	script.WriteString("source GENERATED\n")
	for _, tc := range completionCases {
		script.WriteString("echo (string join -- ' ' (complete -C '" + tc.line + "'))\n")
	}
	checkCompletions(t, "fish", runShell(t, "fish", script.String()))
}

// quoteWords turns a command line into shell array elements, keeping a
// trailing empty word for "complete after the space".
func quoteWords(line string) string {
	words := strings.Split(line, " ")
	for i, w := range words {
		words[i] = "'" + w + "'"
	}
	return strings.Join(words, " ")
}
