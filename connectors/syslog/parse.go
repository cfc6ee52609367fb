package main

import (
	"errors"
	"net"
	"time"

	syslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/auto"
	"github.com/leodido/go-syslog/v4/rfc3164"
	"github.com/leodido/go-syslog/v4/rfc5424"
)

// keyMode is what a record's key is (syslog.record.key).
type keyMode int

const (
	keyNone keyMode = iota
	keyHost         // the message's HOSTNAME, else the sender's IP
	keyApp          // the message's APP-NAME (or RFC 3164 TAG), else null
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

// parser turns one framed message into a record's key and value. It keeps
// a go-syslog machine, which is not safe for concurrent use: one parser per
// connection (or UDP socket).
type parser struct {
	m          syslog.Machine
	tz         *time.Location
	key        keyMode
	includeRaw bool
}

func newParser(tz *time.Location, key keyMode, includeRaw bool) *parser {
	// RFC 5424 or RFC 3164 is chosen per message by what follows the PRI
	// (a version digit and a space, or a month name), falling back to
	// the other grammar when the first fails. RFC 3164 is parsed with
	// the extensions senders use (RFC 3339 and fractional timestamps,
	// zero-padded days); its year-less timestamps are completed in
	// value, from the receive time.
	m := auto.NewMachine(
		auto.WithRFC3164Options(
			rfc3164.WithLocaleTimezone(tz),
			rfc3164.WithRFC3339(),
			rfc3164.WithSecondFractions(),
			rfc3164.WithLenientDay(),
			rfc3164.WithEmbeddedNewlines(),
		),
		auto.WithRFC5424Options(),
	)
	return &parser{m: m, tz: tz, key: key, includeRaw: includeRaw}
}

// parsed is one message made into a record's key and value.
type parsed struct {
	key    any // string or nil
	value  map[string]any
	failed bool
}

// parse parses msg, received from remote (ip:port) at recv. A message that
// parses as neither RFC is kept whole: its value has the text as message
// and raw, and the parser's complaint as parse_error.
func (p *parser) parse(msg []byte, truncated bool, remote string, recv time.Time) parsed {
	v := make(map[string]any, 12)
	v[fRemote] = remote
	if truncated {
		v[fTruncated] = true
	}
	m, err := p.m.Parse(msg)
	if m == nil || err != nil {
		text := string(msg)
		v[fMessage], v[fRaw] = text, text
		v[fParseError] = parseErrorText(err)
		out := parsed{value: v, failed: true}
		if p.key == keyHost {
			out.key = hostOf(remote)
		}
		return out
	}
	var base *syslog.Base
	switch sm := m.(type) {
	case *rfc5424.SyslogMessage:
		base = &sm.Base
		v[fFormat] = "rfc5424"
		if sm.StructuredData != nil && len(*sm.StructuredData) > 0 {
			sd := make(map[string]any, len(*sm.StructuredData))
			for id, params := range *sm.StructuredData {
				pm := make(map[string]any, len(params))
				for k, pv := range params {
					pm[k] = pv
				}
				sd[id] = pm
			}
			v[fSD] = sd
		}
	case *rfc3164.SyslogMessage:
		base = &sm.Base
		v[fFormat] = "rfc3164"
	default:
		// auto only makes the two; anything else is a library change.
		text := string(msg)
		v[fMessage], v[fRaw], v[fParseError] = text, text, "unknown message type"
		return parsed{value: v, failed: true}
	}
	if base.Facility != nil {
		v[fFacility] = int64(*base.Facility)
		v[fSeverity] = int64(*base.Severity)
	}
	if base.Timestamp != nil {
		ts := *base.Timestamp
		if v[fFormat] == "rfc3164" {
			ts = completeYear(ts, recv.In(p.tz))
		}
		v[fTimestamp] = ts.Format(time.RFC3339Nano)
	}
	setStr(v, fHostname, base.Hostname)
	setStr(v, fAppName, base.Appname)
	setStr(v, fProcID, base.ProcID)
	setStr(v, fMsgID, base.MsgID)
	if base.Message != nil {
		v[fMessage] = *base.Message
	} else {
		v[fMessage] = ""
	}
	if p.includeRaw {
		v[fRaw] = string(msg)
	}
	out := parsed{value: v}
	switch p.key {
	case keyHost:
		if base.Hostname != nil {
			out.key = *base.Hostname
		} else {
			out.key = hostOf(remote)
		}
	case keyApp:
		if base.Appname != nil {
			out.key = *base.Appname
		}
	}
	return out
}

func setStr(v map[string]any, k string, s *string) {
	if s != nil && *s != "-" {
		v[k] = *s
	}
}

func parseErrorText(err error) string {
	if err == nil {
		return "not a syslog message"
	}
	var pe *auto.ParseError
	if errors.As(err, &pe) && pe.Err != nil {
		return pe.Err.Error()
	}
	return err.Error()
}

// hostOf is the IP of an ip:port address (the address itself when it has
// no port).
func hostOf(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// completeYear gives an RFC 3164 timestamp, which has no year, the year it
// most likely has: the receive time's, or the year before when that would
// put it more than a month ahead (a December message read in January).
// RFC 3339 timestamps some senders use instead carry their year and are
// left alone.
func completeYear(ts, recv time.Time) time.Time {
	if ts.Year() != 0 {
		return ts
	}
	year := recv.Year()
	t := time.Date(year, ts.Month(), ts.Day(), ts.Hour(), ts.Minute(), ts.Second(), ts.Nanosecond(), ts.Location())
	if t.Sub(recv) > 31*24*time.Hour {
		t = time.Date(year-1, ts.Month(), ts.Day(), ts.Hour(), ts.Minute(), ts.Second(), ts.Nanosecond(), ts.Location())
	}
	return t
}
