package data

// ConfigDef describes one configuration key of a plugin, as Kafka's
// ConfigDef.ConfigKey, so GET /connector-plugins/{p}/config can list it.
type ConfigDef struct {
	Name string
	// Type is Kafka's ConfigDef.Type: BOOLEAN, STRING, INT, SHORT, LONG,
	// DOUBLE, LIST, CLASS or PASSWORD.
	Type string
	// Required means there is no default; Default is then nil. A key that
	// is optional with a null default also has a nil Default.
	Required      bool
	Default       *string
	Importance    string // HIGH, MEDIUM or LOW
	Documentation string
}

// PluginInfo names a plugin class with its type as Kafka's
// /connector-plugins lists it ("source", "sink", "converter",
// "header_converter", "transformation" or "predicate") and its config.
type PluginInfo struct {
	Class   string
	Type    string
	Version string
	Config  []ConfigDef
}

// Str returns a pointer to s, for ConfigDef.Default.
func Str(s string) *string { return &s }
