package runtime

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// restartPolicy is Sluice's answer to Kafka Connect's tasks that stay
// FAILED until someone calls the restart API: a failed task is restarted
// by its worker after a capped exponential backoff, and the backoff starts
// over once the task has run healthy for a while. Connector configs:
//
//	restart.policy          always (default) | never
//	restart.backoff.ms      first delay, default 1000
//	restart.backoff.max.ms  cap, default 60000
type restartPolicy struct {
	enabled      bool
	base, cap    time.Duration
	healthyAfter time.Duration
}

func parseRestartPolicy(cfg map[string]string) (restartPolicy, error) {
	p := restartPolicy{enabled: true, base: time.Second, cap: time.Minute, healthyAfter: time.Minute}
	switch v := strings.ToLower(strings.TrimSpace(cfg["restart.policy"])); v {
	case "", "always":
	case "never":
		p.enabled = false
	default:
		return p, fmt.Errorf("restart.policy=%q: want always or never", v)
	}
	for key, dst := range map[string]*time.Duration{"restart.backoff.ms": &p.base, "restart.backoff.max.ms": &p.cap} {
		if v := strings.TrimSpace(cfg[key]); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return p, fmt.Errorf("%s=%q: want a positive number of milliseconds", key, v)
			}
			*dst = time.Duration(n) * time.Millisecond
		}
	}
	p.cap = max(p.cap, p.base)
	return p, nil
}

// restartBackoff is the state of one task's restarts: a pure function of
// the failures it is told about and the times passed in.
type restartBackoff struct {
	policy   restartPolicy
	failures int // consecutive failures without a healthy run between
}

// failed records a failure of a run that lasted ran, and returns how long
// to wait before the next start, or false when the policy says never.
func (b *restartBackoff) failed(ran time.Duration) (time.Duration, bool) {
	if !b.policy.enabled {
		return 0, false
	}
	if ran >= b.policy.healthyAfter {
		b.failures = 0
	}
	d := b.policy.base
	for i := 0; i < b.failures && d < b.policy.cap; i++ {
		d *= 2
	}
	b.failures++
	return min(d, b.policy.cap), true
}
