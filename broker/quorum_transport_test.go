package broker

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testkit"
	"github.com/sluice-io/sluice/metalog"
	"github.com/sluice-io/sluice/metarepl"
	"github.com/sluice-io/sluice/netio"
	"github.com/sluice-io/sluice/quorumnet"
)

// startQuorumNode starts node 1 as a cluster's controller, its CONTROLLER
// listener on cport, in dir.
func startQuorumNode(t *testing.T, dir string, cport int, sets ...string) *testBroker {
	t.Helper()
	return startTestBrokerIn(t, dir, append([]string{"node.id=1", "process.roles=broker,controller",
		fmt.Sprintf("controller.quorum.voters=1@127.0.0.1:%d", cport), "controller.listener.names=CONTROLLER",
		fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:%d", cport)}, sets...)...)
}

type delivered struct {
	from    int32
	payload string
}

// echoQuorum registers handlers on tb: envelopes go to the returned
// channel, fetches are answered with the fetch offset as the high
// watermark.
func echoQuorum(tb *testBroker) <-chan delivered {
	got := make(chan delivered, 1000)
	tb.setQuorumHandlers(quorumHandlers{
		deliver: func(from int32, payload []byte) error {
			if string(payload) == "refuse" {
				return errors.New("inbox full")
			}
			got <- delivered{from, string(payload)}
			return nil
		},
		fetch: quorumnet.FetchHandler(func(_ context.Context, req metarepl.FetchRequest) metarepl.FetchResponse {
			return metarepl.FetchResponse{Epoch: req.CurrentEpoch, HighWatermark: req.FetchOffset}
		}),
	})
	return got
}

func quorumClient(t *testing.T, self int32, peers map[int32]string) *quorumnet.Client {
	t.Helper()
	c, err := quorumnet.New(quorumnet.Config{NodeID: self, Peers: peers, MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func quorumFetch(c *quorumnet.Client, self int32, offset int64, within time.Duration) (metarepl.FetchResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	return c.Fetch(ctx, 1, metarepl.FetchRequest{Replica: metalog.Voter{ID: self}, CurrentEpoch: 2, FetchOffset: offset})
}

// awaitDelivered sends payload to node 1 until it arrives.
func awaitDelivered(t *testing.T, c *quorumnet.Client, got <-chan delivered, payload string) delivered {
	t.Helper()
	var d delivered
	testkit.Eventually(t, 10*time.Second, "envelope "+payload, func() bool {
		c.Send(1, []byte(payload))
		for {
			select {
			case d = <-got:
				if d.payload == payload {
					return true
				}
			case <-time.After(20 * time.Millisecond):
				return false
			}
		}
	})
	return d
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, nc: nc, fr: netio.NewFrameReader(nc, 1<<30)}
}

// quorumRaw sends one quorum request of version with body and returns
// the answer's body, or the read error.
func quorumRaw(c *rawConn, version int16, body []byte) ([]byte, error) {
	c.corr++
	frame := netio.AppendRequestHeader(make([]byte, 4), quorumnet.APIKey, version, c.corr, kmsg.StringPtr("test"))
	frame = append(frame, body...)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	if _, err := c.nc.Write(frame); err != nil {
		return nil, err
	}
	payload, err := c.fr.Next()
	if err != nil {
		return nil, err
	}
	corr, rest, err := netio.ReadResponseHeader(payload, quorumnet.APIKey, version)
	if err == nil && corr != c.corr {
		err = fmt.Errorf("correlation id %d, want %d", corr, c.corr)
	}
	return rest, err
}

func quorumRawAnswer(t *testing.T, c *rawConn, version int16, req quorumnet.Request) quorumnet.Response {
	t.Helper()
	body, err := quorumRaw(c, version, req.AppendTo(nil))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := quorumnet.ParseResponse(body)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// assertNotAdvertised checks ApiVersions on addr lists Kafka's keys only.
func assertNotAdvertised(t *testing.T, addr string) {
	t.Helper()
	av := do[*kmsg.ApiVersionsResponse](dialRaw(t, addr), kmsg.NewPtrApiVersionsRequest(), 3)
	for _, k := range av.ApiKeys {
		if k.ApiKey == quorumnet.APIKey || kmsg.RequestForKey(k.ApiKey) == nil {
			t.Fatalf("ApiVersions on %s lists key %d", addr, k.ApiKey)
		}
	}
}

// The quorum's request on a controller's CONTROLLER listener, with the
// quorumnet client: refused while nothing is registered, then envelopes
// and fetches reach the handlers with the sender's id; refused on the
// PLAINTEXT listener; a malformed body closes only its connection; never
// in ApiVersions.
func TestQuorumTransport(t *testing.T) { forEachEngine(t, testQuorumTransport) }

func testQuorumTransport(t *testing.T, engine string) {
	cport := testkit.FreePorts(t, 1)[0]
	tb := startQuorumNode(t, t.TempDir(), cport, "netio.engine="+engine)
	caddr := fmt.Sprintf("127.0.0.1:%d", cport)
	c := quorumClient(t, 2, map[int32]string{1: caddr})

	// Nothing registered yet: an error answer, the connection kept.
	if _, err := quorumFetch(c, 2, 0, 5*time.Second); !errors.Is(err, kerr.BrokerNotAvailable) {
		t.Fatalf("fetch with no handler: %v, want BROKER_NOT_AVAILABLE", err)
	}
	testkit.Eventually(t, 5*time.Second, "an envelope refused with no handler", func() bool {
		c.Send(1, []byte("early"))
		return c.Stats().Refused > 0
	})

	got := echoQuorum(tb)
	if d := awaitDelivered(t, c, got, "prepare"); d.from != 2 {
		t.Fatalf("envelope from %d, want 2", d.from)
	}
	resp, err := quorumFetch(c, 2, 33, 5*time.Second)
	if err != nil || resp.Epoch != 2 || resp.HighWatermark != 33 {
		t.Fatalf("fetch: %+v, %v", resp, err)
	}
	// A fetch in another node's name, and a handler's error, are error
	// answers.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err = c.Fetch(ctx, 1, metarepl.FetchRequest{Replica: metalog.Voter{ID: 3}})
	cancel()
	if !errors.Is(err, kerr.UnknownServerError) {
		t.Fatalf("fetch as another node: %v", err)
	}
	refused := c.Stats().Refused
	testkit.Eventually(t, 5*time.Second, "an envelope the handler refuses", func() bool {
		c.Send(1, []byte("refuse"))
		return c.Stats().Refused > refused
	})

	// On the PLAINTEXT listener: refused, connection kept.
	pc := quorumClient(t, 2, map[int32]string{1: tb.addr})
	if _, err := quorumFetch(pc, 2, 0, 5*time.Second); !errors.Is(err, kerr.InvalidRequest) {
		t.Fatalf("fetch on the PLAINTEXT listener: %v, want INVALID_REQUEST", err)
	}
	raw := dialRaw(t, tb.addr)
	if r := quorumRawAnswer(t, raw, 0, quorumnet.Request{From: 2, Channel: quorumnet.ChannelEnvelope, Payload: []byte("x")}); r.ErrorCode != quorumnet.CodeWrongListener {
		t.Fatalf("envelope on the PLAINTEXT listener: %+v", r)
	}
	if av := do[*kmsg.ApiVersionsResponse](raw, kmsg.NewPtrApiVersionsRequest(), 3); av.ErrorCode != 0 {
		t.Fatalf("ApiVersions after a refused quorum request: %d", av.ErrorCode)
	}
	select {
	case d := <-got:
		t.Fatalf("the PLAINTEXT listener delivered %+v", d)
	default:
	}

	// Another version: UNSUPPORTED_VERSION in version 0's answer.
	ctrl := dialRaw(t, caddr)
	if r := quorumRawAnswer(t, ctrl, 1, quorumnet.Request{From: 2, Channel: quorumnet.ChannelEnvelope}); r.ErrorCode != quorumnet.CodeUnsupportedVersion {
		t.Fatalf("version 1: %+v", r)
	}
	// Malformed bodies close their connection; the broker serves on.
	for name, body := range map[string][]byte{
		"short":           {0, 0, 0},
		"unknown channel": quorumnet.Request{From: 2, Channel: 7}.AppendTo(nil),
		"bad length":      append(quorumnet.Request{From: 2, Channel: quorumnet.ChannelFetch, Payload: []byte("ab")}.AppendTo(nil), 'c'),
	} {
		if _, err := quorumRaw(dialRaw(t, caddr), 0, body); err == nil {
			t.Fatalf("%s body answered", name)
		}
	}
	if d := awaitDelivered(t, c, got, "after malformed"); d.from != 2 {
		t.Fatalf("envelope from %d", d.from)
	}
	if _, err := quorumFetch(c, 2, 1, 5*time.Second); err != nil {
		t.Fatalf("fetch after malformed requests: %v", err)
	}

	assertNotAdvertised(t, tb.addr)
	assertNotAdvertised(t, caddr)
}

// A node without the controller role has no CONTROLLER listener: its one
// listener refuses the request.
func TestQuorumRefusedWithoutControllerRole(t *testing.T) {
	tb := startTestBroker(t)
	echoQuorum(tb)
	r := quorumRawAnswer(t, tb.raw(t), 0, quorumnet.Request{From: 2, Channel: quorumnet.ChannelFetch})
	if r.ErrorCode != quorumnet.CodeWrongListener || len(r.Payload) != 0 {
		t.Fatalf("answer %+v", r)
	}
}

// The controller node stops: fetches fail within their deadline and
// envelopes are dropped without blocking; it restarts on the same port
// and the client reconnects by itself.
func TestQuorumTransportPeerRestart(t *testing.T) {
	cport := testkit.FreePorts(t, 1)[0]
	dir := t.TempDir()
	tb := startQuorumNode(t, dir, cport)
	got := echoQuorum(tb)
	c := quorumClient(t, 3, map[int32]string{1: fmt.Sprintf("127.0.0.1:%d", cport)})
	if d := awaitDelivered(t, c, got, "before"); d.from != 3 {
		t.Fatalf("envelope from %d", d.from)
	}
	if err := tb.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := quorumFetch(c, 3, 0, time.Second); err == nil {
		t.Fatal("fetch from a stopped node succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("fetch with a 1s deadline returned after %v", d)
	}
	testkit.Eventually(t, 5*time.Second, "envelopes to a stopped node to be dropped", func() bool {
		dropped := c.Stats().Dropped
		c.Send(1, []byte("lost"))
		return c.Stats().Dropped > dropped
	})

	tb = startQuorumNode(t, dir, cport)
	got = echoQuorum(tb)
	testkit.EventuallyNil(t, 10*time.Second, func() error {
		_, err := quorumFetch(c, 3, 5, time.Second)
		return err
	})
	if d := awaitDelivered(t, c, got, "after"); d.from != 3 {
		t.Fatalf("envelope from %d", d.from)
	}
}

type addrListener struct {
	net.Listener
	addr net.Addr
}

func (l addrListener) Addr() net.Addr { return l.addr }

// A connection is on the CONTROLLER listener when its local address is
// the listener's, or has the port of a wildcard listener.
func TestOnControllerListener(t *testing.T) {
	tcp := func(ip string, port int) *net.TCPAddr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: port} }
	for _, c := range []struct {
		ln    net.Addr // nil: no CONTROLLER listener
		local net.Addr
		want  bool
	}{
		{tcp("127.0.0.1", 9093), tcp("127.0.0.1", 9093), true},
		{tcp("127.0.0.1", 9093), tcp("127.0.0.1", 9092), false},
		{tcp("127.0.0.1", 9093), tcp("127.0.0.2", 9093), false},
		{tcp("0.0.0.0", 9093), tcp("10.1.2.3", 9093), true},
		{tcp("::", 9093), tcp("127.0.0.1", 9093), true},
		{tcp("::", 9093), tcp("::1", 9092), false},
		{tcp("127.0.0.1", 9093), nil, false},
		{nil, tcp("127.0.0.1", 9093), false},
	} {
		b := &Broker{}
		if c.ln != nil {
			b.ctrlListener = addrListener{addr: c.ln}
		}
		if got := b.onControllerListener(netio.ConnInfo{Local: c.local}); got != c.want {
			t.Errorf("listener %v, local %v: %v, want %v", c.ln, c.local, got, c.want)
		}
	}
}
