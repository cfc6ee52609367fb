package data

import "testing"

// InitStruct takes the values as given, by position, and Values hands
// them back; a wrong count or schema panics as NewStruct does.
func TestInitStructAndValues(t *testing.T) {
	s := StructOf("s", F("a", OptionalInt32Schema), F("b", OptionalStringSchema))
	var st Struct
	InitStruct(&st, s, []any{int32(7), nil})
	if st.Schema() != s || st.GetWithoutDefault("a") != int32(7) || st.GetWithoutDefault("b") != nil {
		t.Fatalf("InitStruct: %v", &st)
	}
	if err := st.Put("b", "x"); err != nil {
		t.Fatal(err)
	}
	if vs := st.Values(); len(vs) != 2 || vs[0] != int32(7) || vs[1] != "x" {
		t.Fatalf("Values() = %v", vs)
	}
	for name, f := range map[string]func(){
		"count":  func() { InitStruct(&st, s, []any{nil}) },
		"schema": func() { InitStruct(&st, Int32Schema, nil) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: InitStruct did not panic", name)
				}
			}()
			f()
		}()
	}
}
