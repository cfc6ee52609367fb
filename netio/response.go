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

// release runs Release at most once.
func (r *Response) release() {
	if f := r.Release; f != nil {
		r.Release = nil
		f()
	}
}
