package broker

import (
	"io"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Every version ApiVersions advertises must be answered with a response
// that decodes at that version: the table and the handlers cannot drift.
func TestEveryAdvertisedVersionAnswers(t *testing.T) {
	forEachEngine(t, testEveryAdvertisedVersionAnswers)
}

func testEveryAdvertisedVersionAnswers(t *testing.T, engine string) {
	tb := startTestBroker(t, "netio.engine="+engine)
	c := tb.raw(t)
	av := do[*kmsg.ApiVersionsResponse](c, kmsg.NewPtrApiVersionsRequest(), 3)
	if av.ErrorCode != 0 {
		t.Fatalf("ApiVersions error %d", av.ErrorCode)
	}
	if len(av.ApiKeys) != len(apiKeys(false)) || len(apiKeys(false)) >= len(registered()) {
		t.Fatalf("advertised %d APIs, %d registered, %d outside a controller quorum", len(av.ApiKeys), len(registered()), len(apiKeys(false)))
	}
	for _, k := range av.ApiKeys {
		if a := lookup(k.ApiKey, k.MinVersion); a == nil || a.min != k.MinVersion || a.max != k.MaxVersion {
			t.Errorf("key %d advertised %d..%d, registered %+v", k.ApiKey, k.MinVersion, k.MaxVersion, a)
		} else if a.quorumOnly {
			t.Errorf("key %d advertised by a node with no controller quorum", k.ApiKey)
		}
		proto := kmsg.RequestForKey(k.ApiKey)
		if proto == nil || proto.MaxVersion() < k.MaxVersion {
			t.Errorf("key %d: advertised v%d beyond what kmsg defines", k.ApiKey, k.MaxVersion)
			continue
		}
		for v := k.MinVersion; v <= k.MaxVersion; v++ {
			req := kmsg.RequestForKey(k.ApiKey)
			if d, ok := req.(interface{ Default() }); ok {
				d.Default()
			}
			if p, ok := req.(*kmsg.ProduceRequest); ok {
				p.Acks = 1 // acks=0 has no response to decode
			}
			if f, ok := req.(*kmsg.FetchRequest); ok {
				f.MaxWaitMillis = 0
			}
			resp := do[kmsg.Response](c, req, v)
			if resp.GetVersion() != v {
				t.Errorf("key %d v%d answered as v%d", k.ApiKey, v, resp.GetVersion())
			}
		}
	}
}

// KIP-511: a client asking for a newer ApiVersions than the broker knows
// gets UNSUPPORTED_VERSION in the v0 format plus the broker's table.
func TestApiVersionsDowngradeAnswer(t *testing.T) { forEachEngine(t, testApiVersionsDowngradeAnswer) }

func testApiVersionsDowngradeAnswer(t *testing.T, engine string) {
	tb := startTestBroker(t, "netio.engine="+engine)
	c := tb.raw(t)
	req := kmsg.NewPtrApiVersionsRequest()
	body := c.send(req, 9) // a version from the future; v0 response format
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(body); err != nil {
		t.Fatal(err)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("error code %d, want UNSUPPORTED_VERSION", resp.ErrorCode)
	}
	found := false
	for _, k := range resp.ApiKeys {
		if k.ApiKey == kmsg.ApiVersions.Int16() {
			found = k.MaxVersion == apis[kmsg.ApiVersions].max
		}
	}
	if !found {
		t.Fatalf("downgrade answer lacks our ApiVersions range: %+v", resp.ApiKeys)
	}
	// The connection stays usable.
	if av := do[*kmsg.ApiVersionsResponse](c, kmsg.NewPtrApiVersionsRequest(), 0); av.ErrorCode != 0 {
		t.Fatalf("follow-up ApiVersions error %d", av.ErrorCode)
	}
}

// A version we do not implement, or an API we do not know, closes the
// connection (as Kafka does) rather than guessing a response format.
func TestUnsupportedVersionClosesConnection(t *testing.T) {
	forEachEngine(t, testUnsupportedVersionClosesConnection)
}

func testUnsupportedVersionClosesConnection(t *testing.T, engine string) {
	tb := startTestBroker(t, "netio.engine="+engine)
	for _, tc := range []struct {
		name    string
		key     int16
		version int16
	}{
		{"fetch v3 (too old)", kmsg.Fetch.Int16(), 3},
		{"fetch v99", kmsg.Fetch.Int16(), 99},
		{"unknown key", 9999, 0},
		{"known key not served (JoinGroup)", kmsg.JoinGroup.Int16(), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tb.raw(t)
			frame := []byte{0, 0, 0, 10, byte(tc.key >> 8), byte(tc.key), byte(tc.version >> 8), byte(tc.version), 0, 0, 0, 1, 0xff, 0xff}
			if _, err := c.nc.Write(frame); err != nil {
				t.Fatal(err)
			}
			if _, err := c.fr.Next(); err != io.EOF && err == nil {
				t.Fatalf("got a response; want the connection closed")
			}
		})
	}
	// The broker is still fine.
	if av := do[*kmsg.ApiVersionsResponse](tb.raw(t), kmsg.NewPtrApiVersionsRequest(), 3); av.ErrorCode != 0 {
		t.Fatal("broker unhealthy after bad requests")
	}
}
