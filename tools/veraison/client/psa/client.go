package psa

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/veraison/apiclient/provisioning"
	"github.com/veraison/apiclient/verification"
)

// Paths of Veraison's APIs under a service's base URL.
const (
	ProvisioningSubmitPath = "/endorsement-provisioning/v1/submit"
	NewSessionPath         = "/challenge-response/v1/newSession"
)

// Provision submits one endorsement document of the given media type to the
// provisioning service at baseURL (for example http://127.0.0.1:8888).
func Provision(baseURL, mediaType string, doc []byte) error {
	u, err := joinURL(baseURL, ProvisioningSubmitPath)
	if err != nil {
		return err
	}
	var cfg provisioning.SubmitConfig
	if err := cfg.SetSubmitURI(u); err != nil {
		return fmt.Errorf("psa: provisioning URL: %w", err)
	}
	cfg.SetDeleteSession(true)
	if err := cfg.Run(doc, mediaType); err != nil {
		return fmt.Errorf("psa: provisioning %s: %w", mediaType, err)
	}
	return nil
}

// EvidenceFunc builds evidence for a session nonce.
type EvidenceFunc func(sessionNonce []byte) ([]byte, error)

// ChallengeResponse runs Veraison's challenge-response exchange with the
// verification service at baseURL through apiclient: it opens a session with
// nonce, checks that the session echoes it and accepts mediaType, submits
// what build returns for it, and returns the EAR JWT of the result.
func ChallengeResponse(baseURL string, nonce []byte, mediaType string, build EvidenceFunc) ([]byte, error) {
	u, err := joinURL(baseURL, NewSessionPath)
	if err != nil {
		return nil, err
	}
	cfg := verification.ChallengeResponseConfig{DeleteSession: true}
	if err := cfg.SetNonce(nonce); err != nil {
		return nil, fmt.Errorf("psa: %w", err)
	}
	if err := cfg.SetSessionURI(u); err != nil {
		return nil, fmt.Errorf("psa: verification URL: %w", err)
	}
	if err := cfg.SetEvidenceBuilder(builder{nonce: nonce, mediaType: mediaType, build: build}); err != nil {
		return nil, fmt.Errorf("psa: %w", err)
	}
	res, err := cfg.Run()
	if err != nil {
		return nil, fmt.Errorf("psa: challenge-response: %w", err)
	}
	// The session's "result" is the EAR JWT as a JSON string.
	var jwt string
	if err := json.Unmarshal(res, &jwt); err != nil {
		return nil, fmt.Errorf("psa: session result is not a JSON string: %w", err)
	}
	if jwt == "" {
		return nil, fmt.Errorf("psa: session result is empty")
	}
	return []byte(jwt), nil
}

// builder adapts an EvidenceFunc to apiclient's EvidenceBuilder and checks
// the session it is called for.
type builder struct {
	nonce     []byte
	mediaType string
	build     EvidenceFunc
}

func (b builder) BuildEvidence(sessionNonce []byte, accept []string) ([]byte, string, error) {
	if !bytes.Equal(sessionNonce, b.nonce) {
		return nil, "", fmt.Errorf("psa: session nonce is %x, want %x", sessionNonce, b.nonce)
	}
	if !slices.Contains(accept, b.mediaType) {
		return nil, "", fmt.Errorf("psa: the session does not accept %s (accepts %s)", b.mediaType, strings.Join(accept, ", "))
	}
	ev, err := b.build(sessionNonce)
	if err != nil {
		return nil, "", err
	}
	return ev, b.mediaType, nil
}

func joinURL(base, path string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("psa: base URL %q: %w", base, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("psa: base URL %q: want http(s)://host:port", base)
	}
	return u.JoinPath(path).String(), nil
}
