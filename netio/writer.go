package netio

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"syscall"
)

// copyBufSize is the size of the pooled buffers file ranges without a file
// descriptor are copied through.
const copyBufSize = 64 << 10

var copyBufPool = sync.Pool{New: func() any {
	b := make([]byte, copyBufSize)
	return &b
}}

// respWriter writes responses to one connection. It is used by that
// connection's writer goroutine only.
type respWriter struct {
	nc   net.Conn
	raw  syscall.RawConn // nil if nc has no file descriptor (net.Pipe, TLS)
	st   *counters
	bufs [][]byte // scratch for writev, reused across responses
}

func newRespWriter(nc net.Conn, st *counters) respWriter {
	w := respWriter{nc: nc, st: st}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			w.raw = raw
		}
	}
	return w
}

// write writes the frame header hdr and then the parts of r. Runs of byte
// parts (with the header in front of the first) go out in one writev each,
// so neither the header nor the body is copied into a contiguous buffer.
func (w *respWriter) write(hdr []byte, r *Response) error {
	r.inlineSmall()
	w.bufs = append(w.bufs[:0], hdr)
	for _, p := range r.parts {
		if p.File == nil {
			w.bufs = append(w.bufs, p.Bytes)
			continue
		}
		if err := w.flush(); err != nil {
			return err
		}
		if err := w.writeFile(p); err != nil {
			return err
		}
	}
	return w.flush()
}

// flush writes the pending byte parts with writev.
func (w *respWriter) flush() error {
	if len(w.bufs) == 0 {
		return nil
	}
	bufs := net.Buffers(w.bufs) // WriteTo consumes its receiver, not w.bufs
	n, err := bufs.WriteTo(w.nc)
	w.st.bytesCopied.Add(n)
	clear(w.bufs) // do not pin response memory until the next write
	w.bufs = w.bufs[:0]
	return err
}

// writeFile sends one file range, with sendfile when possible.
func (w *respWriter) writeFile(p Part) error {
	if fs, ok := p.File.(FdSource); ok && w.raw != nil {
		n, err := sendFile(w.raw, fs.Fd(), p.Off, p.Len)
		runtime.KeepAlive(fs) // the descriptor must outlive the syscalls
		w.st.bytesZeroCopy.Add(n)
		if err == nil {
			return nil
		}
		// Some sources (and non-Linux systems) cannot sendfile at all;
		// that shows before the first byte and we can still copy.
		if n > 0 || !errors.Is(err, errSendfileUnsupported) {
			return err
		}
	}
	return w.copyFile(p)
}

// copyFile sends a file range by reading it into a pooled buffer.
func (w *respWriter) copyFile(p Part) error {
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	off, left := p.Off, p.Len
	for left > 0 {
		chunk := buf[:min(left, int64(len(buf)))]
		k, err := p.File.ReadAt(chunk, off)
		if k < len(chunk) {
			// The frame size is already on the wire; a short range
			// cannot be repaired.
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("netio: reading file range at %d: %w", off, err)
		}
		n, err := w.nc.Write(chunk)
		w.st.bytesCopied.Add(int64(n))
		if err != nil {
			return err
		}
		off += int64(k)
		left -= int64(k)
	}
	return nil
}
