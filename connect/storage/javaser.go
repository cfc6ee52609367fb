package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
)

// Kafka Connect's standalone offsets file is a java.util.HashMap<byte[],
// byte[]> written with java.io.ObjectOutputStream (FileOffsetBackingStore),
// keys and values being the offsets topic's key and value bytes. Sluice
// reads and writes the same file so a standalone worker can move between
// Kafka Connect and Sluice with its offsets. Only that one object graph is
// supported; the grammar is the Java Object Serialization Stream Protocol.

const (
	jsMagic     = 0xaced
	jsVersion   = 5
	tcNull      = 0x70
	tcReference = 0x71
	tcClassDesc = 0x72
	tcObject    = 0x73
	tcString    = 0x74
	tcArray     = 0x75
	tcBlockData = 0x77
	tcEndBlock  = 0x78
	handleBase  = 0x7e0000

	hashMapClass = "java.util.HashMap"
	hashMapSUID  = 362498820763181265
	byteArrClass = "[B"
	byteArrSUID  = 0xacf317f8060854e0 // -5984413125824719648 as a Java long
)

// javaClass is a class descriptor read from a stream.
type javaClass struct {
	name   string
	flags  byte
	fields []byte // type codes, in stream order
}

type javaReader struct {
	b       []byte
	handles []any
	err     error
}

var errJavaShort = errors.New("truncated Java serialization stream")

func (r *javaReader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.err = errJavaShort
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *javaReader) u8() byte {
	if p := r.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (r *javaReader) u16() uint16 {
	if p := r.take(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (r *javaReader) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (r *javaReader) utf() string { return string(r.take(int(r.u16()))) }

func (r *javaReader) assign(v any) int {
	r.handles = append(r.handles, v)
	return len(r.handles) - 1
}

func (r *javaReader) ref() (any, error) {
	h := int(r.u32()) - handleBase
	if r.err != nil {
		return nil, r.err
	}
	if h < 0 || h >= len(r.handles) {
		return nil, fmt.Errorf("bad handle %#x in the Java serialization stream", h+handleBase)
	}
	return r.handles[h], nil
}

// classDesc reads a class descriptor: new, a reference, or null.
func (r *javaReader) classDesc() (*javaClass, error) {
	switch tag := r.u8(); tag {
	case tcNull:
		return nil, r.err
	case tcReference:
		v, err := r.ref()
		if err != nil {
			return nil, err
		}
		c, ok := v.(*javaClass)
		if !ok {
			return nil, errors.New("handle is not a class descriptor in the Java serialization stream")
		}
		return c, nil
	case tcClassDesc:
		c := &javaClass{name: r.utf()}
		r.take(8) // serialVersionUID
		r.assign(c)
		c.flags = r.u8()
		for range int(r.u16()) {
			code := r.u8()
			r.utf() // field name
			if code == 'L' || code == '[' {
				if _, err := r.object(); err != nil { // the field's type name
					return nil, err
				}
			}
			c.fields = append(c.fields, code)
		}
		if r.u8() != tcEndBlock { // no class annotations
			return nil, errors.New("unexpected class annotation in the Java serialization stream")
		}
		if super, err := r.classDesc(); err != nil || super != nil {
			return nil, errors.Join(err, fmt.Errorf("%s has a serializable superclass in the Java serialization stream", c.name))
		}
		return c, r.err
	default:
		return nil, errors.Join(r.err, fmt.Errorf("unexpected tag %#x for a class descriptor in the Java serialization stream", tag))
	}
}

// object reads a null, a reference, a string, a byte[], or a
// HashMap<byte[],byte[]> (as map[string][]byte; null values dropped).
func (r *javaReader) object() (any, error) {
	switch tag := r.u8(); tag {
	case tcNull:
		return nil, r.err
	case tcReference:
		return r.ref()
	case tcString:
		s := r.utf()
		r.assign(s)
		return s, r.err
	case tcArray:
		c, err := r.classDesc()
		if err != nil {
			return nil, err
		}
		if c == nil || c.name != byteArrClass {
			return nil, errors.New("only byte[] arrays are supported in the Java serialization stream")
		}
		h := r.assign(nil)
		b := append([]byte{}, r.take(int(r.u32()))...)
		r.handles[h] = b
		return b, r.err
	case tcObject:
		c, err := r.classDesc()
		if err != nil {
			return nil, err
		}
		if c == nil || c.name != hashMapClass {
			return nil, fmt.Errorf("expected a %s in the Java serialization stream", hashMapClass)
		}
		m := map[string][]byte{}
		r.assign(m)
		for _, code := range c.fields { // loadFactor (F), threshold (I)
			if code != 'F' && code != 'I' {
				return nil, errors.New("unexpected HashMap field in the Java serialization stream")
			}
			r.take(4)
		}
		if r.u8() != tcBlockData || r.u8() != 8 {
			return nil, errors.Join(r.err, errors.New("HashMap without its bucket count and size in the Java serialization stream"))
		}
		r.take(4) // buckets
		size := int(r.u32())
		for range size {
			k, err := r.object()
			if err != nil {
				return nil, err
			}
			v, err := r.object()
			if err != nil {
				return nil, err
			}
			kb, okK := k.([]byte)
			vb, okV := v.([]byte)
			if !okK || (v != nil && !okV) {
				return nil, errors.New("HashMap entry is not byte[] -> byte[] in the Java serialization stream")
			}
			if v != nil {
				m[string(kb)] = vb
			}
		}
		if r.u8() != tcEndBlock {
			return nil, errors.Join(r.err, errors.New("HashMap not terminated in the Java serialization stream"))
		}
		return m, r.err
	default:
		return nil, errors.Join(r.err, fmt.Errorf("unexpected tag %#x in the Java serialization stream", tag))
	}
}

// readJavaOffsets parses a Kafka Connect standalone offsets file.
func readJavaOffsets(b []byte) (map[string][]byte, error) {
	r := &javaReader{b: b}
	if r.u16() != jsMagic || r.u16() != jsVersion {
		return nil, errors.New("not a Java serialization stream")
	}
	v, err := r.object()
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string][]byte)
	if !ok {
		return nil, fmt.Errorf("expected a %s in the Java serialization stream", hashMapClass)
	}
	return m, nil
}

// writeJavaOffsets writes values as ObjectOutputStream writes a HashMap
// that FileOffsetBackingStore filled with put: entries in key order here
// (a HashMap's order is its hashing; readers do not care).
func writeJavaOffsets(values map[string][]byte) []byte {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// The table a HashMap grows to by puts: 16 buckets, doubled whenever
	// size passes three quarters. An empty map has no table yet.
	buckets, threshold := 16, 0
	if len(keys) > 0 {
		for len(keys) > buckets*3/4 {
			buckets *= 2
		}
		threshold = buckets * 3 / 4
	}
	b := binary.BigEndian.AppendUint16(nil, jsMagic)
	b = binary.BigEndian.AppendUint16(b, jsVersion)
	b = append(b, tcObject, tcClassDesc)
	b = appendUTF(b, hashMapClass)
	b = binary.BigEndian.AppendUint64(b, hashMapSUID)
	b = append(b, 0x03) // SC_WRITE_METHOD | SC_SERIALIZABLE
	b = binary.BigEndian.AppendUint16(b, 2)
	b = append(b, 'F')
	b = appendUTF(b, "loadFactor")
	b = append(b, 'I')
	b = appendUTF(b, "threshold")
	b = append(b, tcEndBlock, tcNull)
	b = binary.BigEndian.AppendUint32(b, math.Float32bits(0.75))
	b = binary.BigEndian.AppendUint32(b, uint32(threshold))
	b = append(b, tcBlockData, 8)
	b = binary.BigEndian.AppendUint32(b, uint32(buckets))
	b = binary.BigEndian.AppendUint32(b, uint32(len(keys)))
	// Handles: 0 the HashMap class, 1 the map, 2 the byte[] class.
	first := true
	appendArray := func(p []byte) {
		b = append(b, tcArray)
		if first {
			b = append(b, tcClassDesc)
			b = appendUTF(b, byteArrClass)
			b = binary.BigEndian.AppendUint64(b, byteArrSUID)
			b = append(b, 0x02, 0, 0, tcEndBlock, tcNull) // SC_SERIALIZABLE, no fields
			first = false
		} else {
			b = append(b, tcReference)
			b = binary.BigEndian.AppendUint32(b, handleBase+2)
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	for _, k := range keys {
		appendArray([]byte(k))
		appendArray(values[k])
	}
	return append(b, tcEndBlock)
}

func appendUTF(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}
