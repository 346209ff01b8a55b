package acmeclient

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"
)

func TestKeyTypesRoundTrip(t *testing.T) {
	for _, kt := range []KeyType{EC256, EC384, Ed25519, RSA2048} {
		t.Run(string(kt), func(t *testing.T) {
			parsed, err := ParseKeyType(strings.ToUpper(string(kt)))
			if err != nil || parsed != kt {
				t.Fatalf("ParseKeyType: %v %v", parsed, err)
			}
			k, err := GenerateKey(kt)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := KeyTypeOf(k.Public()); err != nil || got != kt {
				t.Fatalf("KeyTypeOf: %v %v", got, err)
			}
			p, err := EncodeKeyPEM(k)
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseKeyPEM(p)
			if err != nil || !samePublicKey(back.Public(), k.Public()) {
				t.Fatalf("ParseKeyPEM: %v", err)
			}
			csr, err := newCSR(k, "vm-1", []string{"a.example"})
			if err != nil {
				t.Fatal(err)
			}
			cr, err := x509.ParseCertificateRequest(csr)
			if err != nil || cr.CheckSignature() != nil || cr.Subject.CommonName != "vm-1" || cr.DNSNames[0] != "a.example" {
				t.Fatalf("CSR: %v", err)
			}
		})
	}
}

func TestKeyRejects(t *testing.T) {
	if _, err := ParseKeyType("dsa1024"); err == nil || !strings.Contains(err.Error(), "ec256, ec384, ed25519, rsa2048") {
		t.Errorf("ParseKeyType(dsa1024): %v", err)
	}
	k, _ := GenerateKey(EC256)
	good, _ := EncodeKeyPEM(k)
	for name, tc := range map[string]struct {
		pem  []byte
		want string
	}{
		"not PEM":           {[]byte("junk"), "no PEM block"},
		"certificate block": {pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), `PEM block "CERTIFICATE"`},
		"trailing data":     {append(append([]byte{}, good...), "more"...), "data after the PEM block"},
		"oversized":         {make([]byte, maxKeyPEM+1), "over the limit"},
		"bad DER":           {pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2}}), "private key:"},
	} {
		if _, err := ParseKeyPEM(tc.pem); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

func TestRequestRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		r    Request
		want string
	}{
		"empty identifier":  {Request{}, "is empty"},
		"assigner":          {Request{Identifier: "vm/1.2.3"}, "assigner OID"},
		"space":             {Request{Identifier: "vm 1"}, "white space"},
		"control character": {Request{Identifier: "vm\x001"}, "control"},
		"too long":          {Request{Identifier: strings.Repeat("a", 256)}, "over the limit of 255"},
		"wildcard":          {Request{Identifier: "vm", DNSNames: []string{"*.a.example"}}, "wildcard needs dns-01"},
		"bad DNS name":      {Request{Identifier: "vm", DNSNames: []string{"a_b.example"}}, "only letters"},
		"bad key type":      {Request{Identifier: "vm", KeyType: "ec521"}, "not one of"},
	} {
		if err := tc.r.check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	r := Request{Identifier: "vm", DNSNames: []string{"A.Example.", "a.example", "b.example"}}
	if err := r.check(); err != nil || len(r.DNSNames) != 2 || r.DNSNames[0] != "a.example" || r.KeyType != EC256 {
		t.Errorf("check normalised to %+v (%v)", r, err)
	}
}

func TestSchedule(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	na := nb.Add(90 * time.Minute)
	if got := RenewalTime(nb, na, 2.0/3, 0.05, 0); got.Sub(nb.Add(time.Hour)).Abs() > time.Millisecond {
		t.Errorf("RenewalTime without jitter: %v", got)
	}
	if got := RenewalTime(nb, na, 2.0/3, 0.1, 0.5); got.Sub(nb.Add(time.Hour-270*time.Second)).Abs() > time.Millisecond {
		t.Errorf("RenewalTime with jitter: %v", got)
	}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 10: time.Minute, 100: time.Minute} {
		if got := Backoff(n, time.Second, time.Minute, 0.999999999); got < want-time.Millisecond || got > want {
			t.Errorf("Backoff(%d) = %v, want about %v", n, got, want)
		}
		if got := Backoff(n, time.Second, time.Minute, 0); got != want/2 {
			t.Errorf("Backoff(%d, r=0) = %v, want %v", n, got, want/2)
		}
	}
	if got := RenewThreshold(nb, na, 0); got != 30*time.Minute {
		t.Errorf("RenewThreshold default: %v", got)
	}
	o := RunOptions{Request: Request{Identifier: "vm"}, RenewAt: 0.5, Jitter: 0.6}
	if err := o.check(); err == nil {
		t.Error("jitter above renew-at accepted")
	}
}
