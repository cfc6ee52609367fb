//go:build linux

package netio

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"
)

// uringOps are the opcodes the engine submits; all must be supported.
var uringOps = []struct {
	op   uint8
	name string
}{
	{giouring.OpAccept, "ACCEPT"},
	{giouring.OpRecv, "RECV"},
	{giouring.OpSendmsg, "SENDMSG"},
	{giouring.OpSplice, "SPLICE"},
	{giouring.OpRead, "READ"},
	{giouring.OpTimeout, "TIMEOUT"},
	{giouring.OpPollAdd, "POLL_ADD"},
	{giouring.OpAsyncCancel, "ASYNC_CANCEL"},
}

// Multishot accept (5.19), multishot receive (6.0) and provided-buffer
// rings (5.19) together need Linux 6.0.
const minKernelMajor, minKernelMinor = 6, 0

var probeOnce = sync.OnceValue(probeUring)

// UringSupported returns nil when the io_uring engine can run on this
// system, or the reason it cannot. The probe runs once per process.
func UringSupported() error { return probeOnce() }

func probeUring() error {
	if b, err := os.ReadFile("/proc/sys/kernel/io_uring_disabled"); err == nil {
		if v := strings.TrimSpace(string(b)); v == "2" {
			return errors.New("io_uring is disabled (kernel.io_uring_disabled = 2)")
		}
	}
	if err := checkKernel(); err != nil {
		return err
	}
	ring, err := giouring.CreateRing(8)
	if err != nil {
		return fmt.Errorf("creating an io_uring ring failed (seccomp, sysctl kernel.io_uring_disabled or RLIMIT_MEMLOCK?): %w", err)
	}
	defer ring.QueueExit()
	probe, err := ring.GetProbeRing()
	if err != nil {
		return fmt.Errorf("IORING_REGISTER_PROBE failed: %w", err)
	}
	for _, o := range uringOps {
		if !probe.IsSupported(o.op) {
			return fmt.Errorf("the kernel lacks IORING_OP_%s", o.name)
		}
	}
	br, err := ring.SetupBufRing(8, 0, 0)
	if err != nil {
		return fmt.Errorf("provided-buffer rings (IORING_REGISTER_PBUF_RING) unsupported: %w", err)
	}
	_ = ring.FreeBufRing(0)
	_ = unix.Munmap(unsafe.Slice((*byte)(unsafe.Pointer(br)), 8*int(unsafe.Sizeof(giouring.BufAndRing{}))))
	return nil
}

func checkKernel() error {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return fmt.Errorf("uname: %w", err)
	}
	rel := unix.ByteSliceToString(u.Release[:])
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return fmt.Errorf("cannot parse kernel release %q", rel)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return fmt.Errorf("cannot parse kernel release %q", rel)
	}
	if major < minKernelMajor || major == minKernelMajor && minor < minKernelMinor {
		return fmt.Errorf("kernel %s is older than %d.%d (multishot accept/recv with provided-buffer rings)", rel, minKernelMajor, minKernelMinor)
	}
	return nil
}
