package main

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/data"
)

var recvTime = time.Date(2026, 12, 5, 1, 2, 3, 0, time.UTC)

const peer = "10.1.2.3:51234"

func TestParseMessages(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	for _, tc := range []struct {
		name, msg string
		tz        *time.Location
		want      map[string]any
	}{
		{name: "rfc5424 with structured data",
			msg: `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 1234 ID47 [exampleSDID@32473 iut="3" eventSource="Application"][examplePriority@32473 class="high"] An application event`,
			want: map[string]any{"facility": 20, "severity": 5, "timestamp": "2003-10-11T22:14:15.003Z",
				"hostname": "mymachine.example.com", "app_name": "evntslog", "proc_id": "1234", "msg_id": "ID47",
				"structured_data": map[string]any{
					"exampleSDID@32473":     map[string]any{"iut": "3", "eventSource": "Application"},
					"examplePriority@32473": map[string]any{"class": "high"}},
				"message": "An application event", "format": "rfc5424", "remote_address": peer}},
		{name: "rfc5424 without structured data, nil fields left out",
			msg: `<34>1 2003-10-11T22:14:15.003-07:00 host su - - - 'su root' failed`,
			want: map[string]any{"facility": 4, "severity": 2, "timestamp": "2003-10-11T22:14:15.003-07:00",
				"hostname": "host", "app_name": "su", "message": "'su root' failed", "format": "rfc5424", "remote_address": peer}},
		{name: "rfc3164 with pid, year from the receive time",
			msg: `<13>Dec  4 23:59:58 web01 nginx[812]: GET / 200`,
			want: map[string]any{"facility": 1, "severity": 5, "timestamp": "2026-12-04T23:59:58Z",
				"hostname": "web01", "app_name": "nginx", "proc_id": "812", "message": "GET / 200",
				"format": "rfc3164", "remote_address": peer}},
		{name: "rfc3164 from last december, read in january",
			msg: `<13>Dec 31 23:59:58 web01 cron: tick`,
			want: map[string]any{"facility": 1, "severity": 5, "timestamp": "2026-12-31T23:59:58Z",
				"hostname": "web01", "app_name": "cron", "message": "tick", "format": "rfc3164", "remote_address": peer}},
		{name: "rfc3164 in the configured zone",
			msg: `<13>Dec  4 10:00:00 web01 app: hi`, tz: paris,
			want: map[string]any{"facility": 1, "severity": 5, "timestamp": "2026-12-04T10:00:00+01:00",
				"hostname": "web01", "app_name": "app", "message": "hi", "format": "rfc3164", "remote_address": peer}},
		{name: "rfc3164 with an rfc3339 timestamp keeps its year",
			msg: `<14>2019-03-02T10:11:12Z box app: hello`,
			want: map[string]any{"facility": 1, "severity": 6, "timestamp": "2019-03-02T10:11:12Z",
				"hostname": "box", "app_name": "app", "message": "hello", "format": "rfc3164", "remote_address": peer}},
		{name: "garbage kept raw",
			msg: `hello world, no PRI`,
			want: map[string]any{"message": "hello world, no PRI", "raw": "hello world, no PRI",
				"parse_error": "<any>", "remote_address": peer}},
		{name: "bad structured data kept raw",
			msg: `<34>1 2003-10-11T22:14:15.003Z host app - - [broken msg`,
			want: map[string]any{"message": `<34>1 2003-10-11T22:14:15.003Z host app - - [broken msg`,
				"raw": `<34>1 2003-10-11T22:14:15.003Z host app - - [broken msg`, "parse_error": "<any>", "remote_address": peer}},
		{name: "out of range PRI kept raw",
			msg: `<999>1 2003-10-11T22:14:15Z host app - - - x`,
			want: map[string]any{"message": `<999>1 2003-10-11T22:14:15Z host app - - - x`,
				"raw": `<999>1 2003-10-11T22:14:15Z host app - - - x`, "parse_error": "<any>", "remote_address": peer}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tz := tc.tz
			if tz == nil {
				tz = time.UTC
			}
			recv := recvTime
			if tc.name == "rfc3164 from last december, read in january" {
				recv = time.Date(2027, 1, 1, 0, 0, 5, 0, time.UTC)
			}
			got := newParser(tz, keyNone, formatMap, false).parse([]byte(tc.msg), false, peer, recv)
			if _, wantErr := tc.want["parse_error"]; got.failed != wantErr {
				t.Fatalf("failed=%v, value %v", got.failed, got.value)
			}
			v := got.value.(map[string]any)
			if pe, ok := v["parse_error"].(string); ok && pe != "" && tc.want["parse_error"] == "<any>" {
				tc.want["parse_error"] = pe
			}
			assertValue(t, v, tc.want)
			// syslog.value.format=json gives the same fields, as JSON.
			js := newParser(tz, keyNone, formatJSON, false).parse([]byte(tc.msg), false, peer, recv)
			assertSameJSON(t, js.value.([]byte), v)
			if raw := newParser(tz, keyNone, formatRaw, false).parse([]byte(tc.msg), false, peer, recv); raw.value != tc.msg {
				t.Fatalf("raw value %v", raw.value)
			}
		})
	}
}

// assertValue compares a value with want, where ints stand for int64, and
// checks that it renders as JSON (what JsonConverter does with it).
func assertValue(t *testing.T, got, want map[string]any) {
	t.Helper()
	norm := func(m map[string]any) string {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("%v does not render as JSON: %v", m, err)
		}
		return string(b)
	}
	if norm(got) != norm(want) {
		t.Fatalf("value\n got %s\nwant %s", norm(got), norm(want))
	}
	for k, v := range got {
		if k == "facility" || k == "severity" {
			if _, ok := v.(int64); !ok {
				t.Fatalf("%s is %T, want int64", k, v)
			}
		}
		if data.InferType(v) == "" {
			t.Fatalf("%s: %T has no Connect type", k, v)
		}
	}
}

func TestParseKeepsRawWhenAskedAndMarksTruncation(t *testing.T) {
	msg := `<13>Dec  4 23:59:58 web01 nginx: cut he`
	got := newParser(time.UTC, keyNone, formatMap, true).parse([]byte(msg), true, peer, recvTime)
	v := got.value.(map[string]any)
	if got.failed || v["raw"] != msg || v["truncated"] != true || v["message"] != "cut he" {
		t.Fatalf("value %v", v)
	}
	js := newParser(time.UTC, keyNone, formatJSON, true).parse([]byte(msg), true, peer, recvTime)
	assertSameJSON(t, js.value.([]byte), v)
	v = newParser(time.UTC, keyNone, formatMap, false).parse([]byte(msg), false, peer, recvTime).value.(map[string]any)
	if _, ok := v["raw"]; ok {
		t.Fatalf("raw without syslog.include.raw: %v", v)
	}
	if _, ok := v["truncated"]; ok {
		t.Fatalf("truncated on a whole message: %v", v)
	}
}

func TestParseKeys(t *testing.T) {
	const (
		with5424    = `<34>1 2003-10-11T22:14:15.003Z db7 postgres 99 - - checkpoint`
		without5424 = `<34>1 2003-10-11T22:14:15.003Z - - - - - anonymous`
		with3164    = `<13>Dec  4 23:59:58 web01 nginx[812]: GET /`
		garbage     = `not syslog`
	)
	for _, format := range []valueFormat{formatMap, formatJSON, formatRaw} {
		for _, tc := range []struct {
			mode keyMode
			msg  string
			want any
		}{
			{keyNone, with5424, nil},
			{keyHost, with5424, "db7"},
			{keyApp, with5424, "postgres"},
			{keyHost, with3164, "web01"},
			{keyApp, with3164, "nginx"},
			{keyHost, without5424, "10.1.2.3"}, // no HOSTNAME: the sender's IP
			{keyApp, without5424, nil},
			{keyHost, garbage, "10.1.2.3"},
			{keyApp, garbage, nil},
		} {
			got := newParser(time.UTC, tc.mode, format, false).parse([]byte(tc.msg), false, peer, recvTime)
			if got.key != tc.want {
				t.Errorf("format %d, mode %d, %q: key %v, want %v", format, tc.mode, tc.msg, got.key, tc.want)
			}
		}
	}
}

// assertSameJSON checks that JSON bytes hold what the map holds.
func assertSameJSON(t *testing.T, js []byte, m map[string]any) {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(js, &a); err != nil {
		t.Fatalf("%s is not JSON: %v", js, err)
	}
	mb, _ := json.Marshal(m)
	_ = json.Unmarshal(mb, &b)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("json value\n got %s\nwant %s", js, mb)
	}
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "tab\tnl\ncr\r\x00\x1f\x7f", "é ü 日本", "bad \xff\xfe utf8", "\u2028"} {
		got := appendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q -> %s: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("%q: ours reads back %q, encoding/json's %q", s, back, wantBack)
		}
	}
}
