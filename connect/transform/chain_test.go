package transform

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluice-io/sluice/connect/data"
)

// cfg builds a connector config from "k=v" pairs.
func cfg(kv ...string) map[string]string {
	m := map[string]string{}
	for _, p := range kv {
		k, v, _ := strings.Cut(p, "=")
		m[k] = v
	}
	return m
}

func mustChain(t *testing.T, kv ...string) *Chain {
	t.Helper()
	c, err := NewChain(cfg(kv...))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func apply(t *testing.T, c *Chain, r *data.Record) *data.Record {
	t.Helper()
	out, err := c.Apply(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func rec(topic string, value any) *data.Record {
	return &data.Record{Topic: topic, Partition: -1, Timestamp: -1, Value: value}
}

func TestNewChainRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		kv   []string
		want string // substring of the error
	}{
		{"unknown class", []string{"transforms=a", "transforms.a.type=com.example.Nope"}, "transforms.a.type"},
		{"missing type", []string{"transforms=a"}, "transforms.a.type"},
		{"keyed class without variant", []string{"transforms=a", "transforms.a.type=org.apache.kafka.connect.transforms.InsertField", "transforms.a.topic.field=t"}, "could not be found"},
		{"missing required key", []string{"transforms=a", "transforms.a.type=org.apache.kafka.connect.transforms.RegexRouter", "transforms.a.regex=x"}, "transforms.a.replacement"},
		{"duplicate alias", []string{"transforms=a,a", "transforms.a.type=Filter"}, "Duplicate alias"},
		{"negate without predicate", []string{"transforms=a", "transforms.a.type=Filter", "transforms.a.negate=true"}, "no config 'transforms.a.predicate'"},
		{"unknown predicate alias", []string{"transforms=a", "transforms.a.type=Filter", "transforms.a.predicate=p"}, "not listed in predicates"},
		{"predicate class unknown", []string{"predicates=p", "predicates.p.type=org.apache.kafka.connect.transforms.Filter"}, "not a predicate"},
		{"nothing to insert", []string{"transforms=a", "transforms.a.type=InsertField$Value"}, "no field insertion configured"},
		{"static field without value", []string{"transforms=a", "transforms.a.type=InsertField$Value", "transforms.a.static.field=s"}, "transforms.a.static.value"},
		{"cast to bytes", []string{"transforms=a", "transforms.a.type=Cast$Value", "transforms.a.spec=f:bytes"}, "does not support casting to BYTES"},
		{"cast whole plus field", []string{"transforms=a", "transforms.a.type=Cast$Value", "transforms.a.spec=int8,f:int16"}, "single cast"},
		{"string target without format", []string{"transforms=a", "transforms.a.type=TimestampConverter$Value", "transforms.a.target.type=string"}, "requires format"},
		{"bad target type", []string{"transforms=a", "transforms.a.type=TimestampConverter$Value", "transforms.a.target.type=epoch"}, "transforms.a.target.type"},
		{"regex Go cannot run", []string{"transforms=a", "transforms.a.type=RegexRouter", "transforms.a.regex=(?!x).*", "transforms.a.replacement=y"}, "transforms.a.regex"},
		{"replacement group out of range", []string{"transforms=a", "transforms.a.type=RegexRouter", "transforms.a.regex=(.*)", "transforms.a.replacement=$2"}, "no group 2"},
		{"header lists differ", []string{"transforms=a", "transforms.a.type=HeaderFrom$Value", "transforms.a.fields=a,b", "transforms.a.headers=h", "transforms.a.operation=copy"}, "same number"},
		{"bad rename", []string{"transforms=a", "transforms.a.type=ReplaceField$Value", "transforms.a.renames=a:b:c"}, "invalid rename mapping"},
		{"empty fields", []string{"transforms=a", "transforms.a.type=ValueToKey", "transforms.a.fields="}, "transforms.a.fields"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewChain(cfg(tc.kv...))
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v (%T), want a ConfigError", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestChainLeavesInputAlone(t *testing.T) {
	empty := mustChain(t)
	r := rec("t", map[string]any{"a": int64(1)})
	if out := apply(t, empty, r); out != r {
		t.Fatal("empty chain did not return the record itself")
	}
	c := mustChain(t, "transforms=ins,mask", "transforms.ins.type=org.apache.kafka.connect.transforms.InsertField$Value",
		"transforms.ins.topic.field=topic", "transforms.mask.type=MaskField$Value", "transforms.mask.fields=a")
	out := apply(t, c, r)
	if !data.ValueEqual(r.Value, map[string]any{"a": int64(1)}) {
		t.Fatalf("input changed to %v", r.Value)
	}
	if !data.ValueEqual(out.Value, map[string]any{"a": int64(0), "topic": "t"}) {
		t.Fatalf("output %v", out.Value)
	}
}

func TestPredicates(t *testing.T) {
	// Kafka's documented example: drop records of topics matching foo.*
	// unless negated, and tombstones.
	c := mustChain(t,
		"transforms=dropFoo,dropTomb,keepOnlyH",
		"transforms.dropFoo.type=org.apache.kafka.connect.transforms.Filter",
		"transforms.dropFoo.predicate=isFoo",
		"transforms.dropTomb.type=Filter",
		"transforms.dropTomb.predicate=tomb",
		"transforms.keepOnlyH.type=Filter",
		"transforms.keepOnlyH.predicate=hasH",
		"transforms.keepOnlyH.negate=true",
		"predicates=isFoo,tomb,hasH",
		"predicates.isFoo.type=org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
		"predicates.isFoo.pattern=foo.*",
		"predicates.tomb.type=org.apache.kafka.connect.transforms.predicates.RecordIsTombstone",
		"predicates.hasH.type=HasHeaderKey",
		"predicates.hasH.name=h",
	)
	withH := func(r *data.Record) *data.Record {
		r.Headers = []data.Header{{Key: "h", Value: "x"}}
		return r
	}
	for _, tc := range []struct {
		name string
		r    *data.Record
		kept bool
	}{
		{"foo topic dropped", withH(rec("foo-1", "v")), false},
		{"topic must match whole", withH(rec("xfoo", "v")), true},
		{"tombstone dropped", withH(rec("bar", nil)), false},
		{"no header dropped by negated predicate", rec("bar", "v"), false},
	} {
		out := apply(t, c, tc.r)
		if (out != nil) != tc.kept {
			t.Errorf("%s: kept=%v", tc.name, out != nil)
		}
	}
}

func TestPluginsCatalogue(t *testing.T) {
	byClass := map[string]data.PluginInfo{}
	for _, p := range Plugins() {
		byClass[p.Class] = p
	}
	for class, typ := range map[string]string{
		"org.apache.kafka.connect.transforms.InsertField$Key":              "transformation",
		"org.apache.kafka.connect.transforms.InsertField$Value":            "transformation",
		"org.apache.kafka.connect.transforms.RegexRouter":                  "transformation",
		"org.apache.kafka.connect.transforms.Filter":                       "transformation",
		"org.apache.kafka.connect.transforms.TimestampConverter$Value":     "transformation",
		"org.apache.kafka.connect.transforms.predicates.TopicNameMatches":  "predicate",
		"org.apache.kafka.connect.transforms.predicates.RecordIsTombstone": "predicate",
		"org.apache.kafka.connect.transforms.predicates.HasHeaderKey":      "predicate",
		"org.apache.kafka.connect.transforms.ValueToKey":                   "transformation",
		"org.apache.kafka.connect.transforms.HeaderFrom$Value":             "transformation",
	} {
		p, ok := byClass[class]
		if !ok || p.Type != typ {
			t.Errorf("%s: %+v", class, p)
		}
	}
	var regex data.ConfigDef
	for _, d := range byClass["org.apache.kafka.connect.transforms.RegexRouter"].Config {
		if d.Name == "regex" {
			regex = d
		}
	}
	if !regex.Required || regex.Default != nil || regex.Importance != "HIGH" || regex.Type != "STRING" {
		t.Errorf("RegexRouter regex config %+v", regex)
	}
	// Every listed class must build from its own catalogue entry with its
	// required keys set to something plausible.
	for _, p := range Plugins() {
		if p.Type != "transformation" {
			continue
		}
		if _, _, ok := lookup(p.Class, kindTransformation); !ok {
			t.Errorf("%s listed but not constructible", p.Class)
		}
	}
}

func TestConfigErrorWording(t *testing.T) {
	_, err := NewChain(cfg("transforms=r", "transforms.r.type=RegexRouter", "transforms.r.regex=x"))
	if err == nil || err.Error() != `Missing required configuration "transforms.r.replacement" which has no default value.` {
		t.Fatalf("missing key: %v", err)
	}
	_, err = NewChain(cfg("transforms=t", "transforms.t.type=TimestampConverter$Value", "transforms.t.target.type=epoch"))
	if err == nil || err.Error() != "Invalid value epoch for configuration transforms.t.target.type: String must be one of: string, unix, Date, Time, Timestamp" {
		t.Fatalf("bad value: %v", err)
	}
}

func TestValidateReportsPerAliasKeys(t *testing.T) {
	reports := Validate(cfg(
		"transforms=ok,bad,unknown",
		"transforms.ok.type=org.apache.kafka.connect.transforms.RegexRouter",
		"transforms.ok.regex=(.*)", "transforms.ok.replacement=$1-x",
		"transforms.ok.predicate=p",
		"transforms.bad.type=Cast$Value", "transforms.bad.spec=f:bytes",
		"transforms.unknown.type=com.example.Nope",
		"predicates=p", "predicates.p.type=TopicNameMatches",
	))
	byKey := map[string]KeyReport{}
	for _, r := range reports {
		byKey[r.Def.Name] = r
	}
	for key, wantErr := range map[string]string{
		"transforms.ok.type":                       "",
		"transforms.ok.regex":                      "",
		"transforms.ok.negate":                     "",
		"transforms.bad.spec":                      "does not support casting to BYTES",
		"transforms.unknown.type":                  "could not be found",
		"predicates.p.type":                        "",
		"predicates.p.pattern":                     `Missing required configuration "predicates.p.pattern"`,
		"transforms.bad.replace.null.with.default": "",
	} {
		r, ok := byKey[key]
		if !ok {
			t.Errorf("%s not reported", key)
			continue
		}
		got := strings.Join(r.Errors, "; ")
		if (wantErr == "") != (got == "") || !strings.Contains(got, wantErr) {
			t.Errorf("%s: errors %q, want %q", key, got, wantErr)
		}
	}
	if r := byKey["transforms.ok.regex"]; r.Group != "Transforms: ok" || r.Value == nil || *r.Value != "(.*)" || !r.Def.Required {
		t.Errorf("regex report %+v", r)
	}
	if r := byKey["transforms.ok.negate"]; r.Value != nil || r.Def.Default == nil || *r.Def.Default != "false" {
		t.Errorf("negate report %+v", r)
	}
}
