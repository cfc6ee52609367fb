package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluice-io/sluice/perf/internal/benchkit"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// limits are the machine's ceilings, measured in the same run as the
// workloads; zero means not measured (see Errors).
type limits struct {
	LoopbackTool  string   `json:"loopback_tool"`
	LoopbackMBs   float64  `json:"loopback_tcp_mb_per_sec"`
	SendfileMBs   float64  `json:"sendfile_loopback_mb_per_sec"`
	ReadWriteMBs  float64  `json:"read_write_loopback_mb_per_sec"`
	SeqWriteMBs   float64  `json:"seq_write_1MiB_mb_per_sec"`
	FdatasyncPerS float64  `json:"fdatasync_4KiB_per_sec"`
	FdatasyncMBs  float64  `json:"fdatasync_4KiB_mb_per_sec"`
	Errors        []string `json:"errors,omitempty"`
}

const (
	probeFileSize = 64 << 20
	seqWriteCap   = 2 << 30 // keeps the page-cache write probe from filling the disk
)

// measureLimits runs every probe for d each, in dir (the file system the
// brokers' logs live on). iperf3 is used for loopback TCP when given;
// otherwise a Go writer/reader pair measures the same thing.
func measureLimits(ctx context.Context, dir, iperf3 string, d time.Duration, logf func(string, ...any)) limits {
	var l limits
	fail := func(what string, err error) {
		l.Errors = append(l.Errors, fmt.Sprintf("%s: %v", what, err))
		logf("limits: %s: %v", what, err)
	}
	if iperf3 != "" {
		mbs, err := iperfLoopback(ctx, iperf3, d)
		if err != nil {
			fail("iperf3", err)
		} else {
			l.LoopbackTool, l.LoopbackMBs = "iperf3", mbs
		}
	}
	if l.LoopbackTool == "" {
		mbs, err := socketProbe(d, nil)
		if err != nil {
			fail("loopback probe", err)
		} else {
			l.LoopbackTool, l.LoopbackMBs = "built-in Go probe (write from memory)", mbs
		}
	}
	path := filepath.Join(dir, "limits-probe")
	defer os.Remove(path)
	if err := writeProbeFile(path); err != nil {
		fail("probe file", err)
	} else {
		var err error
		if l.SendfileMBs, err = socketProbe(d, &fileSource{path: path, sendfile: true}); err != nil {
			fail("sendfile", err)
		}
		if l.ReadWriteMBs, err = socketProbe(d, &fileSource{path: path}); err != nil {
			fail("read+write", err)
		}
	}
	var err error
	if l.SeqWriteMBs, err = seqWrite(filepath.Join(dir, "limits-seq"), d); err != nil {
		fail("sequential write", err)
	}
	if l.FdatasyncPerS, l.FdatasyncMBs, err = syncWrite(filepath.Join(dir, "limits-sync"), d); err != nil {
		fail("fdatasync write", err)
	}
	logf("limits: loopback %.0f MB/s (%s), sendfile %.0f MB/s, read+write %.0f MB/s, seq write %.0f MB/s, fdatasync %.0f/s",
		l.LoopbackMBs, l.LoopbackTool, l.SendfileMBs, l.ReadWriteMBs, l.SeqWriteMBs, l.FdatasyncPerS)
	return l
}

// writeProbeFile writes random bytes and reads them back once, so the
// sendfile probe reads from the page cache as a broker's fetch of a recent
// segment does.
func writeProbeFile(path string) error {
	data := make([]byte, probeFileSize)
	_, _ = rand.Read(data)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(io.Discard, f)
	return err
}

// fileSource feeds the socket probe from a file, with sendfile(2) or with
// read(2) into a buffer and write(2) to the socket.
type fileSource struct {
	path     string
	sendfile bool
}

// socketProbe sends for d over a loopback TCP connection and returns the
// receiver's MB/s. The receiver drains into one reused buffer, as a raw
// fetch client does. src nil sends one buffer from memory over and over.
func socketProbe(d time.Duration, src *fileSource) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	type got struct {
		n   int64
		dur time.Duration
	}
	done := make(chan got, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- got{}
			return
		}
		defer c.Close()
		// A plain read loop: io.Copy to io.Discard would read through
		// Discard's own 8 KiB buffer and measure that instead.
		buf := make([]byte, 1<<20)
		var n int64
		start := time.Now()
		for {
			k, err := c.Read(buf)
			n += int64(k)
			if err != nil {
				break
			}
		}
		done <- got{n, time.Since(start)}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	tc := c.(*net.TCPConn)
	buf := make([]byte, 1<<20)
	_, _ = rand.Read(buf)
	var f *os.File
	if src != nil {
		if f, err = os.Open(src.path); err != nil {
			c.Close()
			return 0, err
		}
		defer f.Close()
	}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && err == nil {
		switch {
		case src == nil:
			_, err = tc.Write(buf)
		case src.sendfile:
			// TCPConn.ReadFrom an *os.File is sendfile(2).
			if _, err = f.Seek(0, io.SeekStart); err == nil {
				_, err = tc.ReadFrom(f)
			}
		default:
			var n int
			if n, err = f.Read(buf); err == io.EOF {
				_, err = f.Seek(0, io.SeekStart)
			} else if err == nil {
				_, err = tc.Write(buf[:n])
			}
		}
	}
	c.Close()
	r := <-done
	if err != nil {
		return 0, err
	}
	if r.dur <= 0 {
		return 0, fmt.Errorf("receiver saw nothing")
	}
	return float64(r.n) / r.dur.Seconds() / 1e6, nil
}

// seqWrite writes 1 MiB blocks without any sync for d (or seqWriteCap
// bytes) and returns MB/s: the page cache's speed, the produce path's
// ceiling when nothing is fsynced.
func seqWrite(path string, d time.Duration) (float64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer os.Remove(path)
	defer f.Close()
	buf := make([]byte, 1<<20)
	_, _ = rand.Read(buf)
	var n int64
	start := time.Now()
	for time.Since(start) < d && n < seqWriteCap {
		w, err := f.Write(buf)
		n += int64(w)
		if err != nil {
			return 0, err
		}
	}
	return float64(n) / time.Since(start).Seconds() / 1e6, nil
}

// syncWrite appends 4 KiB blocks with fdatasync(2) after each, for d, and
// returns syncs/s and MB/s: the ceiling of a broker that fsyncs before
// every acknowledgement and cannot group commits.
func syncWrite(path string, d time.Duration) (float64, float64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, 0, err
	}
	defer os.Remove(path)
	defer f.Close()
	buf := make([]byte, 4096)
	_, _ = rand.Read(buf)
	var syncs int
	start := time.Now()
	for time.Since(start) < d {
		if _, err := f.Write(buf); err != nil {
			return 0, 0, err
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return 0, 0, fmt.Errorf("fdatasync: %w", err)
		}
		syncs++
	}
	secs := time.Since(start).Seconds()
	return float64(syncs) / secs, float64(syncs) * 4096 / secs / 1e6, nil
}

// iperfLoopback runs a one-shot iperf3 server and a client on 127.0.0.1.
func iperfLoopback(ctx context.Context, iperf3 string, d time.Duration) (float64, error) {
	port, err := benchkit.FreePort()
	if err != nil {
		return 0, err
	}
	p := strconv.Itoa(port)
	srv := exec.CommandContext(ctx, iperf3, "-s", "-1", "-B", "127.0.0.1", "-p", p)
	srv.SysProcAttr = childAttr()
	if err := srv.Start(); err != nil {
		return 0, fmt.Errorf("start server: %w", err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	// Wait for the listening socket in /proc/net/tcp rather than dialing
	// it: a one-off (-1) server would take a probe connection for its one
	// test and exit.
	for deadline := time.Now().Add(10 * time.Second); !tcpListening(readFile("/proc/net/tcp"), port); {
		if time.Now().After(deadline) {
			return 0, errors.New("server not listening after 10s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	secs := max(1, int(d.Round(time.Second).Seconds()))
	res, err := exec.CommandContext(ctx, iperf3, "-c", "127.0.0.1", "-p", p, "-t", strconv.Itoa(secs), "-J").Output()
	if err != nil {
		if mbs, perr := parseIperf(res); perr != nil && len(res) > 0 {
			return mbs, perr // iperf3 -J reports its own errors in the JSON
		}
		return 0, fmt.Errorf("client: %w", err)
	}
	return parseIperf(res)
}

// tcpListening tells whether the text of /proc/net/tcp holds a socket
// listening on 127.0.0.1:port (local address 0100007F:PORT, state 0A).
func tcpListening(procNetTCP string, port int) bool {
	want := fmt.Sprintf("0100007F:%04X", port)
	for _, line := range strings.Split(procNetTCP, "\n") {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == want && f[3] == "0A" {
			return true
		}
	}
	return false
}

func parseIperf(out []byte) (float64, error) {
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return 0, fmt.Errorf("parse iperf3 -J output: %w", err)
	}
	if r.Error != "" {
		return 0, fmt.Errorf("iperf3: %s", r.Error)
	}
	if r.End.SumReceived.BitsPerSecond <= 0 {
		return 0, fmt.Errorf("iperf3 reported no received throughput")
	}
	return r.End.SumReceived.BitsPerSecond / 8 / 1e6, nil
}
