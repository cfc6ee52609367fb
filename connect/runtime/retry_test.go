package runtime

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

type retriableErr struct{ msg string }

func (e retriableErr) Error() string   { return e.msg }
func (e retriableErr) Retriable() bool { return true }

// fakeRetrier is a retrier on a fake clock that records its sleeps.
func fakeRetrier(timeout, maxDelay time.Duration) (*retrier, *[]time.Duration) {
	now := time.Unix(1700000000, 0)
	var slept []time.Duration
	r := &retrier{timeout: timeout, maxDelay: maxDelay,
		now:   func() time.Time { return now },
		sleep: func(_ context.Context, d time.Duration) bool { slept = append(slept, d); now = now.Add(d); return true },
		randN: func(n int64) int64 { return n - 1 },
	}
	return r, &slept
}

// failing returns an op that fails with errs in turn, then succeeds, and
// counts its calls.
func failing(errs ...error) (func() error, *int) {
	calls := 0
	return func() error {
		calls++
		if calls <= len(errs) {
			return errs[calls-1]
		}
		return nil
	}, &calls
}

func TestRetrierFollowsKafkasSchedule(t *testing.T) {
	retry := retriableErr{"registry unreachable"}
	ms := time.Millisecond
	for _, tc := range []struct {
		name              string
		timeout, maxDelay time.Duration
		first             error
		later             []error
		wantErr           string // substring; "" for success
		wantCalls         int    // of op, after the caller's first attempt
		wantSleeps        []time.Duration
	}{
		{name: "errors.retry.timeout=0 never retries", timeout: 0, maxDelay: time.Minute,
			first: retry, wantErr: "registry unreachable"},
		{name: "a non-retriable error fails at once", timeout: time.Minute, maxDelay: time.Minute,
			first: errors.New("bad json"), wantErr: "bad json"},
		{name: "retriable twice, then the third attempt succeeds", timeout: time.Minute, maxDelay: time.Minute,
			first: retry, later: []error{retry}, wantCalls: 2, wantSleeps: []time.Duration{300 * ms, 600 * ms}},
		{name: "a non-retriable error during retries ends them", timeout: time.Minute, maxDelay: time.Minute,
			first: retry, later: []error{errors.New("bad json")}, wantErr: "bad json", wantCalls: 1, wantSleeps: []time.Duration{300 * ms}},
		{name: "the timeout ends retries and no sleep passes it", timeout: time.Second, maxDelay: time.Minute,
			first: retry, later: []error{retry, retry, retry, retry}, wantErr: "gave up after 4 attempts in 1s: errors.retry.timeout=1000",
			wantCalls: 3, wantSleeps: []time.Duration{300 * ms, 600 * ms, 100 * ms}},
		{name: "a delay over errors.retry.delay.max.ms becomes a random one below it", timeout: time.Minute, maxDelay: 500 * ms,
			first: retry, later: []error{retry, retry}, wantCalls: 3, wantSleeps: []time.Duration{300 * ms, 499 * ms, 499 * ms}},
		{name: "errors.retry.timeout=-1 retries forever", timeout: -1, maxDelay: time.Second,
			first: retry, later: []error{retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry, retry},
			wantCalls: 41},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, slept := fakeRetrier(tc.timeout, tc.maxDelay)
			op, calls := failing(tc.later...)
			err := r.again(context.Background(), tc.first, op)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("err %v, want success", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
			}
			if *calls != tc.wantCalls {
				t.Errorf("op called %d times, want %d", *calls, tc.wantCalls)
			}
			if tc.wantSleeps != nil && !reflect.DeepEqual(*slept, tc.wantSleeps) {
				t.Errorf("slept %v, want %v", *slept, tc.wantSleeps)
			}
			for _, d := range *slept {
				if d < 0 || tc.maxDelay > 0 && d > tc.maxDelay {
					t.Errorf("slept %v, outside [0, %v]", d, tc.maxDelay)
				}
			}
		})
	}
}

func TestRetrierStopsWithItsContext(t *testing.T) {
	r, _ := fakeRetrier(-1, time.Second)
	r.sleep = func(context.Context, time.Duration) bool { return false }
	op, calls := failing(retriableErr{"x"})
	err := r.again(context.Background(), retriableErr{"x"}, op)
	if err == nil || !strings.Contains(err.Error(), "stopped retrying") || *calls != 0 {
		t.Fatalf("err %v after %d calls, want a stop before any", err, *calls)
	}
}

func TestErrorsRetrySettings(t *testing.T) {
	p, err := parseErrorPolicy(map[string]string{})
	if err != nil || p.retry.timeout != 0 || p.retry.maxDelay != time.Minute {
		t.Fatalf("defaults: %+v %v, want no retries and a 60 s delay cap (Kafka's)", p.retry, err)
	}
	p, err = parseErrorPolicy(map[string]string{"errors.retry.timeout": "-1", "errors.retry.delay.max.ms": "2500"})
	if err != nil || p.retry.timeout >= 0 || p.retry.maxDelay != 2500*time.Millisecond {
		t.Fatalf("timeout -1, delay 2500: %+v %v", p.retry, err)
	}
	for cfg, want := range map[[2]string]string{
		{"errors.retry.timeout", "-2"}:        "errors.retry.timeout=-2: must be at least -1",
		{"errors.retry.timeout", "soon"}:      `errors.retry.timeout="soon": not an integer`,
		{"errors.retry.delay.max.ms", "-1"}:   "errors.retry.delay.max.ms=-1: must be at least 0",
		{"errors.retry.delay.max.ms", "1.5s"}: `errors.retry.delay.max.ms="1.5s": not an integer`,
	} {
		if _, err := parseErrorPolicy(map[string]string{cfg[0]: cfg[1]}); err == nil || err.Error() != want {
			t.Errorf("%s=%s: err %v, want %q", cfg[0], cfg[1], err, want)
		}
	}
}
