package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func testRecord() *kgo.Record {
	return &kgo.Record{
		Topic:     "orders",
		Partition: 2,
		Offset:    41,
		Timestamp: time.UnixMilli(1714564800123),
		Key:       []byte("k-1"),
		Value:     []byte("hello world"),
		Headers:   []kgo.RecordHeader{{Key: "trace", Value: []byte("abc")}, {Key: "n", Value: []byte("=1")}},
	}
}

func TestFormatEveryToken(t *testing.T) {
	r := testRecord()
	for _, tc := range []struct{ format, want string }{
		{`%t`, "orders"},
		{`%p`, "2"},
		{`%o`, "41"},
		{`%k`, "k-1"},
		{`%s`, "hello world"},
		{`%T`, "1714564800123"},
		{`%h`, "trace=abc,n==1"},
		{`%K`, "3"},
		{`%S`, "11"},
		{`%%`, "%"},
		{`\n\t\r\\`, "\n\t\r\\"},
		{`%t/%p@%o %k=%s (%K/%S) [%h] %T\n`, "orders/2@41 k-1=hello world (3/11) [trace=abc,n==1] 1714564800123\n"},
		{`plain`, "plain"},
		{``, ""},
		{`100%% %s`, "100% hello world"},
	} {
		f, err := compileFormat(tc.format)
		if err != nil {
			t.Errorf("%q: %v", tc.format, err)
			continue
		}
		if got := string(f.appendRecord(nil, r)); got != tc.want {
			t.Errorf("%q rendered %q, want %q", tc.format, got, tc.want)
		}
	}

	// Null key and value print as nothing with length -1; an empty one is
	// length 0. Without headers %h is empty.
	null := &kgo.Record{Topic: "t", Timestamp: time.UnixMilli(0)}
	empty := &kgo.Record{Topic: "t", Key: []byte{}, Value: []byte{}, Timestamp: time.UnixMilli(0)}
	f, _ := compileFormat(`[%k][%s][%K][%S][%h]`)
	if got := string(f.appendRecord(nil, null)); got != "[][][-1][-1][]" {
		t.Errorf("null record: %q", got)
	}
	if got := string(f.appendRecord(nil, empty)); got != "[][][0][0][]" {
		t.Errorf("empty record: %q", got)
	}
}

func TestFormatErrors(t *testing.T) {
	for _, tc := range []struct{ format, want string }{
		{`%x`, "unknown token %x"},
		{`abc%`, "lone %"},
		{`abc\`, `lone \`},
		{`\q`, `unknown escape \q`},
	} {
		if _, err := compileFormat(tc.format); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.format, err, tc.want)
		}
	}
}

func TestJSONRecordShape(t *testing.T) {
	var buf bytes.Buffer
	rw := newRecordWriter(&buf, nil, true)
	r := testRecord()
	r.Value = []byte(`<a & b>`)
	if err := rw.write(r); err != nil {
		t.Fatal(err)
	}
	if err := rw.write(&kgo.Record{Topic: "t", Partition: 0, Offset: 7, Timestamp: time.UnixMilli(5)}); err != nil {
		t.Fatal(err)
	}
	want := `{"topic":"orders","partition":2,"offset":41,"timestamp":1714564800123,"key":"k-1","value":"<a & b>","headers":[{"key":"trace","value":"abc"},{"key":"n","value":"=1"}]}` + "\n" +
		`{"topic":"t","partition":0,"offset":7,"timestamp":5,"key":null,"value":null,"headers":[]}` + "\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestParseTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"@1714564800123", 1714564800123},
		{"@0", 0},
		{"2024-05-01T12:00:00Z", 1714564800000},
		{"2024-05-01T12:00:00.123Z", 1714564800123},
		{"2024-05-01T14:00:00+02:00", 1714564800000},
	} {
		got, err := parseTime(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%q: %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"@", "@-5", "@x", "2024-05-01", "yesterday", "1969-12-31T23:59:59Z"} {
		if _, err := parseTime(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseFromAndPosition(t *testing.T) {
	b := bounds{start: 10, end: 20}
	for _, tc := range []struct {
		from   string
		byTime int64
		want   int64
	}{
		{"earliest", 0, 10},
		{"beginning", 0, 10},
		{"latest", 0, 20},
		{"end", 0, 20},
		{"15", 0, 15},
		{"3", 0, 10},   // before the log start: clamped up
		{"99", 0, 20},  // past the end: clamped down
		{"-4", 0, 16},  // four before the end
		{"-50", 0, 10}, // further back than the log goes
		{"@1714564800000", 13, 13},
		{"2024-05-01T12:00:00Z", 20, 20}, // nothing at or after: the end
	} {
		s, err := parseFrom(tc.from)
		if err != nil {
			t.Errorf("%q: %v", tc.from, err)
			continue
		}
		if got := s.position(b, tc.byTime); got != tc.want {
			t.Errorf("%q: position %d, want %d", tc.from, got, tc.want)
		}
	}
	if s, _ := parseFrom("@1714564800000"); s.kind != "time" || s.n != 1714564800000 {
		t.Errorf("@ms parsed as %+v", s)
	}
	for _, bad := range []string{"", "soon", "1.5", "@abc"} {
		if _, err := parseFrom(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestResetComputations(t *testing.T) {
	tp := topicPart{"orders", 1}
	b := bounds{start: 5, end: 50}
	committed := ptr(int64(30))
	for _, tc := range []struct {
		m         resetMethod
		committed *int64
		byTime    int64
		want      int64
		wantErr   string
	}{
		{m: resetMethod{kind: "earliest"}, committed: committed, want: 5},
		{m: resetMethod{kind: "latest"}, committed: committed, want: 50},
		{m: resetMethod{kind: "offset", n: 12}, want: 12},
		{m: resetMethod{kind: "offset", n: 0}, want: 5},    // below the log start
		{m: resetMethod{kind: "offset", n: 500}, want: 50}, // past the end
		{m: resetMethod{kind: "datetime"}, byTime: 42, want: 42},
		{m: resetMethod{kind: "shift", n: -10}, committed: committed, want: 20},
		{m: resetMethod{kind: "shift", n: 15}, committed: committed, want: 45},
		{m: resetMethod{kind: "shift", n: -100}, committed: committed, want: 5},
		{m: resetMethod{kind: "shift", n: 100}, committed: committed, want: 50},
		{m: resetMethod{kind: "shift", n: 1}, wantErr: "cannot shift orders/1: the group has no committed offset there"},
	} {
		got, err := tc.m.newOffset(tp, tc.committed, b, tc.byTime)
		switch {
		case tc.wantErr != "":
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%+v: err %v, want %q", tc.m, err, tc.wantErr)
			}
		case err != nil || got != tc.want:
			t.Errorf("%+v from %v: %d, %v; want %d", tc.m, tc.committed, got, err, tc.want)
		}
	}
}

func TestTopicSpecFlag(t *testing.T) {
	var f topicSpecFlag
	for _, v := range []string{"a:0,2", "b", "a:5", "c:1", "c"} {
		if err := f.Set(v); err != nil {
			t.Fatalf("%q: %v", v, err)
		}
	}
	if f.String() != "a,b,c" {
		t.Errorf("order %q", f.String())
	}
	if got := f.parts["a"]; len(got) != 3 || got[0] != 0 || got[1] != 2 || got[2] != 5 {
		t.Errorf("a = %v, want [0 2 5]", got)
	}
	if f.parts["b"] != nil || f.parts["c"] != nil {
		t.Errorf("bare topics must mean every partition: b %v, c %v", f.parts["b"], f.parts["c"])
	}
	for _, bad := range []string{":1", "a:", "a:x", "a:-1", "a:1,,2"} {
		var g topicSpecFlag
		if err := g.Set(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestHeaderFlag(t *testing.T) {
	var h headerFlag
	for _, v := range []string{"a=1", "b=x=y", "a=2", "empty="} {
		if err := h.Set(v); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"a=1", "b=x=y", "a=2", "empty="}
	for i, hd := range h {
		if got := hd.Key + "=" + string(hd.Value); got != want[i] {
			t.Errorf("header %d = %q, want %q", i, got, want[i])
		}
	}
	for _, bad := range []string{"novalue", "=v"} {
		if err := h.Set(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}
