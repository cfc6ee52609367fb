package tail

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

func assemble(a *Assembler, now time.Time, lines ...string) []string {
	var evs []Event
	var pos int64
	for _, l := range lines {
		pos += int64(len(l)) + 1
		evs = a.Add(evs, Line{Text: l, End: pos}, now)
	}
	var out []string
	for _, e := range evs {
		out = append(out, fmt.Sprintf("%s@%d", strings.ReplaceAll(e.Text, "\n", "|"), e.End))
	}
	return out
}

func TestMultilineModes(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name, start, cond string
		mode              Mode
		lines             []string
		want              string // events completed; the rest is pending
	}{
		{"continue_through: a Java stack trace", `^\S`, `^\s`, ContinueThrough,
			[]string{"Exception", "  at a", "  at b", "next", "  at c", "last"},
			"Exception|  at a|  at b@24 next|  at c@36"},
		{"continue_past: backslash continuations", `\\$`, `\\$`, ContinuePast,
			[]string{"one", `two \`, `three \`, "four", "five"},
			`one@4 two \|three \|four@23 five@28`},
		{"halt_before: an event per timestamped line", `^\d`, `^\d`, HaltBefore,
			[]string{"1 a", "x", "2 b", "3 c", "y"},
			"1 a|x@6 2 b@10"},
		{"halt_with: an event ends on a semicolon", `^`, `;$`, HaltWith,
			[]string{"select", "1;", "x;", "y"},
			"select|1;@10 x;@13"},
		{"no start pattern: lines pass alone", `^BEGIN`, `^\s`, ContinueThrough,
			[]string{"a", "b"}, "a@2 b@4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAssembler(Multiline{Start: regexp.MustCompile(tc.start), Condition: regexp.MustCompile(tc.cond), Mode: tc.mode})
			if got := strings.Join(assemble(a, t0, tc.lines...), " "); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestMultilineTimeoutFlushesThePendingEvent(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := NewAssembler(Multiline{Start: regexp.MustCompile(`^\S`), Condition: regexp.MustCompile(`^\s`), Mode: ContinueThrough, Timeout: time.Second})
	if got := assemble(a, t0, "Exception", "  at a"); len(got) != 0 {
		t.Fatalf("events before the end: %v", got)
	}
	if d := a.Due(); !d.Equal(t0.Add(time.Second)) {
		t.Fatalf("due %v, want a second after the last line", d)
	}
	if evs := a.Tick(nil, t0.Add(999*time.Millisecond)); len(evs) != 0 {
		t.Fatalf("flushed before the timeout: %v", evs)
	}
	// A continuation line pushes the timeout back.
	a.Add(nil, Line{Text: "  at b", End: 24}, t0.Add(500*time.Millisecond))
	if evs := a.Tick(nil, t0.Add(time.Second)); len(evs) != 0 {
		t.Fatalf("flushed although a line came 0.5 s ago: %v", evs)
	}
	evs := a.Tick(nil, t0.Add(1500*time.Millisecond))
	if len(evs) != 1 || evs[0].Text != "Exception\n  at a\n  at b" || evs[0].End != 24 || evs[0].Lines != 3 {
		t.Fatalf("timed out event: %+v", evs)
	}
	if !a.Due().IsZero() {
		t.Fatal("still due after the flush")
	}
}

func TestMultilineMaxBytesFlushes(t *testing.T) {
	a := NewAssembler(Multiline{Start: regexp.MustCompile(`^\S`), Condition: regexp.MustCompile(`^\s`), Mode: ContinueThrough, MaxBytes: 10})
	got := assemble(a, time.Unix(0, 0), "abc", " defgh", " i")
	if strings.Join(got, " ") != "abc| defgh@11  i@14" {
		t.Fatalf("got %v", got)
	}
}

func TestParseMode(t *testing.T) {
	for _, s := range []string{"continue_through", "continue_past", "halt_before", "halt_with"} {
		if _, err := ParseMode(s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ParseMode("continue"); err == nil {
		t.Fatal("a bad mode parsed")
	}
}
