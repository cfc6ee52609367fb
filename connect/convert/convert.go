// Package convert holds Kafka Connect's converters, which turn a record's
// key, value and headers between Connect data (connect/data) and the bytes
// stored in Kafka: JsonConverter, StringConverter and ByteArrayConverter,
// selected by Kafka's class names so worker and connector configs carry
// over unchanged.
package convert

import (
	"fmt"
	"strings"

	"github.com/sluice-io/sluice/connect/data"
)

// Converter converts between Connect data and bytes: Kafka's Converter.
// Implementations are safe for concurrent use once configured.
type Converter interface {
	Configure(props map[string]string, isKey bool) error
	FromConnect(topic string, s *data.Schema, v any) ([]byte, error)
	ToConnect(topic string, b []byte) (*data.Schema, any, error)
}

// HeaderConverter converts header values: Kafka's HeaderConverter. Every
// converter here is also a header converter, as in Kafka.
type HeaderConverter interface {
	Configure(props map[string]string, isKey bool) error
	FromConnectHeader(topic, key string, s *data.Schema, v any) ([]byte, error)
	ToConnectHeader(topic, key string, b []byte) (*data.Schema, any, error)
}

// Kafka's converter class names.
const (
	JSONConverterClass         = "org.apache.kafka.connect.json.JsonConverter"
	StringConverterClass       = "org.apache.kafka.connect.storage.StringConverter"
	ByteArrayConverterClass    = "org.apache.kafka.connect.converters.ByteArrayConverter"
	SimpleHeaderConverterClass = "org.apache.kafka.connect.storage.SimpleHeaderConverter"
)

// canonical maps every accepted name (class, simple name, alias without
// "Converter", case-insensitive) to a class name.
func canonical(class string) (string, bool) {
	c := strings.TrimSpace(class)
	for _, full := range []string{JSONConverterClass, StringConverterClass, ByteArrayConverterClass, SimpleHeaderConverterClass} {
		simple := full[strings.LastIndexByte(full, '.')+1:]
		if strings.EqualFold(c, full) || strings.EqualFold(c, simple) || strings.EqualFold(c, strings.TrimSuffix(simple, "Converter")) {
			return full, true
		}
	}
	return "", false
}

type converter interface {
	Converter
	HeaderConverter
}

func newConverter(class string) (converter, error) {
	full, ok := canonical(class)
	if !ok {
		return nil, fmt.Errorf("convert: unknown converter class %q (known: %s, %s, %s)", class, JSONConverterClass, StringConverterClass, ByteArrayConverterClass)
	}
	switch full {
	case JSONConverterClass:
		return &JSONConverter{}, nil
	case StringConverterClass:
		return &StringConverter{}, nil
	case ByteArrayConverterClass:
		return ByteArrayConverter{}, nil
	}
	return &SimpleHeaderConverter{}, nil
}

// New returns the converter named by class (Kafka's class name, its simple
// name such as "JsonConverter", or "json"/"string"/"bytearray"),
// configured with props (the converter's own keys, e.g. schemas.enable,
// already stripped of "key.converter." or "value.converter.").
func New(class string, props map[string]string, isKey bool) (Converter, error) {
	if full, _ := canonical(class); full == SimpleHeaderConverterClass {
		return nil, fmt.Errorf("convert: %s is only a header converter", class)
	}
	c, err := newConverter(class)
	if err != nil {
		return nil, err
	}
	if err := c.Configure(props, isKey); err != nil {
		return nil, fmt.Errorf("convert: configuring %s: %w", class, err)
	}
	return c, nil
}

// NewHeader returns the header converter named by class (the worker's
// header.converter, Kafka's default being SimpleHeaderConverter).
func NewHeader(class string, props map[string]string) (HeaderConverter, error) {
	c, err := newConverter(class)
	if err != nil {
		return nil, err
	}
	if err := c.Configure(props, false); err != nil {
		return nil, fmt.Errorf("convert: configuring %s: %w", class, err)
	}
	return c, nil
}

// FromConnectHeader serializes a header value as a value.
func (c *JSONConverter) FromConnectHeader(topic, _ string, s *data.Schema, v any) ([]byte, error) {
	return c.FromConnect(topic, s, v)
}

// ToConnectHeader parses a header value as a value.
func (c *JSONConverter) ToConnectHeader(topic, _ string, b []byte) (*data.Schema, any, error) {
	return c.ToConnect(topic, b)
}

// ByteArrayConverter is Kafka's ByteArrayConverter: bytes pass through
// unchanged with an optional bytes schema.
type ByteArrayConverter struct{}

// Configure accepts and ignores props.
func (ByteArrayConverter) Configure(map[string]string, bool) error { return nil }

// FromConnect returns v, which must be []byte with a bytes schema or none.
func (ByteArrayConverter) FromConnect(_ string, s *data.Schema, v any) ([]byte, error) {
	if s != nil && s.Type != data.TypeBytes {
		return nil, &data.DataError{Msg: fmt.Sprintf("invalid schema type for ByteArrayConverter: %s", strings.ToUpper(string(s.Type)))}
	}
	if v == nil {
		return nil, nil
	}
	b, ok := v.([]byte)
	if !ok {
		return nil, &data.DataError{Msg: fmt.Sprintf("ByteArrayConverter is not compatible with objects of type %T", v)}
	}
	return b, nil
}

// ToConnect returns b with an optional bytes schema.
func (ByteArrayConverter) ToConnect(_ string, b []byte) (*data.Schema, any, error) {
	if b == nil {
		return data.OptionalBytesSchema, nil, nil
	}
	return data.OptionalBytesSchema, b, nil
}

// FromConnectHeader is FromConnect.
func (c ByteArrayConverter) FromConnectHeader(topic, _ string, s *data.Schema, v any) ([]byte, error) {
	return c.FromConnect(topic, s, v)
}

// ToConnectHeader is ToConnect.
func (c ByteArrayConverter) ToConnectHeader(topic, _ string, b []byte) (*data.Schema, any, error) {
	return c.ToConnect(topic, b)
}
