package perf

import (
	"crypto/rand"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkLoopbackLimit measures what this machine can move over a loopback
// TCP socket, the ceiling for any broker's fetch throughput here: sendfile
// of a page-cached file (what the std engine does for record bytes) and
// write(2) from memory. The reader drains into one reused buffer, as the
// raw fetch client does.
func BenchmarkLoopbackLimit(b *testing.B) {
	const fileSize = 64 << 20
	path := filepath.Join(b.TempDir(), "data")
	data := make([]byte, fileSize)
	_, _ = rand.Read(data)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"sendfile", "write"} {
		b.Run(mode, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			done := make(chan int64, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					done <- 0
					return
				}
				defer c.Close()
				// A plain read loop: io.CopyBuffer into io.Discard would
				// read in io.Discard's small chunks and measure the reader.
				buf := make([]byte, 1<<20)
				var n int64
				for {
					k, err := c.Read(buf)
					n += int64(k)
					if err != nil {
						break
					}
				}
				done <- n
			}()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			b.SetBytes(fileSize)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if mode == "sendfile" {
					// TCPConn.ReadFrom uses sendfile(2) for an *os.File.
					if _, err := f.Seek(0, io.SeekStart); err != nil {
						b.Fatal(err)
					}
					if _, err := c.(*net.TCPConn).ReadFrom(f); err != nil {
						b.Fatal(err)
					}
				} else if _, err := c.Write(data); err != nil {
					b.Fatal(err)
				}
			}
			c.Close()
			<-done
		})
	}
}
