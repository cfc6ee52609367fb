package transform

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestJavaDateFormatAgainstJVM formats random instants with the patterns
// users put in TimestampConverter and TimestampRouter configs, and parses
// the results back, comparing with java.text.SimpleDateFormat in UTC.
// Skipped without java.
func TestJavaDateFormatAgainstJVM(t *testing.T) {
	if testing.Short() {
		t.Skip("starting a JVM takes seconds")
	}
	java, err := exec.LookPath("java")
	if err != nil {
		t.Skip("no java here:", err)
	}
	patterns := []string{
		"yyyyMMdd", "yyyy-MM-dd", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
		"yyyy-MM-dd'T'HH:mm:ssZ", "dd/MM/yy hh:mm a", "EEE, d MMM yyyy HH:mm:ss z", "EEEE MMMM dd yyyy", "yyyyMMddHHmmssSSS",
		"D 'day of' yyyy", "k:mm K:mm h 'o''clock'", "yyyy.MM.dd G 'at' HH:mm:ss", "u M/d/yyyy", "MMM d, yyyy h:mm:ss a X",
	}
	type query struct{ line, want string }
	var qs []query
	r := rand.New(rand.NewPCG(3, 4))
	for _, p := range patterns {
		f, err := newJavaDateFormat(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		for range 20 {
			// 1990..2060, where two-digit years resolve the same way in
			// both for the next decades.
			ms := int64(631152000000) + r.Int64N(2208988800000-631152000000)
			text := f.Format(time.UnixMilli(ms))
			qs = append(qs, query{fmt.Sprintf("f\t%s\t%d", p, ms), text})
			want := "ERR"
			if got, err := f.Parse(text); err == nil {
				want = strconv.FormatInt(got.UnixMilli(), 10)
			}
			qs = append(qs, query{fmt.Sprintf("p\t%s\t%s", p, text), want})
		}
	}
	for _, c := range [][2]string{{"yyyy-MM-dd", "2024-02-30"}, {"yyyy-MM-dd", "2024-13-01"}, {"yyyy-MM-dd HH:mm", "2024-01-01 25:61"},
		{"yyyy-MM-dd", "2024-01-01 trailing"}, {"yyyyMMdd", "20240102"}, {"dd MMM yyyy", "01 feb 2024"},
		{"yyyy-MM-dd'T'HH:mm:ssXXX", "2024-01-01T10:00:00+05:30"}, {"yyyy-MM-dd", "not a date"}} {
		want := "ERR"
		f, _ := newJavaDateFormat(c[0])
		if got, err := f.Parse(c[1]); err == nil {
			want = strconv.FormatInt(got.UnixMilli(), 10)
		}
		qs = append(qs, query{fmt.Sprintf("p\t%s\t%s", c[0], c[1]), want})
	}
	var in bytes.Buffer
	for _, q := range qs {
		in.WriteString(q.line + "\n")
	}
	cmd := exec.Command(java, "testdata/JavaDates.java")
	cmd.Stdin = &in
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("java: %v", err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(qs) {
		t.Fatalf("java answered %d lines for %d", len(lines), len(qs))
	}
	for i, q := range qs {
		if lines[i] != q.want {
			t.Errorf("%q: Java %q, Go %q", q.line, lines[i], q.want)
		}
	}
}
