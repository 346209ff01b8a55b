package acmeclient

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// RenewOptions say when and how Renew renews.
type RenewOptions struct {
	// Identifier names the stored certificate to renew.
	Identifier string
	// DNSNames replace the stored certificate's dns identifiers; nil keeps them.
	DNSNames []string
	// KeyType is the type of the new key; empty keeps the stored key's type.
	KeyType KeyType
	// ReuseKey keeps the stored certificate key instead of making a new one.
	ReuseKey bool
	// ExpiresIn renews when less than this remains of the certificate's
	// validity; zero means a third of its lifetime.
	ExpiresIn time.Duration
	// Force renews whatever remains.
	Force bool
}

// RenewThreshold is the remaining validity below which a certificate valid
// from notBefore to notAfter is due: expiresIn, or a third of the lifetime
// when expiresIn is zero.
func RenewThreshold(notBefore, notAfter time.Time, expiresIn time.Duration) time.Duration {
	if expiresIn > 0 {
		return expiresIn
	}
	return notAfter.Sub(notBefore) / 3
}

// Due reports whether cur must be renewed at now: less than
// RenewThreshold(expiresIn) of its validity remains.
func Due(cur *Saved, expiresIn time.Duration, now time.Time) bool {
	return cur.NotAfter.Sub(now) < RenewThreshold(cur.NotBefore, cur.NotAfter, expiresIn)
}

// Renew renews the stored certificate for o.Identifier if it is due (or
// o.Force), with fresh evidence, and a new key unless o.ReuseKey. It returns
// the certificate now stored and whether it is a new one. There must be a
// stored certificate (else the error wraps ErrNoCertificate).
func (c *Client) Renew(ctx context.Context, o RenewOptions) (*Saved, bool, error) {
	start := time.Now()
	cur, err := c.store.Load(o.Identifier)
	if err != nil {
		return nil, false, err
	}
	now := c.cfg.Now()
	remaining := cur.NotAfter.Sub(now)
	threshold := RenewThreshold(cur.NotBefore, cur.NotAfter, o.ExpiresIn)
	due := o.Force || Due(cur, o.ExpiresIn, now)
	msg := fmt.Sprintf("certificate %s valid until %s (%s left); renewal below %s: ", cur.Serial,
		cur.NotAfter.Format(time.RFC3339), remaining.Round(time.Second), threshold.Round(time.Second))
	switch {
	case o.Force:
		msg += "forced"
	case due:
		msg += "due"
	default:
		msg += "not due"
	}
	c.emit(Event{Stage: StageCheck, Duration: time.Since(start), Message: msg, Fields: map[string]string{
		"serial": cur.Serial, "not_after": cur.NotAfter.Format(time.RFC3339),
		"remaining": remaining.Round(time.Second).String(), "threshold": threshold.Round(time.Second).String(),
		"due": fmt.Sprint(due)}})
	if !due {
		return cur, false, nil
	}
	req := Request{Identifier: o.Identifier, DNSNames: cur.DNSNames, KeyType: cur.KeyType}
	if o.DNSNames != nil {
		req.DNSNames = o.DNSNames
	}
	if o.KeyType != "" {
		if o.ReuseKey && o.KeyType != cur.KeyType {
			return nil, false, fmt.Errorf("cannot both reuse the %s key and change the key type to %s", cur.KeyType, o.KeyType)
		}
		req.KeyType = o.KeyType
	}
	if o.ReuseKey {
		req.Key = cur.Key
	}
	sv, err := c.Obtain(ctx, req)
	if err != nil {
		return nil, false, err
	}
	return sv, true, nil
}

// matches reports whether the stored certificate was made for the same
// request and server, so that the daemon may keep it.
func (c *Client) matches(cur *Saved, r Request) bool {
	if cur.Server != c.cfg.DirectoryURL || cur.Identifier != r.Identifier {
		return false
	}
	if r.Key == nil && r.KeyType != "" && r.KeyType != cur.KeyType {
		return false
	}
	a, b := slices.Clone(cur.DNSNames), slices.Clone(r.DNSNames)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// isNoCertificate reports whether err says nothing is stored.
func isNoCertificate(err error) bool { return errors.Is(err, ErrNoCertificate) }
