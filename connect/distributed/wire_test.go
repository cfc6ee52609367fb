package distributed

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
)

// unhex turns a commented hex listing into bytes: everything after '#' on a
// line is a comment, whitespace is ignored.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	var clean strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		clean.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(clean.String())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The golden listings are written field by field from Kafka's schemas
// (ConnectProtocol.CONFIG_STATE_V0 / ASSIGNMENT_V0,
// IncrementalCooperativeConnectProtocol.ALLOCATION_V1 / ASSIGNMENT_V1):
// INT16/INT32/INT64 big-endian, STRING = INT16 length + bytes, ARRAY =
// INT32 count, NULLABLE_BYTES = INT32 length or -1.
func TestMetadataGolden(t *testing.T) {
	url := "http://h1:8083" // 14 bytes
	tests := []struct {
		name string
		m    Metadata
		want string
	}{
		{"v0", Metadata{Version: V0, URL: url, ConfigOffset: 5}, `
			0000                               # version 0
			000e 687474703a2f2f68313a38303833  # url
			0000000000000005                   # config-offset 5
		`},
		{"v0 drops the allocation", Metadata{Version: V0, URL: url, ConfigOffset: 5,
			Allocation: &Assignment{Assigned: []ID{ConnectorID("a")}}}, `
			0000 000e 687474703a2f2f68313a38303833 0000000000000005
		`},
		{"v1 without allocation", Metadata{Version: V1, URL: url, ConfigOffset: -1}, `
			0001                               # version 1
			000e 687474703a2f2f68313a38303833  # url
			ffffffffffffffff                   # config-offset -1
			ffffffff                           # allocation null
		`},
		{"v2 with allocation", Metadata{Version: V2, URL: url, ConfigOffset: 7, Allocation: &Assignment{
			Version: V1, Leader: "L", LeaderURL: "u", ConfigOffset: 7,
			Assigned: []ID{TaskID("a", 0), ConnectorID("a")},
		}}, `
			0002                               # version 2
			000e 687474703a2f2f68313a38303833  # url
			0000000000000007                   # config-offset 7
			0000002d                           # allocation: 45 bytes, an assignment at the metadata's version
			  0002                             #   version 2
			  0000                             #   error 0
			  0001 4c                          #   leader "L"
			  0001 75                          #   leader-url "u"
			  0000000000000007                 #   config-offset 7
			  00000001                         #   assignment: 1 connector
			    0001 61                        #     "a"
			    00000002 ffffffff 00000000     #     tasks [-1, 0]
			  00000000                         #   revoked: 0 connectors
			  00000000                         #   delay 0
		`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := unhex(t, tt.want)
			got := tt.m.Encode()
			if !bytes.Equal(got, want) {
				t.Fatalf("encode:\n got %x\nwant %x", got, want)
			}
			back, err := DecodeMetadata(want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back.Encode(), want) {
				t.Fatalf("round trip changed the bytes: %x", back.Encode())
			}
		})
	}
}

func TestAssignmentGolden(t *testing.T) {
	tests := []struct {
		name string
		a    Assignment
		want string
	}{
		{"v0", Assignment{Version: V0, Leader: "w1", LeaderURL: "http://w1", ConfigOffset: 3,
			Assigned: []ID{TaskID("b", 1), ConnectorID("a"), TaskID("b", 0)}}, `
			0000                         # version 0
			0000                         # error
			0002 7731                    # leader "w1"
			0009 687474703a2f2f7731      # leader-url "http://w1"
			0000000000000003             # config-offset 3
			00000002                     # 2 connectors
			  0001 61 00000001 ffffffff  #   a: [-1]
			  0001 62 00000002 00000000 00000001 # b: [0, 1]
		`},
		{"v1 with revocations and delay", Assignment{Version: V1, Leader: "w1", LeaderURL: "u", ConfigOffset: 9,
			Assigned: []ID{TaskID("a", 2)}, Revoked: []ID{ConnectorID("b"), TaskID("b", 0)}, Delay: 300000}, `
			0001 0000 0002 7731 0001 75 0000000000000009
			00000001 0001 61 00000001 00000002           # assigned a: [2]
			00000001 0001 62 00000002 ffffffff 00000000  # revoked b: [-1, 0]
			000493e0                                     # delay 300000
		`},
		{"v2 config mismatch", Assignment{Version: V2, Error: ConfigMismatch, Leader: "w1", LeaderURL: "u", ConfigOffset: 12}, `
			0002 0001 0002 7731 0001 75 000000000000000c
			00000000 00000000 00000000
		`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := unhex(t, tt.want)
			got := tt.a.Encode()
			if !bytes.Equal(got, want) {
				t.Fatalf("encode:\n got %x\nwant %x", got, want)
			}
			back, err := DecodeAssignment(want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back.Encode(), want) {
				t.Fatalf("round trip changed the bytes: %x", back.Encode())
			}
		})
	}
}

// Kafka reads v1 assignments and metadata tolerating missing trailing
// fields and null arrays (TOLERATE_MISSING_FIELDS_WITH_DEFAULTS); so must
// we, or a worker of another version could not join.
func TestDecodeTolerant(t *testing.T) {
	a, err := DecodeAssignment(unhex(t, `0001 0000 0001 4c 0001 75 0000000000000001 ffffffff`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Assignment{Version: V1, Leader: "L", LeaderURL: "u", ConfigOffset: 1}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("got %+v want %+v", a, want)
	}
	m, err := DecodeMetadata(unhex(t, `0001 0001 75 0000000000000002`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Allocation != nil || m.URL != "u" || m.ConfigOffset != 2 {
		t.Fatalf("got %+v", m)
	}
	// A newer worker's metadata (version 3, same layout) still parses.
	if _, err := DecodeMetadata(unhex(t, `0003 0001 75 0000000000000002 ffffffff`)); err != nil {
		t.Fatal(err)
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	for _, in := range []string{
		``,
		`0000 0005 6162`,                       // string longer than the buffer
		`0000 0000 0000 0000 0000000000000000`, // v0 assignment without its array
		`0001 0000 0000 0000 0000000000000000 7fffffff`, // huge array count
		`ffff 0000 0000 0000 0000000000000000 00000000`, // negative version
	} {
		if _, err := DecodeAssignment(unhex(t, in)); err == nil {
			t.Errorf("DecodeAssignment(%s): no error", in)
		}
	}
	for _, in := range []string{``, `0001 0003 6162`, `0001 0000 0000000000000000 00000010 0001`} {
		if _, err := DecodeMetadata(unhex(t, in)); err == nil {
			t.Errorf("DecodeMetadata(%s): no error", in)
		}
	}
}

func TestIDString(t *testing.T) {
	if s := TaskID("my-conn", 3).String(); s != "my-conn-3" {
		t.Fatal(s)
	}
	if s := ConnectorID("my-conn").String(); s != "my-conn" {
		t.Fatal(s)
	}
}
