package segment

import (
	"errors"
	"fmt"
	"syscall"
)

// ErrLogPoisoned is wrapped by every append, flush, truncation, retention
// and start-offset change of a log whose files can no longer be trusted to
// hold what the log believes they hold, and by the error that poisoned it.
// A log is poisoned when an fsync of one of its files (segment, index,
// checkpoint) or of its directory fails, or when a failed write or
// truncation leaves a file at a length the log does not know.
//
// A failed fsync is not a failed write that a retry can fix. Linux may mark
// the dirty pages it could not write back clean (or drop them) and report
// the error once: a later fsync then succeeds without having written them,
// and the data the log acknowledged as durable would be gone at the next
// crash ("fsyncgate"). So the error sticks to the Log, not to a file, and
// closing and reopening a file (the file cache does so all the time) does
// not clear it: only opening the log again does, whose recovery
// re-validates every batch above the recovery point, which moves only
// after a successful fsync. Until then reads are served up to that
// recovery point; what lies above it may not survive.
//
// A write that fails with nothing written (ENOSPC on a full disk), or
// whose partial bytes could be cut off again, changes nothing and does not
// poison: the append fails and may be retried once space is freed.
var ErrLogPoisoned = errors.New("log poisoned")

// poisonous marks an error after which the log must be poisoned; settle
// acts on it. Errors of Open are returned as they are: a log that fails to
// open has nothing to poison.
type poisonous struct{ error }

func (p poisonous) Unwrap() error { return p.error }

// syncFailed marks the error of an fsync poisonous, unless the fsync never
// ran for want of a descriptor to run it on (SyncDir opens the directory
// first): then nothing was lost and a later flush may try again.
func syncFailed(err error) error {
	if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
		return err
	}
	return poisonous{err}
}

// settle poisons the log if err is poisonous, and returns err (wrapping
// ErrLogPoisoned if so).
func (l *Log) settle(err error) error {
	var p poisonous
	if err == nil || !errors.As(err, &p) {
		return err
	}
	return l.poison(err)
}

// poison makes the log refuse every mutation from now on because of cause.
// The first poisoning is reported once: to Config.OnPoisoned, or else to
// the log at ERROR; not for a deleted log, whose files a flush racing the
// deletion may have found gone. l.mu must not be held.
func (l *Log) poison(cause error) error {
	err := fmt.Errorf("%w: %s refuses writes until it is reopened: %w", ErrLogPoisoned, l.dir, cause)
	if !l.poisonErr.CompareAndSwap(nil, &err) {
		return err
	}
	l.mu.RLock()
	rp, deleted := l.recoveryPoint, l.deleted
	l.mu.RUnlock()
	switch {
	case deleted: // nobody to tell
	case l.onPoison != nil:
		l.onPoison(err)
	default:
		l.logger.Error("log poisoned: appends and flushes fail until it is reopened; reads stop at the recovery point",
			"dir", l.dir, "recovery_point", rp, "err", cause)
	}
	return err
}

// Poisoned returns the error that poisoned the log (wrapping
// ErrLogPoisoned and its cause), nil if it is not poisoned.
func (l *Log) Poisoned() error {
	if p := l.poisonErr.Load(); p != nil {
		return *p
	}
	return nil
}

// refuse returns the error for op on a poisoned log, nil if it is not.
func (l *Log) refuse(op string) error {
	if p := l.Poisoned(); p != nil {
		return fmt.Errorf("%s refused: %w", op, p)
	}
	return nil
}
