package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// Veraison's discovery endpoints and their media type
// (github.com/veraison/services/capability).
const (
	WellKnownVerification = "/.well-known/veraison/verification"
	WellKnownProvisioning = "/.well-known/veraison/provisioning"
	WellKnownMediaType    = "application/vnd.veraison.discovery+json"
)

// maxWellKnownBody bounds the discovery document we read.
const maxWellKnownBody = 1 << 20

// ServiceState fetches a discovery URL and returns its "service-state"
// ("READY" once the service has reached vts).
func ServiceState(ctx context.Context, client *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, http.NoBody)
	if err != nil {
		return "", fmt.Errorf("ready: building a request for %s: %w", url, err)
	}
	req.Header.Set("Accept", WellKnownMediaType)
	res, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("ready: GET %s: %w", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxWellKnownBody+1))
	if err != nil {
		return "", fmt.Errorf("ready: reading %s: %w", url, err)
	}
	if len(body) > maxWellKnownBody {
		return "", fmt.Errorf("ready: %s answered more than %d bytes", url, maxWellKnownBody)
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("ready: GET %s: status %s: %s", url, res.Status, strings.TrimSpace(string(body)))
	}
	var doc struct {
		ServiceState string `json:"service-state"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("ready: decoding %s: %w", url, err)
	}
	if doc.ServiceState == "" {
		return "", fmt.Errorf("ready: %s has no service-state", url)
	}
	return doc.ServiceState, nil
}

// WaitReady polls every url every poll until each reports service-state
// "READY", or ctx ends; the error then names the last thing that was wrong.
func WaitReady(ctx context.Context, client *http.Client, poll time.Duration, urls ...string) error {
	if len(urls) == 0 {
		return errors.New("ready: no URL to wait for")
	}
	for _, u := range urls {
		var last error
		for {
			state, err := ServiceState(ctx, client, u)
			if err == nil && state == "READY" {
				break
			}
			if err == nil {
				err = fmt.Errorf("ready: %s reports service-state %q", u, state)
			}
			if last == nil || ctx.Err() == nil {
				// Keep the last answer from before ctx ended, not the
				// request that ctx cut short.
				last = err
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("ready: gave up waiting for %s: %w (last: %v)", u, ctx.Err(), last)
			case <-time.After(poll):
			}
		}
	}
	return nil
}
