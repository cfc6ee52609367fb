package main

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"
)

// listener is one socket: a UDP socket, or a TCP listener (plain or TLS)
// with a reader per connection.
type listener struct {
	tr        transport
	url       string         // e.g. tcp://0.0.0.0:6514, the source partition
	partition map[string]any // shared by its records, never changed
	seq       atomic.Int64
	ln        net.Listener
	pc        *net.UDPConn
	open      atomic.Int64 // connections being served
}

func (t *task) listen(tr transport) (*listener, error) {
	addr := t.cfg.listenAddr()
	l := &listener{tr: tr}
	switch tr {
	case udpT:
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("syslog UDP listener on %s: %w", addr, err)
		}
		pc, err := net.ListenUDP("udp", ua)
		if err != nil {
			return nil, fmt.Errorf("syslog UDP listener on %s: %w", addr, err)
		}
		if t.cfg.udpRecvBuf > 0 {
			if err := pc.SetReadBuffer(t.cfg.udpRecvBuf); err != nil {
				_ = pc.Close()
				return nil, fmt.Errorf("syslog UDP listener on %s: %s=%d: %w", addr, kUDPRecvBuf, t.cfg.udpRecvBuf, err)
			}
		}
		l.pc = pc
	case tcpT, tlsT:
		var tlsConf *tls.Config
		if tr == tlsT {
			cert, err := tls.LoadX509KeyPair(t.cfg.certPath, t.cfg.keyPath)
			if err != nil {
				return nil, fmt.Errorf("syslog TLS listener: loading %s=%s and %s=%s: %w", kCert, t.cfg.certPath, kKey, t.cfg.keyPath, err)
			}
			tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("syslog %s listener on %s: %w", tr, addr, err)
		}
		if tlsConf != nil {
			ln = tls.NewListener(ln, tlsConf)
		}
		l.ln = ln
	}
	l.url = string(tr) + "://" + addr
	l.partition = map[string]any{listenerKey: l.url}
	return l, nil
}

func (l *listener) close() {
	if l.ln != nil {
		_ = l.ln.Close()
	}
	if l.pc != nil {
		_ = l.pc.Close()
	}
}

func (l *listener) serve(t *task) {
	if l.pc != nil {
		l.serveUDP(t)
		return
	}
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if t.isStopped() || errors.Is(err, net.ErrClosed) {
				return
			}
			t.log.Warn("syslog accept failed", "listener", l.url, "error", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if int(l.open.Load()) >= t.cfg.maxConns {
			t.stats.rejected.Add(1)
			t.warnOnce(3, "syslog connection refused: syslog.tcp.max.connections reached",
				"listener", l.url, "remote", c.RemoteAddr().String(), "max", t.cfg.maxConns)
			_ = c.Close()
			continue
		}
		t.mu.Lock()
		if t.isStopped() {
			t.mu.Unlock()
			_ = c.Close()
			return
		}
		t.conns[c] = struct{}{}
		l.open.Add(1)
		t.wg.Add(1)
		t.mu.Unlock()
		go func() {
			defer t.wg.Done()
			defer func() {
				t.mu.Lock()
				delete(t.conns, c)
				t.mu.Unlock()
				l.open.Add(-1)
				_ = c.Close()
			}()
			l.serveConn(t, c)
		}()
	}
}

// serveConn reads one TCP or TLS connection until it ends. While the queue
// is full emit waits, so nothing more is read: the backpressure reaches
// the sender through TCP's window.
func (l *listener) serveConn(t *task, c net.Conn) {
	remote := c.RemoteAddr().String()
	p := newParser(t.cfg.tz, t.cfg.key, t.cfg.format, t.cfg.includeRaw)
	fr := newFramer(t.cfg.maxBytes)
	buf := make([]byte, readSize)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			recv := time.Now()
			fr.push(buf[:n])
			for {
				f, ok := fr.next()
				if !ok {
					break
				}
				if !t.emit(l, p, f, remote, recv, true) {
					return
				}
			}
		}
		if err != nil {
			if f, ok := fr.end(); ok {
				t.emit(l, p, f, remote, time.Now(), true)
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && !t.isStopped() {
				t.log.Debug("syslog connection ended", "listener", l.url, "remote", remote, "error", err)
			}
			return
		}
	}
}

// serveUDP reads datagrams, one message each (RFC 5426). The buffer is one
// byte longer than a kept message so that a longer one shows (the kernel
// cuts a datagram to the buffer silently).
func (l *listener) serveUDP(t *task) {
	p := newParser(t.cfg.tz, t.cfg.key, t.cfg.format, t.cfg.includeRaw)
	buf := make([]byte, min(t.cfg.maxBytes, maxUDPBytes)+1)
	for {
		n, addr, err := l.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if t.isStopped() || errors.Is(err, net.ErrClosed) {
				return
			}
			t.log.Warn("syslog UDP read failed", "listener", l.url, "error", err)
			continue
		}
		f := datagramFrame(buf[:n], t.cfg.maxBytes)
		if len(f.data) == 0 {
			continue
		}
		t.emit(l, p, f, addr.String(), time.Now(), false)
	}
}

// datagramFrame is a UDP datagram's message: without the trailing LF or
// NUL some senders add, and cut to max bytes.
func datagramFrame(d []byte, maxBytes int) frame {
	f := frame{size: len(d)}
	if len(d) > maxBytes {
		f.truncated, f.size = true, -1
		d = d[:maxBytes]
	}
	f.data = bytes.TrimRight(d, "\r\n\x00")
	return f
}
