package tail

import (
	"fmt"
	"regexp"
	"time"
)

// Mode is how a multiline event continues, with Vector's four modes.
type Mode int

const (
	// ContinueThrough: lines matching the condition continue the event;
	// the first that does not ends it and is read afresh.
	ContinueThrough Mode = iota
	// ContinuePast: lines matching the condition continue the event, and
	// the first that does not is its last line.
	ContinuePast
	// HaltBefore: lines not matching the condition continue the event; a
	// matching line starts the next one.
	HaltBefore
	// HaltWith: lines not matching the condition continue the event; a
	// matching line is its last.
	HaltWith
)

// ParseMode reads a mode's config name.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "continue_through":
		return ContinueThrough, nil
	case "continue_past":
		return ContinuePast, nil
	case "halt_before":
		return HaltBefore, nil
	case "halt_with":
		return HaltWith, nil
	}
	return 0, fmt.Errorf("multiline mode %q: want continue_through, continue_past, halt_before or halt_with", s)
}

// Multiline configures an Assembler. With Start nil, every line is an
// event of its own.
type Multiline struct {
	Start     *regexp.Regexp // a line matching it begins an event
	Condition *regexp.Regexp // decides, with Mode, whether the next line belongs to it
	Mode      Mode
	Timeout   time.Duration // an event pending this long without a new line is flushed
	MaxBytes  int           // an event is flushed once it reaches this size
}

// Event is an assembled record: one or more lines joined by "\n", with End
// the file position after its last line.
type Event struct {
	Text      string
	End       int64
	Lines     int
	Truncated bool
}

// Assembler joins lines into events. Time is passed in: Add and Flush
// take the current time, and Due says when a pending event times out.
type Assembler struct {
	cfg     Multiline
	buf     []byte
	end     int64
	lines   int
	trunc   bool
	pending bool
	last    time.Time // when the pending event last grew
}

// NewAssembler returns an Assembler for cfg.
func NewAssembler(cfg Multiline) *Assembler { return &Assembler{cfg: cfg} }

// Add takes the next line, appending the events it completes to out.
func (a *Assembler) Add(out []Event, l Line, now time.Time) []Event {
	if a.cfg.Start == nil {
		return append(out, Event{Text: l.Text, End: l.End, Lines: 1, Truncated: l.Truncated})
	}
	if a.pending {
		matched := a.cfg.Condition.MatchString(l.Text)
		switch a.cfg.Mode {
		case ContinueThrough:
			if matched {
				a.grow(l, now)
				return a.flushIfFull(out)
			}
			out = a.flush(out)
		case ContinuePast:
			a.grow(l, now)
			if !matched {
				return a.flush(out)
			}
			return a.flushIfFull(out)
		case HaltBefore:
			if !matched {
				a.grow(l, now)
				return a.flushIfFull(out)
			}
			out = a.flush(out)
			a.begin(l, now)
			return a.flushIfFull(out)
		case HaltWith:
			a.grow(l, now)
			if matched {
				return a.flush(out)
			}
			return a.flushIfFull(out)
		}
	}
	if a.cfg.Start.MatchString(l.Text) {
		a.begin(l, now)
		if a.cfg.Mode == HaltWith && a.cfg.Condition.MatchString(l.Text) {
			return a.flush(out) // its first line is also its last
		}
		return a.flushIfFull(out)
	}
	return append(out, Event{Text: l.Text, End: l.End, Lines: 1, Truncated: l.Truncated})
}

func (a *Assembler) begin(l Line, now time.Time) {
	a.buf = append(a.buf[:0], l.Text...)
	a.end, a.lines, a.trunc, a.pending, a.last = l.End, 1, l.Truncated, true, now
}

func (a *Assembler) grow(l Line, now time.Time) {
	a.buf = append(append(a.buf, '\n'), l.Text...)
	a.end, a.lines, a.last = l.End, a.lines+1, now
	a.trunc = a.trunc || l.Truncated
}

func (a *Assembler) flushIfFull(out []Event) []Event {
	if a.cfg.MaxBytes > 0 && len(a.buf) >= a.cfg.MaxBytes {
		return a.flush(out)
	}
	return out
}

// flush emits the pending event, if any.
func (a *Assembler) flush(out []Event) []Event {
	if !a.pending {
		return out
	}
	out = append(out, Event{Text: string(a.buf), End: a.end, Lines: a.lines, Truncated: a.trunc})
	a.buf, a.pending = a.buf[:0], false
	return out
}

// Due is when the pending event times out (zero when none is pending).
func (a *Assembler) Due() time.Time {
	if !a.pending || a.cfg.Timeout <= 0 {
		return time.Time{}
	}
	return a.last.Add(a.cfg.Timeout)
}

// Tick flushes the pending event if it has waited Timeout since its last
// line.
func (a *Assembler) Tick(out []Event, now time.Time) []Event {
	if d := a.Due(); !d.IsZero() && !now.Before(d) {
		return a.flush(out)
	}
	return out
}

// Flush emits the pending event now (the file ends for good).
func (a *Assembler) Flush(out []Event) []Event { return a.flush(out) }

// Reset drops the pending event (the file was truncated).
func (a *Assembler) Reset() { a.buf, a.pending = a.buf[:0], false }

// Pending says whether an event is being assembled, and where it would
// end so far.
func (a *Assembler) Pending() (bool, int64) { return a.pending, a.end }
