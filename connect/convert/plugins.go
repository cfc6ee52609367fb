package convert

import "github.com/sluice-io/sluice/connect/data"

func def(name, typ string, dflt *string, importance, doc string) data.ConfigDef {
	return data.ConfigDef{Name: name, Type: typ, Required: dflt == nil, Default: dflt, Importance: importance, Documentation: doc}
}

// converterType is ConverterConfig's converter.type, which the worker sets.
var converterType = def("converter.type", "STRING", nil, "LOW", "How this converter will be used.")

// Plugins lists the converters and header converters for
// GET /connector-plugins?connectorsOnly=false, with the config keys
// GET /connector-plugins/{plugin}/config serves: JsonConverter,
// StringConverter and ByteArrayConverter as both "converter" and
// "header_converter", SimpleHeaderConverter as "header_converter".
func Plugins() []data.PluginInfo {
	jsonCfg := []data.ConfigDef{
		converterType,
		def(SchemasEnableConfig, "BOOLEAN", data.Str("true"), "HIGH", "Include schemas within each of the serialized values and keys."),
		def(SchemasCacheSizeConfig, "INT", data.Str("1000"), "HIGH", "The maximum number of schemas that can be cached in this converter instance."),
		def(DecimalFormatConfig, "STRING", data.Str("BASE64"), "LOW", "Controls which format this converter will serialize decimals in. This value is case insensitive and can be either 'BASE64' (default) or 'NUMERIC'"),
		def(ReplaceNullWithDefaultConfig, "BOOLEAN", data.Str("true"), "LOW", "Whether to replace fields that have a default value and that are null to the default value. When set to true, the default value is used, otherwise null is used."),
	}
	stringCfg := []data.ConfigDef{
		converterType,
		def(EncodingConfig, "STRING", data.Str("UTF-8"), "HIGH", "The name of the Java character set to use for encoding strings as byte arrays."),
	}
	var out []data.PluginInfo
	for _, typ := range []string{"converter", "header_converter"} {
		out = append(out,
			data.PluginInfo{Class: ByteArrayConverterClass, Type: typ, Config: []data.ConfigDef{}},
			data.PluginInfo{Class: JSONConverterClass, Type: typ, Config: jsonCfg},
			data.PluginInfo{Class: StringConverterClass, Type: typ, Config: stringCfg},
		)
	}
	return append(out, data.PluginInfo{Class: SimpleHeaderConverterClass, Type: "header_converter", Config: []data.ConfigDef{}})
}
