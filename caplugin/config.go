package caplugin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/smallstep/certificates/authority/config"
	"github.com/veraison/ear"
)

// ConfigKey is the top-level key of ca.json that holds the plugin's
// configuration; step-ca ignores keys it does not know.
const ConfigKey = "attestAcme"

// Verifier kinds (VerifierConfig.Type).
const (
	// VerifierEmbedded appraises in process with a verifier policy file.
	VerifierEmbedded = "embedded"
	// VerifierService calls attest-acme's verifier service over HTTP with the
	// whole bundle and nonce N.
	VerifierService = "service"
	// VerifierVeraison calls a Veraison deployment with the bare platform
	// evidence and nonce D; the CA checks the kc itself.
	VerifierVeraison = "veraison"
)

// Defaults and bounds of the configuration.
const (
	DefaultVerifierTimeout        = 10 * time.Second
	DefaultMaxCertificateLifetime = 24 * time.Hour
	maxConfigSize                 = 1 << 20
)

// Config is the plugin's configuration: the "attestAcme" section of ca.json,
// either inline or as the name of a JSON file (relative to ca.json).
//
//	"attestAcme": {
//	  "verifier": {"type": "embedded", "policy": "verifier-policy.yaml", "timeout": "10s"},
//	  "acceptStatuses": ["affirming"],
//	  "issuance": [
//	    {"workload": "demo", "permanentIdentifiers": ["demo-*"], "dnsNames": ["*.demo.internal"]}
//	  ],
//	  "maxCertificateLifetime": "24h",
//	  "metricsAddress": "127.0.0.1:9090"
//	}
//
// Unknown fields are errors that name the field.
type Config struct {
	// Verifier says which verifier appraises the evidence.
	Verifier VerifierConfig `json:"verifier"`
	// AcceptStatuses are the EAR statuses accepted: "affirming" (the
	// default) and optionally "warning".
	AcceptStatuses []string `json:"acceptStatuses,omitempty"`
	// Issuance is the issuance policy, deny by default.
	Issuance []IssuanceRule `json:"issuance"`
	// MaxCertificateLifetime caps attested certificates; default 24h.
	MaxCertificateLifetime Duration `json:"maxCertificateLifetime,omitzero"`
	// MetricsAddress is where Prometheus metrics are served (host:port);
	// empty means ca.json's "metricsAddress", and if that is empty too, none.
	MetricsAddress string `json:"metricsAddress,omitempty"`

	// dir resolves relative paths: the directory of the file the section was read from.
	dir string
}

// VerifierConfig is the "verifier" section.
type VerifierConfig struct {
	// Type is "embedded", "service" or "veraison".
	Type string `json:"type"`
	// Policy is the verifier policy file (embedded only).
	Policy string `json:"policy,omitempty"`
	// URL is the verifier's base URL (service and veraison).
	URL string `json:"url,omitempty"`
	// EARKey is the pinned EAR verification key: a PEM public key or
	// certificate, or the JWK the verifier publishes. Required for service
	// and veraison; for embedded, if given, it must be the policy's key.
	EARKey string `json:"earKey,omitempty"`
	// CACerts is a PEM file of roots to trust for URL (default: the system's).
	CACerts string `json:"caCerts,omitempty"`
	// Timeout bounds one appraisal; default 10s.
	Timeout Duration `json:"timeout,omitzero"`
}

// Duration is a time.Duration written as a Go duration string ("10s", "24h").
type Duration struct{ time.Duration }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"10s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// LoadConfig reads ca.json at path: step-ca's own configuration and the
// plugin's section (ConfigKey), checked.
func LoadConfig(path string) (*config.Config, *Config, error) {
	caCfg, err := config.LoadConfiguration(path)
	if err != nil {
		return nil, nil, err
	}
	b, err := readLimited(path)
	if err != nil {
		return nil, nil, err
	}
	pc, err := ParsePluginSection(path, b)
	if err != nil {
		return nil, nil, err
	}
	return caCfg, pc, nil
}

// ParsePluginSection extracts and checks the plugin's section from the bytes
// of ca.json; name is the file's path, for errors and relative paths.
func ParsePluginSection(name string, caJSON []byte) (*Config, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(caJSON, &top); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	raw, ok := top[ConfigKey]
	if !ok {
		return nil, fmt.Errorf("%s: no %q section (the attest-acme plugin's configuration)", name, ConfigKey)
	}
	dir := filepath.Dir(name)
	var file string
	if err := json.Unmarshal(raw, &file); err == nil {
		if file == "" {
			return nil, fmt.Errorf("%s: %s: empty file name", name, ConfigKey)
		}
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		b, err := readLimited(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", name, ConfigKey, err)
		}
		return ParseConfig(file, b)
	}
	c, err := decodeConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", name, ConfigKey, err)
	}
	c.dir = dir
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", name, ConfigKey, err)
	}
	return c, nil
}

// ParseConfig reads the plugin's configuration from a file of its own;
// name is the file's path, for errors and relative paths.
func ParseConfig(name string, b []byte) (*Config, error) {
	c, err := decodeConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c.dir = filepath.Dir(name)
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return c, nil
}

func decodeConfig(b []byte) (*Config, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	c := new(Config)
	if err := dec.Decode(c); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after the configuration object")
	}
	return c, nil
}

// check fills defaults and rejects what cannot work, naming the field.
func (c *Config) check() error {
	v := &c.Verifier
	switch v.Type {
	case VerifierEmbedded:
		if v.Policy == "" {
			return errors.New("verifier.policy: missing (the embedded verifier needs a policy file)")
		}
		if v.URL != "" {
			return errors.New("verifier.url: not used by the embedded verifier")
		}
		if v.CACerts != "" {
			return errors.New("verifier.caCerts: not used by the embedded verifier")
		}
	case VerifierService, VerifierVeraison:
		if v.URL == "" {
			return fmt.Errorf("verifier.url: missing (the %s verifier is remote)", v.Type)
		}
		if v.EARKey == "" {
			return fmt.Errorf("verifier.earKey: missing (the %s verifier's EAR key must be pinned)", v.Type)
		}
		if v.Policy != "" {
			return fmt.Errorf("verifier.policy: not used by the %s verifier", v.Type)
		}
	case "":
		return fmt.Errorf("verifier.type: missing (want %q, %q or %q)", VerifierEmbedded, VerifierService, VerifierVeraison)
	default:
		return fmt.Errorf("verifier.type: %q is not %q, %q or %q", v.Type, VerifierEmbedded, VerifierService, VerifierVeraison)
	}
	if v.Timeout.Duration == 0 {
		v.Timeout.Duration = DefaultVerifierTimeout
	} else if v.Timeout.Duration < 100*time.Millisecond || v.Timeout.Duration > 5*time.Minute {
		return fmt.Errorf("verifier.timeout: %s is outside 100ms..5m", v.Timeout.Duration)
	}
	if _, err := c.acceptedTiers(); err != nil {
		return err
	}
	if _, err := NewIssuancePolicy(c.Issuance); err != nil {
		return err
	}
	if c.MaxCertificateLifetime.Duration == 0 {
		c.MaxCertificateLifetime.Duration = DefaultMaxCertificateLifetime
	} else if c.MaxCertificateLifetime.Duration < time.Minute {
		return fmt.Errorf("maxCertificateLifetime: %s is shorter than a minute", c.MaxCertificateLifetime.Duration)
	}
	return nil
}

// acceptedTiers turns AcceptStatuses into EAR trust tiers.
func (c *Config) acceptedTiers() ([]ear.TrustTier, error) {
	if len(c.AcceptStatuses) == 0 {
		return []ear.TrustTier{ear.TrustTierAffirming}, nil
	}
	out := make([]ear.TrustTier, 0, len(c.AcceptStatuses))
	for i, s := range c.AcceptStatuses {
		switch s {
		case "affirming":
			out = append(out, ear.TrustTierAffirming)
		case "warning":
			out = append(out, ear.TrustTierWarning)
		default:
			return nil, fmt.Errorf("acceptStatuses[%d]: %q is not \"affirming\" or \"warning\"", i, s)
		}
	}
	return out, nil
}

// path resolves a configured path against the configuration's directory.
func (c *Config) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.dir, p)
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxConfigSize {
		return nil, fmt.Errorf("%s: over the limit of %d bytes", path, maxConfigSize)
	}
	return b, nil
}
