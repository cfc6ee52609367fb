package netio

import "io"

// FileSource is a file (or file-like object) a Response can send a range of.
// If it also implements FdSource, engines send the range straight from the
// kernel (sendfile(2), io_uring splice) and it never enters Go memory;
// otherwise it is read with ReadAt into a pooled buffer.
//
// Engines read with an explicit offset and never touch the file's shared
// offset, so one file may be sent by many connections at once.
type FileSource interface {
	io.ReaderAt
}

// FdSource is a FileSource backed by an operating-system file descriptor,
// such as *os.File. Note that (*os.File).Fd switches the descriptor to
// blocking mode, which is harmless for regular files.
type FdSource interface {
	FileSource
	Fd() uintptr
}

// Part is one piece of a Response body: either Bytes, or the range
// [Off, Off+Len) of File.
type Part struct {
	Bytes []byte
	File  FileSource
	Off   int64
	Len   int64
}

// Response is a header-less response body made of ordered parts. The engine
// prepends the frame size and the response header (correlation id, plus an
// empty tagged-field section when FlexibleResponse says so) and writes the
// parts in order.
//
// A Response belongs to the engine once the Handler returned it: the handler
// must not modify it, nor the byte slices and file ranges it references,
// until Release is called.
type Response struct {
	parts []Part
	size  int64

	// Release, if set, is called exactly once after the response was
	// written or dropped (dead connection, engine closed), from the engine's
	// goroutine. Use it to return buffers or unpin log segments.
	Release func()

	// CloseAfter makes the engine close the connection once this response
	// was written. A CloseAfter response without parts closes the
	// connection without writing anything: the answer to a request that
	// cannot be understood (unknown API, unsupported version, bad body).
	CloseAfter bool

	// inlined is the pooled buffer the file ranges were copied into by
	// inlineSmall; it goes back to the pool on release.
	inlined *[]byte
}

// AppendBytes appends b to the response. b is referenced, not copied.
func (r *Response) AppendBytes(b []byte) {
	if len(b) == 0 {
		return
	}
	r.parts = append(r.parts, Part{Bytes: b, Len: int64(len(b))})
	r.size += int64(len(b))
}

// AppendFile appends the n bytes of src starting at off. The range must exist
// when the response is written: a short file breaks the frame already
// announced, and the engine then has to close the connection.
func (r *Response) AppendFile(src FileSource, off, n int64) {
	if n == 0 {
		return
	}
	if src == nil || off < 0 || n < 0 {
		panic("netio: AppendFile with nil source or negative range")
	}
	r.parts = append(r.parts, Part{File: src, Off: off, Len: n})
	r.size += n
}

// Len returns the total number of body bytes (excluding the header).
func (r *Response) Len() int64 { return r.size }

// Parts returns the body parts in order. The slice must not be modified.
func (r *Response) Parts() []Part { return r.parts }

// release gives back the buffer inlineSmall took and runs Release, each at
// most once.
func (r *Response) release() {
	// The buffer first: Release may recycle the Response itself.
	if b := r.inlined; b != nil {
		r.inlined = nil
		copyBufPool.Put(b)
	}
	if f := r.Release; f != nil {
		r.Release = nil
		f()
	}
}

// inlineSmall copies the file ranges of a response whose body fits in one
// pooled buffer (copyBufSize) into that buffer, so the whole response goes
// out with one gather write. Zero-copy pays for large ranges; for a small
// one (a fetch of a few records) the extra sendfile call costs more than
// the copy, and it splits the answer into several TCP segments, each of
// which wakes the client. It reports whether it inlined anything; if a
// range cannot be read whole, the response is left as it was and the
// engine meets the error when it sends it.
func (r *Response) inlineSmall() bool {
	if r.inlined != nil || r.size > copyBufSize {
		return false
	}
	files := false
	for i := range r.parts {
		if r.parts[i].File != nil {
			files = true
			break
		}
	}
	if !files {
		return false
	}
	bp := copyBufPool.Get().(*[]byte)
	buf := (*bp)[:0]
	for _, p := range r.parts {
		if p.File == nil {
			continue
		}
		chunk := buf[len(buf) : len(buf)+int(p.Len)]
		if k, _ := p.File.ReadAt(chunk, p.Off); k < len(chunk) {
			copyBufPool.Put(bp)
			return false
		}
		buf = buf[:len(buf)+len(chunk)]
	}
	// All read: now replace the ranges by the copies.
	at := 0
	for i := range r.parts {
		p := &r.parts[i]
		if p.File == nil {
			continue
		}
		n := int(p.Len)
		*p = Part{Bytes: buf[at : at+n : at+n], Len: p.Len}
		at += n
	}
	r.inlined = bp
	return true
}
