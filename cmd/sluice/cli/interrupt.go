package cli

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
)

// Ctrl-C and SIGTERM end produce and consume in two steps. The first
// cancels the command's context with a signalCause: the command stops
// reading input (or the topic), then finishes what it started within
// --timeout (produce waits for the acknowledgements of what it read;
// consume commits what it printed). A second signal closes the context's
// abort channel: the command stops waiting and reports what it knows. A
// third kills the process as usual.

// signalCause is the cancellation cause of a command stopped by a signal.
type signalCause struct{ sig os.Signal }

func (c signalCause) Error() string { return "interrupted by " + c.sig.String() }

type abortKey struct{}

// interruptible returns the context produce and consume run under, and a
// function that stops listening for signals.
func interruptible() (context.Context, func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	abort := make(chan struct{})
	ctx, cancel := context.WithCancelCause(context.WithValue(context.Background(), abortKey{}, (<-chan struct{})(abort)))
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			cancel(signalCause{s})
		case <-done:
			return
		}
		select {
		case <-sigs:
			close(abort)
		case <-done:
		}
		signal.Stop(sigs)
	}()
	return ctx, func() {
		close(done)
		signal.Stop(sigs)
		cancel(nil)
	}
}

// abortOf returns the channel a second signal closes; nil (never closed)
// for a context that did not come from interruptible, as in tests.
func abortOf(ctx context.Context) <-chan struct{} {
	ch, _ := ctx.Value(abortKey{}).(<-chan struct{})
	return ch
}

// interruptExit is the exit code of a command stopped by a signal, as a
// shell reports a process killed by it: 130 for SIGINT, 143 for SIGTERM.
// A plain cancellation (tests) counts as SIGINT.
func interruptExit(ctx context.Context) int {
	var sc signalCause
	if errors.As(context.Cause(ctx), &sc) && sc.sig == syscall.SIGTERM {
		return 128 + int(syscall.SIGTERM)
	}
	return 128 + int(syscall.SIGINT)
}
