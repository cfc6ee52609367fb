package testkit

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// FreePorts returns n distinct loopback ports that were free for both TCP
// and UDP a moment ago, for a test that must write a port into a config
// before the process that listens on it starts.
//
// The ports are drawn at random from below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range). A port picked by listening on :0 comes
// from that range, and once released it is the kernel's to hand to the next
// listener on :0 or the next outgoing connection: in CI a node's admin
// listener on 127.0.0.1:0 took the port picked for another node's Kafka
// listener. Below the range only another test picking the same random port
// can collide.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	lo := ephemeralLow()
	const floor = 10000
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 5000 {
			t.Fatalf("testkit.FreePorts: no %d free ports in [%d, %d) after %d tries", n, floor, lo, tries)
		}
		l, port, err := listenBelow(floor, lo)
		if err != nil {
			continue
		}
		pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			_ = l.Close()
			continue
		}
		_ = pc.Close()
		held = append(held, l)
		ports = append(ports, port)
	}
	return ports
}

// listenBelow listens on a random port in [floor, lo), or on :0 when the
// ephemeral range leaves too little room below it.
func listenBelow(floor, lo int) (net.Listener, int, error) {
	addr := "127.0.0.1:0"
	if lo-floor >= 1000 {
		addr = fmt.Sprintf("127.0.0.1:%d", floor+rand.IntN(lo-floor))
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, 0, err
	}
	return l, l.Addr().(*net.TCPAddr).Port, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range, 32768
// (Linux's default) when it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return lo
}
