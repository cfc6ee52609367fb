// Package gen makes the connect benchmark's records, so the generator
// plugin and the franz-go baseline write the same keys and values.
package gen

import (
	"fmt"
	"strings"
)

// Key is the key of record seq.
func Key(seq int64) string { return fmt.Sprintf("key-%010d", seq) }

// Payload is a value of n printable bytes.
func Payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

// jsonOverhead is what a JSON value's fields other than msg take in
// JsonConverter's schemaless text with a 7-digit seq:
// {"host":"web-1","level":"INFO","msg":"","seq":1234567}.
const jsonOverhead = 54

// Filler is the msg field that makes a JSON value about n bytes long.
func Filler(n int) string { return strings.Repeat("x", max(n-jsonOverhead, 0)) }

// JSONValue is record seq's value for value.type=json: a schemaless map
// shaped like a small log event, about n bytes once JsonConverter writes
// it when msg is Filler(n).
func JSONValue(seq int64, msg string) map[string]any {
	return map[string]any{"seq": seq, "level": "INFO", "host": "web-1", "msg": msg}
}
