// Package distributed is the "connect" group protocol that Kafka Connect
// workers in distributed mode coordinate through: the bytes workers put in
// JoinGroup and SyncGroup (byte-compatible with Kafka's ConnectProtocol and
// IncrementalCooperativeConnectProtocol), the incremental cooperative
// assignor of KIP-415 as an I/O-free state machine, and Member, the loop
// that keeps one worker in the group over a kgo.Client.
//
// The broker treats all of this as opaque bytes; only workers read it.
package distributed

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// ProtocolType is the JoinGroup protocol type of Connect worker groups.
const ProtocolType = "connect"

// Protocol names workers advertise in JoinGroup, in Kafka's
// ConnectProtocolCompatibility. The coordinator picks the first one every
// member supports; its version is the version of the assignment bytes.
const (
	ProtocolDefault    = "default"    // EAGER, metadata and assignment v0
	ProtocolCompatible = "compatible" // incremental cooperative (KIP-415), v1
	ProtocolSessioned  = "sessioned"  // v1 plus session keys (KIP-507), v2
)

// Protocol versions carried in the first two bytes of metadata and
// assignments.
const (
	V0 int16 = 0
	V1 int16 = 1
	V2 int16 = 2
)

// Assignment error codes.
const (
	NoError int16 = 0
	// ConfigMismatch says the leader's config snapshot was behind a member's
	// config offset: every member must read the config topic to the end and
	// rejoin; nobody starts or stops anything.
	ConfigMismatch int16 = 1
)

// ConnectorTask is the task number that stands for the Connector instance
// itself rather than one of its tasks.
const ConnectorTask int32 = -1

// ID names a unit of work: a connector instance (Task == ConnectorTask) or
// one of its tasks.
type ID struct {
	Connector string
	Task      int32
}

// ConnectorID is the ID of the Connector instance of the named connector.
func ConnectorID(name string) ID { return ID{Connector: name, Task: ConnectorTask} }

// TaskID is the ID of task n of the named connector.
func TaskID(name string, n int32) ID { return ID{Connector: name, Task: n} }

// IsConnector says whether the ID is a Connector instance, not a task.
func (id ID) IsConnector() bool { return id.Task == ConnectorTask }

// String is Kafka's ConnectorTaskId form, "name-n", or the bare name for a
// connector instance.
func (id ID) String() string {
	if id.IsConnector() {
		return id.Connector
	}
	return id.Connector + "-" + strconv.Itoa(int(id.Task))
}

// Compare orders IDs by connector, then task, the connector instance first.
func (id ID) Compare(o ID) int {
	if id.Connector != o.Connector {
		if id.Connector < o.Connector {
			return -1
		}
		return 1
	}
	switch {
	case id.Task < o.Task:
		return -1
	case id.Task > o.Task:
		return 1
	}
	return 0
}

// Metadata is what a worker puts in its JoinGroup protocol metadata.
type Metadata struct {
	Version int16
	// URL is the worker's advertised REST URL; the leader's becomes the
	// group's leader URL that followers forward writes to.
	URL string
	// ConfigOffset is the offset of the config topic the worker has read up
	// to.
	ConfigOffset int64
	// Allocation is what the worker runs now (v1+; nil for none). Only its
	// Assigned list is meaningful.
	Allocation *Assignment
}

// Assignment is the SyncGroup assignment of one worker. In v1+ Assigned
// holds only the work newly given in this round; what the worker already
// runs and is not in Revoked stays its own.
type Assignment struct {
	Version      int16
	Error        int16
	Leader       string // member ID of the leader
	LeaderURL    string
	ConfigOffset int64 // the config offset the assignment was computed at
	Assigned     []ID
	Revoked      []ID  // v1+: stop these before rejoining
	Delay        int32 // v1+: ms until the leader wants a rejoin to reassign lost work
}

// Encode returns the metadata bytes for the given protocol version (v0
// drops the allocation).
func (m *Metadata) Encode() []byte {
	b := appendInt16(nil, m.Version)
	b = appendString(b, m.URL)
	b = appendInt64(b, m.ConfigOffset)
	if m.Version < V1 {
		return b
	}
	if m.Allocation == nil {
		return appendInt32(b, -1)
	}
	alloc := *m.Allocation
	alloc.Version = m.Version
	ab := alloc.Encode()
	b = appendInt32(b, int32(len(ab)))
	return append(b, ab...)
}

// Encode returns the assignment bytes for a.Version. IDs are grouped by
// connector, connectors in name order and the connector instance (-1) ahead
// of its tasks, so equal assignments encode to equal bytes.
func (a *Assignment) Encode() []byte {
	b := appendInt16(nil, a.Version)
	b = appendInt16(b, a.Error)
	b = appendString(b, a.Leader)
	b = appendString(b, a.LeaderURL)
	b = appendInt64(b, a.ConfigOffset)
	b = appendIDs(b, a.Assigned)
	if a.Version < V1 {
		return b
	}
	b = appendIDs(b, a.Revoked)
	return appendInt32(b, a.Delay)
}

// DecodeMetadata parses JoinGroup protocol metadata of any version. Like
// Kafka, a v1+ buffer that ends before the allocation means no allocation.
func DecodeMetadata(b []byte) (*Metadata, error) {
	r := reader{b: b}
	m := &Metadata{Version: r.int16()}
	m.URL = r.string()
	m.ConfigOffset = r.int64()
	if r.err != nil {
		return nil, fmt.Errorf("connect metadata: %w", r.err)
	}
	if m.Version < V0 {
		return nil, fmt.Errorf("connect metadata: unsupported version %d", m.Version)
	}
	if m.Version >= V1 && r.more() {
		ab, null := r.bytes()
		if r.err != nil {
			return nil, fmt.Errorf("connect metadata allocation: %w", r.err)
		}
		if !null {
			a, err := DecodeAssignment(ab)
			if err != nil {
				return nil, fmt.Errorf("connect metadata allocation: %w", err)
			}
			m.Allocation = a
		}
	}
	return m, nil
}

// DecodeAssignment parses SyncGroup assignment bytes of any version. Like
// Kafka, v1+ fields missing at the end of the buffer take their defaults
// (no revocations, no delay).
func DecodeAssignment(b []byte) (*Assignment, error) {
	r := reader{b: b}
	a := &Assignment{Version: r.int16()}
	a.Error = r.int16()
	a.Leader = r.string()
	a.LeaderURL = r.string()
	a.ConfigOffset = r.int64()
	if r.err == nil && a.Version < V0 {
		return nil, fmt.Errorf("connect assignment: unsupported version %d", a.Version)
	}
	if a.Version < V1 || r.more() {
		a.Assigned = r.ids(a.Version >= V1)
	}
	if a.Version >= V1 && r.more() {
		a.Revoked = r.ids(true)
	}
	if a.Version >= V1 && r.more() {
		a.Delay = r.int32()
	}
	if r.err != nil {
		return nil, fmt.Errorf("connect assignment: %w", r.err)
	}
	return a, nil
}

func appendInt16(b []byte, v int16) []byte { return binary.BigEndian.AppendUint16(b, uint16(v)) }
func appendInt32(b []byte, v int32) []byte { return binary.BigEndian.AppendUint32(b, uint32(v)) }
func appendInt64(b []byte, v int64) []byte { return binary.BigEndian.AppendUint64(b, uint64(v)) }

// appendString writes Kafka's non-nullable STRING: int16 length, UTF-8.
// Longer strings cannot be represented; they are cut rather than corrupt
// the length (connector names and URLs are far shorter).
func appendString(b []byte, s string) []byte {
	if len(s) > math.MaxInt16 {
		s = s[:math.MaxInt16]
	}
	b = appendInt16(b, int16(len(s)))
	return append(b, s...)
}

// appendIDs writes [{connector STRING, tasks [INT32]}], one entry per
// connector.
func appendIDs(b []byte, ids []ID) []byte {
	sorted := slices.Clone(ids)
	slices.SortFunc(sorted, ID.Compare)
	sorted = slices.Compact(sorted)
	n := 0
	for i := range sorted {
		if i == 0 || sorted[i].Connector != sorted[i-1].Connector {
			n++
		}
	}
	b = appendInt32(b, int32(n))
	for i := 0; i < len(sorted); {
		j := i
		for j < len(sorted) && sorted[j].Connector == sorted[i].Connector {
			j++
		}
		b = appendString(b, sorted[i].Connector)
		b = appendInt32(b, int32(j-i))
		for _, id := range sorted[i:j] {
			b = appendInt32(b, id.Task)
		}
		i = j
	}
	return b
}

var errShort = errors.New("buffer too short")

// reader reads Kafka's fixed-width protocol types, remembering the first
// error so a decoder checks once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) more() bool { return r.err == nil && len(r.b) > 0 }

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.err = errShort
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) int16() int16 {
	if v := r.take(2); v != nil {
		return int16(binary.BigEndian.Uint16(v))
	}
	return 0
}

func (r *reader) int32() int32 {
	if v := r.take(4); v != nil {
		return int32(binary.BigEndian.Uint32(v))
	}
	return 0
}

func (r *reader) int64() int64 {
	if v := r.take(8); v != nil {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

// string reads a STRING; a null (-1) length, which Kafka never writes
// here, reads as "".
func (r *reader) string() string {
	n := r.int16()
	if n == -1 {
		return ""
	}
	return string(r.take(int(n)))
}

func (r *reader) bytes() (b []byte, null bool) {
	n := r.int32()
	if n == -1 {
		return nil, true
	}
	return r.take(int(n)), false
}

// ids reads [{connector, tasks [INT32]}]; nullable says a -1 count (v1+)
// means an empty list.
func (r *reader) ids(nullable bool) []ID {
	n := r.int32()
	if n == -1 && nullable {
		return nil
	}
	if r.err == nil && (n < 0 || int(n) > len(r.b)) {
		r.err = fmt.Errorf("bad array length %d", n)
	}
	var ids []ID
	for i := int32(0); i < n && r.err == nil; i++ {
		name := r.string()
		tasks := r.int32()
		if r.err == nil && (tasks < 0 || int(tasks)*4 > len(r.b)) {
			r.err = fmt.Errorf("bad task array length %d for connector %q", tasks, name)
		}
		for j := int32(0); j < tasks && r.err == nil; j++ {
			ids = append(ids, ID{Connector: name, Task: r.int32()})
		}
	}
	return ids
}
