package caplugin

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

const validSection = `{
  "verifier": {"type": "embedded", "policy": "verifier-policy.yaml"},
  "issuance": [{"workload": "demo", "permanentIdentifiers": ["*"]}]
}`

func TestParsePluginSection(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "plugin.json"), []byte(validSection), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, caJSON string
	}{
		{"inline section", `{"address": ":443", "attestAcme": ` + validSection + `}`},
		{"section in a file named by ca.json", `{"address": ":443", "attestAcme": "plugin.json"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParsePluginSection(filepath.Join(dir, "ca.json"), []byte(tc.caJSON))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := c.path(c.Verifier.Policy), filepath.Join(dir, "verifier-policy.yaml"); got != want {
				t.Errorf("policy path %q, want %q (relative to ca.json)", got, want)
			}
			if c.Verifier.Timeout.Duration != DefaultVerifierTimeout || c.MaxCertificateLifetime.Duration != DefaultMaxCertificateLifetime {
				t.Errorf("defaults not filled: timeout %s, lifetime %s", c.Verifier.Timeout, c.MaxCertificateLifetime)
			}
			tiers, err := c.acceptedTiers()
			if err != nil || len(tiers) != 1 || tiers[0] != 2 {
				t.Errorf("accepted tiers %v, %v; want affirming only", tiers, err)
			}
		})
	}
}

func TestParsePluginSectionRejects(t *testing.T) {
	for _, tc := range []struct {
		name, section, wantErr string
	}{
		{"unknown top-level field", `{"verifier": {"type": "embedded", "policy": "p"}, "issuance": [], "verifiers": 1}`, `unknown field "verifiers"`},
		{"unknown verifier field", `{"verifier": {"type": "embedded", "policy": "p", "polcy": "q"}, "issuance": []}`, `unknown field "polcy"`},
		{"unknown issuance field", `{"verifier": {"type": "embedded", "policy": "p"}, "issuance": [{"workload": "w", "permanentIdentifiers": ["a"], "dns": ["x"]}]}`, `unknown field "dns"`},
		{"no verifier type", `{"verifier": {}, "issuance": []}`, "verifier.type: missing"},
		{"unknown verifier type", `{"verifier": {"type": "magic"}, "issuance": []}`, `verifier.type: "magic" is not`},
		{"embedded without a policy", `{"verifier": {"type": "embedded"}, "issuance": []}`, "verifier.policy: missing"},
		{"embedded with a URL", `{"verifier": {"type": "embedded", "policy": "p", "url": "https://v"}, "issuance": []}`, "verifier.url: not used"},
		{"service without a URL", `{"verifier": {"type": "service", "earKey": "k.pem"}, "issuance": []}`, "verifier.url: missing"},
		{"service without a pinned key", `{"verifier": {"type": "service", "url": "https://v"}, "issuance": []}`, "verifier.earKey: missing"},
		{"veraison with a policy", `{"verifier": {"type": "veraison", "url": "https://v", "earKey": "k", "policy": "p"}, "issuance": []}`, "verifier.policy: not used"},
		{"timeout too long", `{"verifier": {"type": "embedded", "policy": "p", "timeout": "1h"}, "issuance": []}`, "verifier.timeout: 1h0m0s is outside"},
		{"timeout not a duration", `{"verifier": {"type": "embedded", "policy": "p", "timeout": 10}, "issuance": []}`, "duration must be a string"},
		{"contraindicated accepted", `{"verifier": {"type": "embedded", "policy": "p"}, "acceptStatuses": ["contraindicated"], "issuance": []}`, `acceptStatuses[0]: "contraindicated"`},
		{"bad issuance rule", `{"verifier": {"type": "embedded", "policy": "p"}, "issuance": [{"workload": "w"}]}`, "issuance[0].permanentIdentifiers"},
		{"lifetime too short", `{"verifier": {"type": "embedded", "policy": "p"}, "issuance": [], "maxCertificateLifetime": "30s"}`, "maxCertificateLifetime: 30s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePluginSection("ca.json", []byte(`{"attestAcme": `+tc.section+`}`))
			checkErr(t, err, tc.wantErr)
		})
	}
	t.Run("no section", func(t *testing.T) {
		_, err := ParsePluginSection("ca.json", []byte(`{"address": ":443"}`))
		checkErr(t, err, `no "attestAcme" section`)
	})
	t.Run("trailing data in the section's file", func(t *testing.T) {
		_, err := ParseConfig("plugin.json", []byte(validSection+` {}`))
		checkErr(t, err, "plugin.json: trailing data")
	})
	t.Run("section file missing", func(t *testing.T) {
		_, err := ParsePluginSection(filepath.Join(t.TempDir(), "ca.json"), []byte(`{"attestAcme": "nope.json"}`))
		checkErr(t, err, "nope.json")
	})
}

func TestDurationRoundTrip(t *testing.T) {
	var d Duration
	if err := d.UnmarshalJSON([]byte(`"90m"`)); err != nil || d.Duration != 90*time.Minute {
		t.Fatalf("got %s, %v", d, err)
	}
	b, err := d.MarshalJSON()
	if err != nil || string(b) != `"1h30m0s"` {
		t.Fatalf("marshalled %s, %v", b, err)
	}
}
