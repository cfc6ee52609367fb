package cli

import (
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// add-voter sends AddRaftVoter with the voter, its directory id and its
// controller endpoint, retries NOT_CONTROLLER, and reports a refusal with
// the broker's message; remove-voter likewise.
func TestClusterAddRemoveVoter(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ClusterID("fake"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := strings.Join(c.ListenAddrs(), ",")
	// kfake serves no membership API: advertise every key kmsg knows, so
	// the client sends them to the interceptors below.
	c.ControlKey(int16(kmsg.ApiVersions), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := kr.(*kmsg.ApiVersionsRequest).ResponseKind().(*kmsg.ApiVersionsResponse)
		for k := int16(0); k < 100; k++ {
			if req := kmsg.RequestForKey(k); req != nil {
				resp.ApiKeys = append(resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MaxVersion: req.MaxVersion()})
			}
		}
		return resp, nil, true
	})
	var mu sync.Mutex
	var adds []*kmsg.AddRaftVoterRequest
	var removes []*kmsg.RemoveRaftVoterRequest
	c.ControlKey(int16(kmsg.AddRaftVoter), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		mu.Lock()
		defer mu.Unlock()
		req := kr.(*kmsg.AddRaftVoterRequest)
		adds = append(adds, req)
		resp := req.ResponseKind().(*kmsg.AddRaftVoterResponse)
		if len(adds) == 1 {
			resp.ErrorCode = kerr.NotController.Code // the controller moved: retried
		}
		return resp, nil, true
	})
	c.ControlKey(int16(kmsg.RemoveRaftVoter), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		mu.Lock()
		defer mu.Unlock()
		req := kr.(*kmsg.RemoveRaftVoterRequest)
		removes = append(removes, req)
		resp := req.ResponseKind().(*kmsg.RemoveRaftVoterResponse)
		resp.ErrorCode, resp.ErrorMessage = kerr.VoterNotFound.Code, kmsg.StringPtr("3/ab is not a voter")
		return resp, nil, true
	})

	const dir = "00112233445566778899aabbccddeeff"
	r := runCLI("cluster", "add-voter", "--brokers", brokers, "--voter-id", "3", "--directory-id", dir, "--endpoint", "ctl3:9093")
	if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "Voter 3 (directory id "+dir+") added") {
		t.Fatalf("add-voter: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	mu.Lock()
	if len(adds) != 2 {
		t.Fatalf("%d AddRaftVoter requests, want 2 (one NOT_CONTROLLER, retried)", len(adds))
	}
	a := adds[1]
	if a.VoterID != 3 || a.VoterDirectoryID != [16]byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff} ||
		len(a.Listeners) != 1 || a.Listeners[0].Name != "CONTROLLER" || a.Listeners[0].Host != "ctl3" || a.Listeners[0].Port != 9093 || a.TimeoutMillis <= 0 {
		t.Fatalf("AddRaftVoter request %+v", a)
	}
	mu.Unlock()

	// Kafka's base64 form of the same directory id.
	r = runCLI("cluster", "remove-voter", "--brokers", brokers, "--voter-id", "3", "--directory-id", "ABEiM0RVZneImaq7zN3u_w")
	if r.code != 1 || !strings.Contains(r.stderr, "VOTER_NOT_FOUND") || !strings.Contains(r.stderr, "3/ab is not a voter") {
		t.Fatalf("remove-voter of an unknown voter: exit %d, stderr %q", r.code, r.stderr)
	}
	mu.Lock()
	if len(removes) != 1 || removes[0].VoterID != 3 || removes[0].VoterDirectoryID != a.VoterDirectoryID {
		t.Fatalf("RemoveRaftVoter requests %+v", removes)
	}
	mu.Unlock()

	for _, args := range [][]string{
		{"add-voter", "--voter-id", "3", "--directory-id", dir},                        // no endpoint
		{"add-voter", "--directory-id", dir, "--endpoint", "h:1"},                      // no voter id
		{"remove-voter", "--voter-id", "3", "--directory-id", "nothex"},                // bad directory id
		{"remove-voter", "--voter-id", "3", "--directory-id", strings.Repeat("0", 32)}, // zero
	} {
		if r := runCLI(append([]string{"cluster"}, append(args, "--brokers", brokers)...)...); r.code != 2 {
			t.Errorf("%v: exit %d (stderr %q), want 2", args, r.code, r.stderr)
		}
	}
}
