package broker

import (
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testkit"
	"github.com/sluice-io/sluice/netio"
	"github.com/sluice-io/sluice/segment"
)

// testBroker is an in-process broker on an ephemeral loopback port.
type testBroker struct {
	*Broker
	dir  string
	addr string
}

// forEachEngine runs fn once per network engine, as subtests engine=std and
// engine=uring (skipped, saying why, where io_uring is unavailable). Unlike
// itest's, it runs both under -short too: a broker test takes a second.
func forEachEngine(t *testing.T, fn func(t *testing.T, engine string)) {
	testkit.Engines{Unavailable: func(engine string) error {
		if engine == netio.EngineUring {
			return netio.UringSupported()
		}
		return nil
	}}.Run(t, fn)
}

func startTestBroker(t *testing.T, sets ...string) *testBroker {
	t.Helper()
	return startTestBrokerIn(t, t.TempDir(), sets...)
}

func startTestBrokerIn(t *testing.T, dir string, sets ...string) *testBroker {
	t.Helper()
	tb, err := tryStart(t, segment.OSFS(), dir, sets...)
	if err != nil {
		t.Fatal(err)
	}
	if want := tb.cfg.NetioEngine; want != netio.EngineAuto && tb.EngineName() != want {
		t.Fatalf("asked for engine %s, broker runs %s", want, tb.EngineName())
	}
	return tb
}

func (tb *testBroker) client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(tb.addr), kgo.RetryTimeout(5 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (tb *testBroker) admin(t *testing.T) *kadm.Client {
	return kadm.NewClient(tb.client(t))
}

func (tb *testBroker) createTopic(t *testing.T, name string, partitions int32, configs map[string]*string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := tb.admin(t).CreateTopic(ctx, partitions, 1, configs, name)
	if err != nil || resp.Err != nil {
		t.Fatalf("create topic %s: %v %v", name, err, resp.Err)
	}
}

// rawConn speaks the Kafka protocol at exact versions, which kgo does not
// let a caller pin.
type rawConn struct {
	t    *testing.T
	nc   net.Conn
	fr   *netio.FrameReader
	corr int32
}

func (tb *testBroker) raw(t *testing.T) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", tb.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, nc: nc, fr: netio.NewFrameReader(nc, 1<<30)}
}

// frameOf encodes req (at its version) under c's current correlation id.
func frameOf(c *rawConn, req kmsg.Request) []byte {
	body := netio.AppendRequestHeader(nil, req.Key(), req.GetVersion(), c.corr, kmsg.StringPtr("test"))
	body = req.AppendTo(body)
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// send writes req at version and returns the raw response body.
func (c *rawConn) send(req kmsg.Request, version int16) []byte {
	c.t.Helper()
	req.SetVersion(version)
	c.corr++
	if _, err := c.nc.Write(frameOf(c, req)); err != nil {
		c.t.Fatalf("write %T v%d: %v", req, version, err)
	}
	payload, err := c.fr.Next()
	if err != nil {
		c.t.Fatalf("read %T v%d: %v", req, version, err)
	}
	corr, rest, err := netio.ReadResponseHeader(payload, req.Key(), version)
	if err != nil || corr != c.corr {
		c.t.Fatalf("%T v%d: response header corr %d (want %d): %v", req, version, corr, c.corr, err)
	}
	return rest
}

// do sends req at version and decodes the response at that version.
func do[R kmsg.Response](c *rawConn, req kmsg.Request, version int16) R {
	c.t.Helper()
	body := c.send(req, version)
	resp := req.ResponseKind()
	resp.SetVersion(version)
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatalf("decode %T v%d: %v", resp, version, err)
	}
	return resp.(R)
}

func produceSync(t *testing.T, cl *kgo.Client, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}
