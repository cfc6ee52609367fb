package transform

import (
	"strings"

	"github.com/sluice-io/sluice/connect/data"
)

// KeyReport is one transforms.* or predicates.* key of a connector config
// as POST /connector-plugins/{p}/config/validate reports it. Kafka adds a
// group per alias ("Transforms: a", "Predicates: p") holding the alias's
// type (and, for transforms, predicate and negate) keys and the class's own
// keys, all with the alias prefix.
type KeyReport struct {
	Def    data.ConfigDef // Def.Name is the full key
	Group  string
	Value  *string // as configured; nil when unset
	Errors []string
}

// Validate reports every per-alias key of the transforms and predicates a
// connector config lists, with the first error found for each alias on
// the key it concerns (or on its type key). Errors in the transforms and
// predicates lists themselves (duplicates) come from NewChain.
func Validate(config map[string]string) []KeyReport {
	var out []KeyReport
	add := func(group, prefix string, defs []data.ConfigDef, err error) {
		first := len(out)
		for _, d := range defs {
			d.Name = prefix + d.Name
			r := KeyReport{Def: d, Group: group}
			if v, ok := config[d.Name]; ok {
				r.Value = &v
			}
			out = append(out, r)
		}
		if err == nil {
			return
		}
		target := first // the type key
		if ce, ok := err.(*ConfigError); ok && ce.Key != "" {
			for i := first; i < len(out); i++ {
				if out[i].Def.Name == ce.Key {
					target = i
				}
			}
		}
		out[target].Errors = append(out[target].Errors, err.Error())
	}

	predAliases, _ := aliasList(config, "predicates")
	for _, alias := range predAliases {
		prefix := "predicates." + alias + "."
		defs := []data.ConfigDef{{Name: "type", Type: "CLASS", Required: true, Importance: "HIGH",
			Documentation: "Class for the '" + alias + "' predicate."}}
		defs = append(defs, classDefs(config[prefix+"type"], kindPredicate)...)
		_, err := buildPredicate(config, alias)
		add("Predicates: "+alias, prefix, defs, err)
	}
	aliases, _ := aliasList(config, "transforms")
	for _, alias := range aliases {
		prefix := "transforms." + alias + "."
		defs := []data.ConfigDef{
			{Name: "type", Type: "CLASS", Required: true, Importance: "HIGH", Documentation: "Class for the '" + alias + "' transformation."},
			{Name: "predicate", Type: "STRING", Importance: "MEDIUM", Documentation: "The alias of a predicate used to determine whether to apply this transformation."},
			{Name: "negate", Type: "BOOLEAN", Default: data.Str("false"), Importance: "MEDIUM", Documentation: "Whether the configured predicate should be negated."},
		}
		defs = append(defs, classDefs(config[prefix+"type"], kindTransformation)...)
		_, err := buildStage(config, alias, func(name string) (predicateFunc, bool) {
			for _, a := range predAliases {
				if a == name {
					return func(*data.Record) bool { return true }, true
				}
			}
			return nil, false
		})
		add("Transforms: "+alias, prefix, defs, err)
	}
	return out
}

// classDefs lists a class's own config keys, or none for an unknown class.
func classDefs(class, kind string) []data.ConfigDef {
	p, _, ok := lookup(strings.TrimSpace(class), kind)
	if !ok {
		return nil
	}
	return p.defs()
}
