package broker

import (
	"reflect"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Every registered API is one kmsg knows, serves versions kmsg can encode,
// and, unless it counts its own, extracts every error code its response
// can carry: each ErrorCode field at any depth gets a distinct code, and
// the registration must report exactly those.
func TestEveryRegisteredAPI(t *testing.T) {
	regs := registered()
	if len(regs) == 0 {
		t.Fatal("nothing registered")
	}
	for _, a := range regs {
		req := kmsg.RequestForKey(a.key.Int16())
		if req == nil {
			t.Errorf("%s (key %d): kmsg has no such request", a.key.Name(), a.key)
			continue
		}
		if a.max > req.MaxVersion() {
			t.Errorf("%s: serves up to v%d, kmsg defines up to v%d", a.key.Name(), a.max, req.MaxVersion())
		}
		if a.errorCodes == nil {
			if a.key != kmsg.Fetch {
				t.Errorf("%s: no error-code extraction", a.key.Name())
			}
			continue // Fetch counts its own codes as it builds its frames
		}
		resp := kmsg.ResponseForKey(a.key.Int16())
		next := int16(0)
		var want []int16
		fillErrorCodes(reflect.ValueOf(resp).Elem(), &next, &want, 0)
		if len(want) == 0 {
			t.Errorf("%s: its response has no ErrorCode field", a.key.Name())
			continue
		}
		var got []int16
		a.errorCodes(resp, func(c int16) { got = append(got, c) })
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: error codes extracted %v, the response holds %v", a.key.Name(), got, want)
		}
	}
}

// fillErrorCodes gives every ErrorCode field reachable from v (one element
// added to every slice of structs) a distinct code, appending it to codes.
func fillErrorCodes(v reflect.Value, next *int16, codes *[]int16, depth int) {
	if depth > 8 {
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			f, sf := v.Field(i), v.Type().Field(i)
			if !sf.IsExported() {
				continue
			}
			if sf.Name == "ErrorCode" && f.Kind() == reflect.Int16 {
				*next++
				f.SetInt(int64(*next))
				*codes = append(*codes, *next)
				continue
			}
			fillErrorCodes(f, next, codes, depth+1)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Struct {
			v.Set(reflect.Append(v, reflect.New(v.Type().Elem()).Elem()))
			fillErrorCodes(v.Index(v.Len()-1), next, codes, depth+1)
		}
	}
}

// A registration that could not work is refused at start.
func TestRegisterRefusesBadRegistrations(t *testing.T) {
	for name, a := range map[string]api{
		"twice":          *apis[kmsg.Metadata],
		"no handler":     {key: kmsg.SASLHandshake, max: 1},
		"no codes":       {key: kmsg.SASLHandshake, max: 1, handle: apis[kmsg.Metadata].handle},
		"both handlers":  {key: kmsg.SASLHandshake, max: 1, handle: apis[kmsg.Metadata].handle, raw: apis[kmsg.Fetch].raw},
		"versions":       {key: kmsg.SASLHandshake, min: 2, max: 1, raw: apis[kmsg.Fetch].raw},
		"negative min":   {key: kmsg.SASLHandshake, min: -1, max: 1, raw: apis[kmsg.Fetch].raw},
		"key out of map": {key: kmsg.Key(200), max: 1, raw: apis[kmsg.Fetch].raw},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: registered", name)
				}
			}()
			register(a)
		}()
	}
	if apis[kmsg.SASLHandshake] != nil {
		t.Fatal("a refused registration left an entry")
	}
}
