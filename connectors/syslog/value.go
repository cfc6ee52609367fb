package main

import (
	"slices"
	"strconv"
	"unicode/utf8"
)

// valueFormat is what a record's value is (syslog.value.format).
type valueFormat int

const (
	// formatMap: a map[string]any of the fields, which any converter
	// renders (JsonConverter as a JSON object) and SMTs can change.
	formatMap valueFormat = iota
	// formatJSON: the same fields as JSON bytes made by the plugin, for
	// ByteArrayConverter. The worker passes them through untouched, which
	// makes it several times cheaper per message than a map.
	formatJSON
	// formatRaw: the message as received, a string.
	formatRaw
)

// The value's field names: the message's parts as RFC 5424 names them,
// snake_case as JSON users expect.
const (
	fFacility   = "facility"
	fSeverity   = "severity"
	fTimestamp  = "timestamp"
	fHostname   = "hostname"
	fAppName    = "app_name"
	fProcID     = "proc_id"
	fMsgID      = "msg_id"
	fSD         = "structured_data"
	fMessage    = "message"
	fFormat     = "format"
	fRemote     = "remote_address"
	fRaw        = "raw"
	fParseError = "parse_error"
	fTruncated  = "truncated"
)

// message is a parsed message's fields; empty strings are absent fields
// and are left out of the value.
type message struct {
	format             string // rfc5424 or rfc3164; "" when parsing failed
	hasPri             bool
	facility, severity uint8
	timestamp          string // RFC 3339
	hostname, appName  string
	procID, msgID      string
	sd                 map[string]map[string]string
	text               string
	raw                string
	remote             string
	parseError         string
	failed, truncated  bool
}

func (m *message) toMap() map[string]any {
	v := make(map[string]any, 12)
	if m.hasPri {
		v[fFacility], v[fSeverity] = int64(m.facility), int64(m.severity)
	}
	put := func(k, s string) {
		if s != "" {
			v[k] = s
		}
	}
	put(fTimestamp, m.timestamp)
	put(fHostname, m.hostname)
	put(fAppName, m.appName)
	put(fProcID, m.procID)
	put(fMsgID, m.msgID)
	if len(m.sd) > 0 {
		sd := make(map[string]any, len(m.sd))
		for id, params := range m.sd {
			pm := make(map[string]any, len(params))
			for k, pv := range params {
				pm[k] = pv
			}
			sd[id] = pm
		}
		v[fSD] = sd
	}
	v[fMessage] = m.text
	put(fFormat, m.format)
	put(fRemote, m.remote)
	put(fRaw, m.raw)
	if m.failed {
		v[fParseError] = m.parseError
	}
	if m.truncated {
		v[fTruncated] = true
	}
	return v
}

// appendJSON appends m as a JSON object with the fields toMap has, in a
// fixed order (structured data sorted by id and name).
func (m *message) appendJSON(b []byte) []byte {
	b = append(b, '{')
	first := true
	key := func(k string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, '"', ':')
	}
	str := func(k, s string) {
		if s != "" {
			key(k)
			b = appendJSONString(b, s)
		}
	}
	if m.hasPri {
		key(fFacility)
		b = strconv.AppendUint(b, uint64(m.facility), 10)
		key(fSeverity)
		b = strconv.AppendUint(b, uint64(m.severity), 10)
	}
	str(fTimestamp, m.timestamp)
	str(fHostname, m.hostname)
	str(fAppName, m.appName)
	str(fProcID, m.procID)
	str(fMsgID, m.msgID)
	if len(m.sd) > 0 {
		key(fSD)
		b = append(b, '{')
		var idBuf, nameBuf [8]string // most messages have few: no allocation
		for i, id := range sortedKeys(idBuf[:0], m.sd) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, id)
			b = append(b, ':', '{')
			for j, name := range sortedKeys(nameBuf[:0], m.sd[id]) {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, name)
				b = append(b, ':')
				b = appendJSONString(b, m.sd[id][name])
			}
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	key(fMessage)
	b = appendJSONString(b, m.text)
	str(fFormat, m.format)
	str(fRemote, m.remote)
	str(fRaw, m.raw)
	if m.failed {
		key(fParseError)
		b = appendJSONString(b, m.parseError)
	}
	if m.truncated {
		key(fTruncated)
		b = append(b, "true"...)
	}
	return append(b, '}')
}

// sortedKeys appends m's keys to keys, sorted.
func sortedKeys[V any](keys []string, m map[string]V) []string {
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string: quotes, backslashes and
// control characters escaped, invalid UTF-8 replaced by U+FFFD (as
// encoding/json does), everything else as is.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\\ufffd"...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
