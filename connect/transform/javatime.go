package transform

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// javaDateFormat is the part of java.text.SimpleDateFormat that Kafka's
// TimestampConverter and TimestampRouter configs use, always in UTC as
// those SMTs set it: letters G y M d H k K h m s S E a z Z X D u, quoted
// literals with ” for a quote. Parsing is lenient as Java's default
// (2024-02-30 is March 1) and ignores trailing text.
type javaDateFormat struct {
	pattern string
	tokens  []dateToken
}

type dateToken struct {
	letter  byte // 0 for literal text
	count   int
	literal string
}

func (t dateToken) numeric() bool {
	switch t.letter {
	case 0, 'G', 'E', 'a', 'z', 'Z', 'X':
		return false
	case 'M':
		return t.count < 3
	}
	return true
}

func newJavaDateFormat(pattern string) (*javaDateFormat, error) {
	f := &javaDateFormat{pattern: pattern}
	lit := func(s string) {
		if n := len(f.tokens); n > 0 && f.tokens[n-1].letter == 0 {
			f.tokens[n-1].literal += s
			return
		}
		f.tokens = append(f.tokens, dateToken{literal: s})
	}
	for i := 0; i < len(pattern); {
		c := pattern[i]
		switch {
		case c == '\'':
			if i+1 < len(pattern) && pattern[i+1] == '\'' {
				lit("'")
				i += 2
				continue
			}
			var q strings.Builder
			j := i + 1
			for ; ; j++ {
				if j >= len(pattern) {
					return nil, fmt.Errorf("unterminated quote in pattern %q", pattern)
				}
				if pattern[j] != '\'' {
					q.WriteByte(pattern[j])
					continue
				}
				if j+1 < len(pattern) && pattern[j+1] == '\'' {
					q.WriteByte('\'')
					j++
					continue
				}
				break
			}
			lit(q.String())
			i = j + 1
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			if !strings.ContainsRune("GyMdHkKhmsSEazZXDu", rune(c)) {
				return nil, fmt.Errorf("illegal pattern character '%c' in %q", c, pattern)
			}
			j := i
			for j < len(pattern) && pattern[j] == c {
				j++
			}
			f.tokens = append(f.tokens, dateToken{letter: c, count: j - i})
			i = j
		default:
			lit(string(c))
			i++
		}
	}
	return f, nil
}

func pad(n, width int) string {
	s := strconv.Itoa(n)
	for len(s) < width {
		s = "0" + s
	}
	return s
}

// Format renders t in UTC.
func (f *javaDateFormat) Format(t time.Time) string {
	t = t.UTC()
	var b strings.Builder
	for _, tok := range f.tokens {
		n := tok.count
		switch tok.letter {
		case 0:
			b.WriteString(tok.literal)
		case 'G':
			if t.Year() > 0 {
				b.WriteString("AD")
			} else {
				b.WriteString("BC")
			}
		case 'y':
			y := t.Year()
			if n == 2 {
				b.WriteString(pad(y%100, 2))
			} else {
				b.WriteString(pad(y, n))
			}
		case 'M':
			switch {
			case n >= 4:
				b.WriteString(t.Month().String())
			case n == 3:
				b.WriteString(t.Month().String()[:3])
			default:
				b.WriteString(pad(int(t.Month()), n))
			}
		case 'd':
			b.WriteString(pad(t.Day(), n))
		case 'H':
			b.WriteString(pad(t.Hour(), n))
		case 'k':
			h := t.Hour()
			if h == 0 {
				h = 24
			}
			b.WriteString(pad(h, n))
		case 'K':
			b.WriteString(pad(t.Hour()%12, n))
		case 'h':
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			b.WriteString(pad(h, n))
		case 'm':
			b.WriteString(pad(t.Minute(), n))
		case 's':
			b.WriteString(pad(t.Second(), n))
		case 'S':
			b.WriteString(pad(t.Nanosecond()/1e6, n))
		case 'E':
			if n >= 4 {
				b.WriteString(t.Weekday().String())
			} else {
				b.WriteString(t.Weekday().String()[:3])
			}
		case 'a':
			if t.Hour() < 12 {
				b.WriteString("AM")
			} else {
				b.WriteString("PM")
			}
		case 'z':
			if n >= 4 {
				b.WriteString("Coordinated Universal Time")
			} else {
				b.WriteString("UTC")
			}
		case 'Z':
			b.WriteString("+0000")
		case 'X':
			b.WriteString("Z")
		case 'D':
			b.WriteString(pad(t.YearDay(), n))
		case 'u':
			wd := int(t.Weekday())
			if wd == 0 {
				wd = 7
			}
			b.WriteString(pad(wd, n))
		}
	}
	return b.String()
}

// Parse reads s from its start; text after the pattern is ignored.
func (f *javaDateFormat) Parse(s string) (time.Time, error) {
	fail := func() (time.Time, error) {
		return time.Time{}, fmt.Errorf("unparseable date: %q", s)
	}
	year, month, day, hour, minute, sec, ms := 1970, 1, 1, 0, 0, 0, 0
	pm, hasAmPm, offset := false, false, 0
	hour12, hourOfDay := -1, false
	pos := 0
	for i, tok := range f.tokens {
		if tok.letter == 0 {
			if !strings.HasPrefix(s[pos:], tok.literal) {
				return fail()
			}
			pos += len(tok.literal)
			continue
		}
		if tok.numeric() {
			limit := len(s)
			if i+1 < len(f.tokens) && f.tokens[i+1].numeric() {
				limit = min(len(s), pos+tok.count)
			}
			end := pos
			if end < limit && (s[end] == '-' || s[end] == '+') && tok.letter == 'y' {
				end++
			}
			for end < limit && s[end] >= '0' && s[end] <= '9' {
				end++
			}
			n, err := strconv.Atoi(s[pos:end])
			if err != nil {
				return fail()
			}
			digits := end - pos
			pos = end
			switch tok.letter {
			case 'y':
				year = n
				if tok.count <= 2 && digits == 2 {
					year = twoDigitYear(n)
				}
			case 'M':
				month = n
			case 'd':
				day = n
			case 'H', 'k':
				hour, hourOfDay = n, true
				if tok.letter == 'k' && n == 24 {
					hour = 0
				}
			case 'K', 'h':
				hour12 = n % 12
			case 'm':
				minute = n
			case 's':
				sec = n
			case 'S':
				ms = n
			case 'D':
				month, day = 1, n
			}
			continue
		}
		rest := s[pos:]
		switch tok.letter {
		case 'M':
			m, l := matchName(rest, func(i int) string { return time.Month(i + 1).String() }, 12)
			if l == 0 {
				return fail()
			}
			month, pos = m+1, pos+l
		case 'E':
			_, l := matchName(rest, func(i int) string { return time.Weekday(i).String() }, 7)
			if l == 0 {
				return fail()
			}
			pos += l
		case 'a':
			switch {
			case len(rest) >= 2 && strings.EqualFold(rest[:2], "AM"):
			case len(rest) >= 2 && strings.EqualFold(rest[:2], "PM"):
				pm = true
			default:
				return fail()
			}
			hasAmPm = true
			pos += 2
		case 'G':
			if len(rest) < 2 {
				return fail()
			}
			pos += 2
		case 'z', 'Z', 'X':
			off, l, ok := parseZone(rest)
			if !ok {
				return fail()
			}
			offset, pos = off, pos+l
		}
	}
	// As java.util.Calendar resolves them: an hour of day (H, k) wins over
	// an hour of half-day (h, K) unless AM/PM was given.
	if hour12 >= 0 && (!hourOfDay || hasAmPm) {
		hour = hour12
		if hasAmPm && pm {
			hour += 12
		}
	} else if hasAmPm && pm && hour < 12 {
		hour += 12
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC)
	t = t.Add(time.Duration(ms)*time.Millisecond - time.Duration(offset)*time.Second)
	return t, nil
}

// twoDigitYear resolves yy as SimpleDateFormat: within 80 years before and
// 20 years after now.
func twoDigitYear(n int) int {
	now := time.Now().Year()
	y := now/100*100 + n
	if y > now+20 {
		y -= 100
	} else if y <= now-80 {
		y += 100
	}
	return y
}

// matchName matches a full or three-letter name case-insensitively,
// longest first.
func matchName(s string, name func(int) string, n int) (int, int) {
	for i := 0; i < n; i++ {
		if full := name(i); len(s) >= len(full) && strings.EqualFold(s[:len(full)], full) {
			return i, len(full)
		}
	}
	for i := 0; i < n; i++ {
		if short := name(i)[:3]; len(s) >= 3 && strings.EqualFold(s[:3], short) {
			return i, 3
		}
	}
	return 0, 0
}

// parseZone reads Z, UTC, GMT (optionally followed by an offset) or
// ±hh[[:]mm] and returns the offset east of UTC in seconds.
func parseZone(s string) (int, int, bool) {
	switch {
	case strings.HasPrefix(s, "Z"):
		return 0, 1, true
	case strings.HasPrefix(s, "UTC"), strings.HasPrefix(s, "GMT"):
		if off, l, ok := parseOffset(s[3:]); ok {
			return off, 3 + l, true
		}
		return 0, 3, true
	}
	return parseOffset(s)
}

func parseOffset(s string) (int, int, bool) {
	if len(s) < 3 || (s[0] != '+' && s[0] != '-') {
		return 0, 0, false
	}
	sign := 1
	if s[0] == '-' {
		sign = -1
	}
	h, err := strconv.Atoi(s[1:3])
	if err != nil {
		return 0, 0, false
	}
	l, m := 3, 0
	rest := s[3:]
	if strings.HasPrefix(rest, ":") {
		rest = rest[1:]
		l++
	}
	if len(rest) >= 2 {
		if mm, err := strconv.Atoi(rest[:2]); err == nil {
			m, l = mm, l+2
		} else if s[l-1] == ':' {
			l--
		}
	}
	return sign * (h*3600 + m*60), l, true
}
