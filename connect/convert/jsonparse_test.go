package convert

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseJSON checks the hand-written parser against encoding/json on
// every input both accept as one JSON value.
func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5,"x",true,null]}`, `"\u00e9\ud83d\ude00"`, `[[[]]]`, `-0.0e+5`, `{"":{}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !utf8.Valid(b) || !json.Valid(b) {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var want any
		if err := dec.Decode(&want); err != nil {
			return
		}
		got, err := parseJSON(b)
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got %#v want %#v", b, got, want)
		}
	})
}

// TestSmallInt holds smallInt to strconv.ParseInt where it claims a value.
func TestSmallInt(t *testing.T) {
	r := rand.New(rand.NewPCG(20, 4))
	for range 20000 {
		lit := strconv.FormatInt(int64(r.Uint64())>>r.IntN(64), 10)
		if r.IntN(4) == 0 && lit[0] != '-' {
			lit = strings.Repeat("0", r.IntN(4)) + lit
		}
		if r.IntN(8) == 0 {
			lit = strings.Repeat("9", r.IntN(25))
		}
		got, ok := smallInt([]byte(lit))
		want, err := strconv.ParseInt(lit, 10, 64)
		if ok && (err != nil || got != want) {
			t.Fatalf("smallInt(%q) = %d, ParseInt = %d, %v", lit, got, want, err)
		}
		if !ok && len(strings.TrimLeft(lit, "-")) <= 18 && lit != "" {
			t.Fatalf("smallInt(%q) refused a short integer", lit)
		}
	}
}
