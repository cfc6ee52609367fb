package perf

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawFetchVersion is the Fetch version raw mode speaks: topics by name and
// no tagged fields (Kafka 2.3 and later, kfake, Sluice), so the framing here
// stays a few lines.
const rawFetchVersion = 11

// wireConn is a bare Kafka connection for raw fetching. Requests are encoded
// with kmsg; each response is read into one buffer reused for the life of
// the connection and parsed in place (kmsg keeps record batches as slices of
// it), so what the client spends per fetched byte is the kernel's copy out
// of the socket and nothing else: a general client allocates and clears a
// buffer per response, which on two cores caps the rate at the client's
// pace rather than the broker's.
type wireConn struct {
	nc   net.Conn
	out  []byte
	buf  []byte
	corr int32
}

func dialWire(ctx context.Context, addr string, timeout time.Duration) (*wireConn, error) {
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("raw fetch connection to %s: %w", addr, err)
	}
	return &wireConn{nc: nc}, nil
}

func (c *wireConn) close() { c.nc.Close() }

// fetch sends req at rawFetchVersion and decodes the answer into a
// response whose record batches alias the connection's buffer: they are
// valid until the next fetch. The deadline bounds the whole round trip.
func (c *wireConn) fetch(req *kmsg.FetchRequest, deadline time.Time) (*kmsg.FetchResponse, error) {
	req.SetVersion(rawFetchVersion)
	c.corr++
	// Request header v1: api key, version, correlation id, client id.
	c.out = append(c.out[:0], 0, 0, 0, 0)
	c.out = binary.BigEndian.AppendUint16(c.out, uint16(req.Key()))
	c.out = binary.BigEndian.AppendUint16(c.out, uint16(rawFetchVersion))
	c.out = binary.BigEndian.AppendUint32(c.out, uint32(c.corr))
	c.out = binary.BigEndian.AppendUint16(c.out, uint16(len(clientID)))
	c.out = append(c.out, clientID...)
	c.out = req.AppendTo(c.out)
	binary.BigEndian.PutUint32(c.out, uint32(len(c.out)-4))
	if err := c.nc.SetDeadline(deadline); err != nil {
		return nil, err
	}
	if _, err := c.nc.Write(c.out); err != nil {
		return nil, fmt.Errorf("sending fetch: %w", err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		return nil, fmt.Errorf("reading fetch response: %w", err)
	}
	n := int(int32(binary.BigEndian.Uint32(size[:])))
	if n < 4 || n > 1<<30 {
		return nil, fmt.Errorf("fetch response of %d bytes", n)
	}
	if cap(c.buf) < n {
		c.buf = make([]byte, n)
	}
	c.buf = c.buf[:n]
	if _, err := io.ReadFull(c.nc, c.buf); err != nil {
		return nil, fmt.Errorf("reading fetch response: %w", err)
	}
	// Response header v0: the correlation id.
	if corr := int32(binary.BigEndian.Uint32(c.buf)); corr != c.corr {
		return nil, fmt.Errorf("fetch response for correlation id %d, want %d", corr, c.corr)
	}
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	resp.SetVersion(rawFetchVersion)
	if err := resp.ReadFrom(c.buf[4:]); err != nil {
		return nil, fmt.Errorf("decoding fetch response: %w", err)
	}
	return resp, nil
}
