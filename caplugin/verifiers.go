package caplugin

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/attest-acme/attest-acme/verifier"
)

// buildVerifier makes the verifier the configuration names and returns it
// with the EAR key its results must verify under (DESIGN.md decision 4).
func buildVerifier(c *Config, reg prometheus.Registerer, now func() time.Time, log *slog.Logger) (verifier.Verifier, *ecdsa.PublicKey, error) {
	vc := c.Verifier
	switch vc.Type {
	case VerifierEmbedded:
		return embeddedVerifier(c, reg, now, log)
	case VerifierService, VerifierVeraison:
		key, err := verifier.LoadVerificationKey(c.path(vc.EARKey))
		if err != nil {
			return nil, nil, fmt.Errorf("verifier.earKey: %w", err)
		}
		var tlsCfg *tls.Config
		if vc.CACerts != "" {
			pool := x509.NewCertPool()
			b, err := readLimited(c.path(vc.CACerts))
			if err != nil {
				return nil, nil, fmt.Errorf("verifier.caCerts: %w", err)
			}
			if !pool.AppendCertsFromPEM(b) {
				return nil, nil, fmt.Errorf("verifier.caCerts: %s holds no PEM certificate", vc.CACerts)
			}
			tlsCfg = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		cl, err := verifier.NewClient(verifier.ClientConfig{URL: vc.URL, TLS: tlsCfg, Timeout: vc.Timeout.Duration})
		if err != nil {
			return nil, nil, fmt.Errorf("verifier.url: %w", err)
		}
		return cl, key, nil
	default:
		return nil, nil, fmt.Errorf("verifier.type: %q is not known", vc.Type)
	}
}

// embeddedVerifier loads the verifier policy and its EAR signing key (made
// on first start) and returns the in-process appraiser.
func embeddedVerifier(c *Config, reg prometheus.Registerer, now func() time.Time, log *slog.Logger) (verifier.Verifier, *ecdsa.PublicKey, error) {
	policyPath := c.path(c.Verifier.Policy)
	pol, err := verifier.LoadPolicy(policyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("verifier.policy: %w", err)
	}
	keyPath := pol.EAR.SigningKey.Path
	if !filepath.IsAbs(keyPath) {
		keyPath = filepath.Join(filepath.Dir(policyPath), keyPath)
	}
	key, created, err := verifier.LoadOrCreateSigningKey(keyPath)
	if err != nil {
		return nil, nil, fmt.Errorf("verifier.policy: ear.signing_key: %w", err)
	}
	if created {
		log.Info("created the embedded verifier's EAR signing key", slog.String("path", keyPath))
	}
	signer, err := verifier.NewSigner(key, now)
	if err != nil {
		return nil, nil, fmt.Errorf("verifier.policy: ear.signing_key: %w", err)
	}
	if c.Verifier.EARKey != "" {
		pinned, err := verifier.LoadVerificationKey(c.path(c.Verifier.EARKey))
		if err != nil {
			return nil, nil, fmt.Errorf("verifier.earKey: %w", err)
		}
		if !pinned.Equal(signer.Public()) {
			return nil, nil, errors.New("verifier.earKey: is not the public half of the policy's ear.signing_key")
		}
	}
	vm, err := verifier.NewMetrics(reg)
	if err != nil {
		return nil, nil, fmt.Errorf("verifier metrics: %w", err)
	}
	a, err := verifier.NewAppraiser(verifier.AppraiserConfig{Policy: pol, Signer: signer, Now: now, Log: log, Metrics: vm})
	if err != nil {
		return nil, nil, err
	}
	return a, signer.Public(), nil
}
