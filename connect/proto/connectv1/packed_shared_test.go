package connectv1_test

import (
	"reflect"
	"testing"
	"unsafe"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

// UnpackShared decodes what Unpack does, with text values in the
// buffer's own memory rather than in a copy of it.
func TestUnpackShared(t *testing.T) {
	recs := []*data.Record{
		{Topic: "t", Partition: 1, Key: []byte("k"), ValueSchema: data.StringSchema, Value: "line one",
			Headers: []data.Header{{Key: "file", Schema: data.StringSchema, Value: "/var/log/a.log"}}},
		{Topic: "t", Partition: 1, Value: "line two", Headers: []data.Header{{Key: "file", Schema: data.StringSchema, Value: "/var/log/a.log"}}},
	}
	buf, err := connectv1.AppendPackedVersion(nil, recs, connectv1.PackedNewestVersion)
	if err != nil {
		t.Fatal(err)
	}
	want, err := connectv1.Unpack(append([]byte(nil), buf...))
	if err != nil {
		t.Fatal(err)
	}
	got, err := connectv1.UnpackShared(buf)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("record %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	v := got[0].Value.(string)
	start, p := uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(unsafe.StringData(v)))
	if p < start || p >= start+uintptr(len(buf)) {
		t.Error("a text value was copied rather than shared")
	}
	// Changing a byte value in place leaves the text around it alone.
	got[0].Key.([]byte)[0] = 'X'
	if got[0].Value != "line one" || got[1].Value != "line two" {
		t.Errorf("text changed with a byte value: %q %q", got[0].Value, got[1].Value)
	}
	if _, err := connectv1.UnpackShared(buf[:len(buf)-1]); err == nil {
		t.Error("a truncated buffer: no error")
	}
}
