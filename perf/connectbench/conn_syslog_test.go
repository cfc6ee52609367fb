package main

import (
	"fmt"
	"strings"
	"testing"
)

// syslogMsg is message i as the benchmark has always sent it.
func syslogMsg(i int) string {
	m := fmt.Sprintf(`<165>1 2026-12-05T01:02:03.%03dZ web-%02d nginx 4242 ACCESS [req@32473 id="%d" zone="eu-west-1"] GET /api/v1/items/%d 200 1532 "curl/8.5"`,
		i%1000, i%16, i, i)
	if pad := 200 - len(m); pad > 0 {
		m += " " + strings.Repeat("x", pad-1)
	}
	return m
}

// The sender's messages are byte for byte the fmt-rendered ones, padded
// to 200 bytes until the numbers make them longer.
func TestAppendSyslogMsg(t *testing.T) {
	var b []byte
	for _, i := range []int{0, 1, 9, 15, 16, 99, 999, 1000, 1234, 99_999, 999_999, 1_000_000, 123_456_789_012} {
		b = appendSyslogMsg(b[:0], i)
		if want := syslogMsg(i); string(b) != want {
			t.Fatalf("message %d:\n%s\nwant\n%s", i, b, want)
		}
	}
	if len(appendSyslogMsg(nil, 7)) != 200 {
		t.Error("message 7 is not 200 bytes")
	}
}
