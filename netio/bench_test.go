package netio

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// BenchmarkEngines compares the engines side by side on the same loads:
//
//	small:   ApiVersions-sized echo over 1,000 concurrent connections
//	echo1k:  1 KiB request and response over 4 connections
//	file1m:  1 MiB file-range responses (page-cached) over 4 connections
//
// Each connection runs request/response round trips; the metrics are
// requests/s and response MB/s.
func BenchmarkEngines(b *testing.B) {
	f := bigFile(b, 1<<20)
	loads := []struct {
		name  string
		conns int
		req   int // request body bytes
		h     Handler
		resp  int // response body bytes
	}{
		{"small", 1000, 0, HandlerFunc(echoCorr), len(corrBody(0))},
		{"echo1k", 4, 1024, HandlerFunc(func(ctx context.Context, req *Request) *Response {
			r := &Response{}
			r.AppendBytes(req.Body)
			return r
		}), 1024},
		{"file1m", 4, 0, HandlerFunc(func(ctx context.Context, req *Request) *Response {
			r := &Response{}
			r.AppendFile(fdFile{f}, 0, 1<<20)
			return r
		}), 1 << 20},
	}
	for _, load := range loads {
		for _, kind := range []string{EngineStd, EngineUring} {
			b.Run("load="+load.name+"/engine="+kind, func(b *testing.B) {
				if kind == EngineUring {
					if err := UringSupported(); err != nil {
						b.Skipf("io_uring unavailable: %v", err)
					}
				}
				benchLoad(b, kind, load.conns, load.req, load.resp, load.h)
			})
		}
	}
}

func benchLoad(b *testing.B, kind string, conns, reqSize, respSize int, h Handler) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	eng := makeEngine(b, kind, Config{}, h, nil)
	go eng.Serve(ln)
	defer eng.Close()
	var clients []net.Conn
	for range conns {
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		clients = append(clients, nc)
	}
	req := frame(keyMetadata, 1, 1, nil, make([]byte, reqSize))
	per := max(b.N/conns, 1)
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	b.ResetTimer()
	t0 := time.Now()
	for _, nc := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := bufio.NewReaderSize(nc, 64<<10)
			var sz [4]byte
			for range per {
				if _, err := nc.Write(req); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(br, sz[:]); err != nil {
					errs <- err
					return
				}
				if _, err := br.Discard(int(binary.BigEndian.Uint32(sz[:]))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	b.StopTimer()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	n := float64(per * conns)
	b.ReportMetric(n/el.Seconds(), "req/s")
	b.ReportMetric(n*float64(respSize)/el.Seconds()/1e6, "MB/s")
}
