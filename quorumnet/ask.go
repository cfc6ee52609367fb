package quorumnet

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"github.com/sluice-io/sluice/netio"
)

// Ask sends one request on a connection of its own to the CONTROLLER
// listener at addr and returns the answer's payload: for the rare calls
// made before a Client's peers are known (ChannelIdentity at start-up).
// The connection is closed before Ask returns; ctx bounds the whole call.
func Ask(ctx context.Context, addr string, from int32, ch Channel, payload []byte) ([]byte, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	clientID := fmt.Sprintf("sluice-quorum-%d", from)
	b := make([]byte, 4, 64+len(payload))
	b = netio.AppendRequestHeader(b, APIKey, APIVersion, 1, &clientID)
	b = Request{From: from, Channel: ch, Payload: payload}.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	if _, err := conn.Write(b); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, addr, err)
	}
	fr := netio.NewFrameReader(bufio.NewReader(conn), netio.DefaultMaxRequestBytes)
	frame, err := fr.Next()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, addr, err)
	}
	corr, body, err := netio.ReadResponseHeader(frame, APIKey, APIVersion)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, addr, err)
	}
	if corr != 1 {
		return nil, fmt.Errorf("%w: %s answered correlation id %d", ErrUnreachable, addr, corr)
	}
	resp, err := ParseResponse(body)
	if err != nil {
		return nil, fmt.Errorf("quorumnet: %s: %w", addr, err)
	}
	if err := resp.Err(); err != nil {
		return nil, fmt.Errorf("quorumnet: %s refused the %s request: %w", addr, ch, err)
	}
	return append([]byte(nil), resp.Payload...), nil
}
