package acmeclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// DefaultPollTimeout bounds the wait for one authorization or one order to
// leave "pending" or "processing".
const DefaultPollTimeout = 2 * time.Minute

// Poll intervals when the CA sends no Retry-After: the first wait, doubled
// each time up to the last.
const (
	pollFirstInterval = 250 * time.Millisecond
	pollMaxInterval   = 5 * time.Second
)

// retryAfter reads a Retry-After header (RFC 9110 §10.2.3): delay-seconds or
// an HTTP-date. A date in the past is zero.
func retryAfter(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// poll POST-as-GETs url into obj until done says so, waiting as the CA's
// Retry-After asks, else with a growing interval, for at most timeout in
// all. A Retry-After that would go past the limit ends the wait at once.
func poll(ctx context.Context, p *poster, op, url string, timeout time.Duration, obj any, done func() (bool, error)) error {
	start := time.Now()
	deadline := start.Add(timeout)
	interval := pollFirstInterval
	for {
		ans, err := p.post(ctx, op, url, nil)
		if err != nil {
			return err
		}
		if err := decodeJSON(op, ans.body, obj); err != nil {
			return err
		}
		if ok, err := done(); ok || err != nil {
			return err
		}
		var st struct {
			Status string `json:"status"`
		}
		_ = json.Unmarshal(ans.body, &st)
		now := time.Now()
		wait := interval
		if ra, ok := retryAfter(ans.header, now); ok {
			wait = ra
		}
		if now.Add(wait).After(deadline) {
			return fmt.Errorf("%s: still %q after %s, and the next try (in %s) would pass the limit of %s",
				op, st.Status, now.Sub(start).Round(time.Millisecond), wait, timeout)
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
		interval = min(2*interval, pollMaxInterval)
	}
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
