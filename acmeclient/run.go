package acmeclient

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"
)

// RunOptions configure the renewal daemon.
type RunOptions struct {
	// Request is the certificate to keep.
	Request Request
	// RenewAt is the fraction of the lifetime (from notBefore) at which to
	// renew; zero means 2/3.
	RenewAt float64
	// Jitter is the fraction of the lifetime by which a renewal may come
	// earlier than RenewAt, at random, so that many clients do not renew in
	// step; zero means 0.05, negative means none.
	Jitter float64
	// ReuseKey keeps the certificate key across renewals.
	ReuseKey bool
	// MinBackoff and MaxBackoff bound the wait after a failure, which
	// doubles with each failure in a row; zero means 1s and 5m.
	MinBackoff, MaxBackoff time.Duration
	// Hook runs after each issuance; its failure is reported, not fatal.
	Hook Hook
	// Rand returns a number in [0, 1) for jitter; nil means math/rand/v2.
	Rand func() float64
}

// Defaults of RunOptions.
const (
	DefaultRenewAt    = 2.0 / 3
	DefaultJitter     = 0.05
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 5 * time.Minute
)

func (o *RunOptions) check() error {
	if o.RenewAt == 0 {
		o.RenewAt = DefaultRenewAt
	}
	if o.Jitter == 0 {
		o.Jitter = DefaultJitter
	} else if o.Jitter < 0 {
		o.Jitter = 0
	}
	if o.RenewAt <= 0 || o.RenewAt >= 1 {
		return fmt.Errorf("renew-at %v: want a fraction of the lifetime between 0 and 1", o.RenewAt)
	}
	if o.Jitter >= o.RenewAt {
		return fmt.Errorf("jitter %v: want less than renew-at %v", o.Jitter, o.RenewAt)
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		return fmt.Errorf("max backoff %s is below the min backoff %s", o.MaxBackoff, o.MinBackoff)
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	return o.Request.check()
}

// RenewalTime is when a certificate valid from notBefore to notAfter is
// renewed: at renewAt of its lifetime, less jitter×lifetime×r.
func RenewalTime(notBefore, notAfter time.Time, renewAt, jitter, r float64) time.Time {
	life := notAfter.Sub(notBefore)
	return notBefore.Add(time.Duration(float64(life) * (renewAt - jitter*r)))
}

// Backoff is the wait after the n-th failure in a row (n >= 1): lo doubled
// n-1 times, capped at hi, then between half of that and all of it at
// random (r in [0, 1)).
func Backoff(n int, lo, hi time.Duration, r float64) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	return d/2 + time.Duration(float64(d/2)*r)
}

// Run keeps a certificate for o.Request: it obtains one unless a matching
// one is stored, then renews it at about RenewAt of each certificate's
// lifetime with fresh evidence, retrying failures with capped exponential
// backoff, and runs o.Hook after each issuance. It returns nil once ctx is
// done (a renewal in flight is abandoned and leaves the stored set as it
// was); it returns an error only for a bad request or unreadable storage.
func (c *Client) Run(ctx context.Context, o RunOptions) error {
	if err := o.check(); err != nil {
		return &RequestError{Err: err}
	}
	cur, err := c.store.Load(o.Request.Identifier)
	switch {
	case err == nil && !c.matches(cur, o.Request):
		c.emit(Event{Stage: StageCheck, Message: "the stored certificate was made for another request or CA: obtaining a new one"})
		cur = nil
	case err != nil && isNoCertificate(err):
		cur = nil
	case err != nil:
		return err
	}
	failures := 0
	for {
		if cur != nil {
			at := RenewalTime(cur.NotBefore, cur.NotAfter, o.RenewAt, o.Jitter, o.Rand())
			if wait := at.Sub(c.cfg.Now()); wait > 0 && failures == 0 {
				c.emit(Event{Stage: StageWait, Message: fmt.Sprintf("next renewal at %s (in %s)", at.Format(time.RFC3339), wait.Round(time.Second)),
					Fields: map[string]string{"until": at.Format(time.RFC3339Nano), "serial": cur.Serial}})
				if sleep(ctx, wait) != nil {
					return nil
				}
			}
		}
		req := o.Request
		if o.ReuseKey && cur != nil {
			req.Key = cur.Key
		}
		sv, err := c.Obtain(ctx, req)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			failures++
			d := Backoff(failures, o.MinBackoff, o.MaxBackoff, o.Rand())
			c.emit(Event{Stage: StageRetry, Err: err, Message: fmt.Sprintf("failure %d in a row; retrying in %s", failures, d.Round(time.Millisecond)),
				Fields: map[string]string{"failures": fmt.Sprint(failures), "backoff": d.String()}})
			if sleep(ctx, d) != nil {
				return nil
			}
			continue
		}
		failures = 0
		cur = sv
		if o.Hook != nil {
			_ = c.RunHook(ctx, o.Hook, sv) // reported by RunHook; the certificate is stored either way
		}
	}
}
