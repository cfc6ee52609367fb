package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"

	"github.com/sluice-io/sluice/connect/api"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := api.Encode(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = api.Encode(api.ErrorMessage{ErrorCode: status, Message: "Cannot encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, e *api.Error) {
	writeJSON(w, e.Code, api.ErrorMessage{ErrorCode: e.Code, Message: e.Message})
}

func writeResponse(w http.ResponseWriter, r *http.Request, res response) {
	if res.raw != nil {
		res.raw.write(w, r)
		return
	}
	if res.location != "" {
		w.Header().Set("Location", absolute(r, res.location))
	}
	if res.body == nil {
		w.WriteHeader(res.status)
		return
	}
	writeJSON(w, res.status, res.body)
}

// absolute makes an escaped path absolute against the URL the client used,
// as Kafka's server does for Location (its JAX-RS runtime resolves relative
// locations against the request's base URI).
func absolute(r *http.Request, escapedPath string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + escapedPath
}

// connectorPath is /connectors/<name> with the name path-escaped.
func connectorPath(name string) string {
	return (&url.URL{Path: "/connectors/" + name}).EscapedPath()
}

// decode reads a JSON body into v. A missing or malformed body is a 400
// naming what was wrong; numbers stay json.Number so offsets keep their text.
func decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return api.BadRequest("Request body is empty; a JSON entity is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return api.BadRequest("Cannot deserialize request body: %s", describeJSONError(err))
	}
	if dec.More() {
		return api.BadRequest("Cannot deserialize request body: unexpected data after the JSON entity")
	}
	return nil
}

// describeJSONError says what was wrong with a body in the client's terms,
// not in Go's type names.
func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		where := ""
		if te.Field != "" {
			where = fmt.Sprintf(" for field %q", te.Field)
		}
		return fmt.Sprintf("found a JSON %s%s where %s was expected", te.Value, where, jsonKind(te.Type))
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v (at byte %d)", se, se.Offset)
	}
	return err.Error()
}

func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another value"
	}
	switch t.Kind() {
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "another value"
}
