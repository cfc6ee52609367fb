//go:build unix

package cli

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"
)

// The first signal cancels the command's context with the signal as its
// cause (exit 143 for SIGTERM), the second closes the abort channel.
func TestInterruptibleTwoSteps(t *testing.T) {
	ctx, stop := interruptible()
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the first signal did not cancel the context")
	}
	if code := interruptExit(ctx); code != 143 {
		t.Errorf("exit %d after SIGTERM, want 143", code)
	}
	select {
	case <-abortOf(ctx):
		t.Fatal("aborted after one signal")
	default:
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-abortOf(ctx):
	case <-time.After(5 * time.Second):
		t.Fatal("the second signal did not abort")
	}

	plain, cancel := context.WithCancel(context.Background())
	cancel()
	if code := interruptExit(plain); code != 130 {
		t.Errorf("exit %d after a plain cancellation, want 130 (as for Ctrl-C)", code)
	}
	if abortOf(plain) != nil {
		t.Error("a context not from interruptible has an abort channel")
	}
}
