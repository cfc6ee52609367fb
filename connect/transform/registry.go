package transform

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-io/sluice/connect/data"
)

const (
	kindTransformation = "transformation"
	kindPredicate      = "predicate"

	transformsPkg = "org.apache.kafka.connect.transforms."
	predicatesPkg = "org.apache.kafka.connect.transforms.predicates."
)

// param is one config key of a plugin; no default means required.
type param struct {
	name, typ  string // typ is Kafka's ConfigDef.Type
	def        *string
	nullDef    bool // optional with a null default
	importance string
	doc        string
}

func required(name, typ, importance, doc string) param {
	return param{name: name, typ: typ, importance: importance, doc: doc}
}

func optional(name, typ, def, importance, doc string) param {
	return param{name: name, typ: typ, def: &def, importance: importance, doc: doc}
}

func nullable(name, typ, importance, doc string) param {
	return param{name: name, typ: typ, nullDef: true, importance: importance, doc: doc}
}

const replaceNullDoc = "Whether to replace fields that have a default value and that are null to the default value. When set to true, the default value is used, otherwise null is used."

var replaceNullParam = optional("replace.null.with.default", "BOOLEAN", "true", "MEDIUM", replaceNullDoc)

// plugin is a transformation (with $Key/$Value variants when keyed) or a
// predicate.
type plugin struct {
	class  string // simple name, e.g. "InsertField"
	kind   string
	keyed  bool
	params []param
	// aliases are extra accepted keys, mapped to the param they stand for.
	aliases      map[string]string
	newStage     func(c *config, o operand) (stageFunc, error)
	newPredicate func(c *config) (predicateFunc, error)
}

func (p *plugin) fullClass() string {
	if p.kind == kindPredicate {
		return predicatesPkg + p.class
	}
	return transformsPkg + p.class
}

var registry []*plugin

func register(p *plugin) { registry = append(registry, p) }

// lookup resolves Kafka's class name (org.apache.kafka.connect.transforms.
// InsertField$Value) or its simple name (InsertField$Value) to a plugin and
// whether it works on the key.
func lookup(class, kind string) (*plugin, bool, bool) {
	name := class
	for _, pkg := range []string{predicatesPkg, transformsPkg} {
		name = strings.TrimPrefix(name, pkg)
	}
	base, variant, hasVariant := strings.Cut(name, "$")
	for _, p := range registry {
		if p.kind != kind || p.class != base {
			continue
		}
		switch {
		case !p.keyed && !hasVariant:
			return p, false, true
		case p.keyed && variant == "Key":
			return p, true, true
		case p.keyed && variant == "Value":
			return p, false, true
		}
	}
	return nil, false, false
}

// config is one plugin's props with Kafka's typed getters; errors name the
// full connector key.
type config struct {
	props  map[string]string
	prefix string
	params map[string]param
}

func newConfig(p *plugin, props map[string]string, prefix string) (*config, error) {
	c := &config{props: props, prefix: prefix, params: map[string]param{}}
	for alias, target := range p.aliases {
		if v, ok := props[alias]; ok {
			if _, set := props[target]; !set {
				props[target] = v
			}
		}
	}
	for _, pa := range p.params {
		c.params[pa.name] = pa
		if _, ok := props[pa.name]; !ok && pa.def == nil && !pa.nullDef {
			return nil, missingKey(prefix + pa.name)
		}
	}
	return c, nil
}

func (c *config) errorf(key, format string, args ...any) error {
	v, _ := c.str(key)
	return &ConfigError{Key: c.prefix + key, Value: v, Msg: fmt.Sprintf(format, args...)}
}

// str returns the value or the default; ok is false for a null default.
func (c *config) str(key string) (string, bool) {
	if v, ok := c.props[key]; ok {
		return v, true
	}
	if p := c.params[key]; p.def != nil {
		return *p.def, true
	}
	return "", false
}

func (c *config) list(key string) []string {
	v, _ := c.str(key)
	return splitList(v)
}

func (c *config) nonEmptyList(key string) ([]string, error) {
	l := c.list(key)
	if len(l) == 0 {
		return nil, c.errorf(key, "empty list")
	}
	return l, nil
}

func (c *config) boolean(key string) (bool, error) {
	v, _ := c.str(key)
	b, ok := parseBool(v)
	if !ok {
		return false, c.errorf(key, "Expected value to be either true or false")
	}
	return b, nil
}

func (c *config) oneOf(key string, fold bool, options ...string) (string, error) {
	v, _ := c.str(key)
	v = strings.TrimSpace(v)
	for _, o := range options {
		if v == o || fold && strings.EqualFold(v, o) {
			return o, nil
		}
	}
	return "", c.errorf(key, "String must be one of: %s", strings.Join(options, ", "))
}

// parseBool reads Kafka's BOOLEAN: true or false in any case.
func parseBool(v string) (value, ok bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

func parseInt32(v string) (int32, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	return int32(n), err
}

// splitList parses Kafka's LIST type: comma-separated, trimmed, "" empty.
func splitList(v string) []string {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	parts := strings.Split(v, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// Plugins lists every transformation (both $Key and $Value classes of the
// keyed ones) and predicate with its config keys, for
// GET /connector-plugins?connectorsOnly=false and
// GET /connector-plugins/{plugin}/config.
func Plugins() []data.PluginInfo {
	var out []data.PluginInfo
	for _, p := range registry {
		defs := p.defs()
		if !p.keyed {
			out = append(out, data.PluginInfo{Class: p.fullClass(), Type: p.kind, Config: defs})
			continue
		}
		for _, v := range []string{"$Key", "$Value"} {
			out = append(out, data.PluginInfo{Class: p.fullClass() + v, Type: p.kind, Config: defs})
		}
	}
	return out
}

// defs describes the plugin's config keys.
func (p *plugin) defs() []data.ConfigDef {
	defs := make([]data.ConfigDef, 0, len(p.params))
	for _, pa := range p.params {
		defs = append(defs, data.ConfigDef{Name: pa.name, Type: pa.typ, Required: pa.def == nil && !pa.nullDef,
			Default: pa.def, Importance: pa.importance, Documentation: pa.doc})
	}
	return defs
}

// operand is the part of a record a keyed transform works on.
type operand bool

const (
	keyOperand   operand = true
	valueOperand operand = false
)

func (o operand) get(r *data.Record) (*data.Schema, any) {
	if o == keyOperand {
		return r.KeySchema, r.Key
	}
	return r.ValueSchema, r.Value
}

func (o operand) set(r *data.Record, s *data.Schema, v any) *data.Record {
	if o == keyOperand {
		r.KeySchema, r.Key = s, v
	} else {
		r.ValueSchema, r.Value = s, v
	}
	return r
}
