package acmeclient_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/attest-acme/attest-acme/acmeclient"
	"github.com/attest-acme/attest-acme/evidence/sim"
)

// TestObtainWithDNSNames orders a permanent-identifier and a dns identifier
// together. step-ca accepts the order and validates both authorizations
// (device-attest-01 and http-01 through lego's solver), but its
// attested-leaf template puts only the permanent identifier in the
// certificate; the client refuses such a certificate and writes nothing.
func TestObtainWithDNSNames(t *testing.T) {
	solver := freePort(t)
	hc := &http01Client{addr: solver}
	ca := startCA(t, caOptions{challengeClient: hc})
	g, err := sim.NewSNP(sim.SNPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cl, events := ca.client(t, dir, g, func(c *acmeclient.Config) { c.HTTP01Address = solver })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = cl.Obtain(ctx, acmeclient.Request{Identifier: "vm-dns", DNSNames: []string{"web.localhost"}})
	t.Logf("Obtain: %v", err)
	stages := events.stages()
	if !slices.Contains(stages, "http-01") || !slices.Contains(stages, "challenge") {
		t.Fatalf("stages %v: want both challenges validated", stages)
	}
	for _, e := range events.events {
		if e.Stage == "http-01" && e.Err != nil {
			t.Fatalf("http-01 failed: %v", e.Err)
		}
	}
	if got := hc.fetched(); len(got) != 1 || !strings.Contains(got[0], "http://web.localhost/.well-known/acme-challenge/") {
		t.Errorf("step-ca fetched %v, want the http-01 answer for web.localhost", got)
	}
	if err == nil || !strings.Contains(err.Error(), "without the DNS names web.localhost") {
		t.Fatalf("Obtain: %v; want the refusal of a certificate without the DNS name", err)
	}
	if _, err := os.Stat(dir + "/certificates"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("certificates directory: %v; want none written", err)
	}
}

// TestObtainHTTP01Unreachable checks that an http-01 answer the CA cannot
// fetch ends the issuance at once with the CA's problem (step-ca leaves
// such a challenge pending, with its error, for the client to retry).
func TestObtainHTTP01Unreachable(t *testing.T) {
	hc := &http01Client{addr: freePort(t)} // nothing listens there
	ca := startCA(t, caOptions{challengeClient: hc})
	g, err := sim.NewSNP(sim.SNPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	solver := freePort(t)
	cl, _ := ca.client(t, t.TempDir(), g, func(c *acmeclient.Config) { c.HTTP01Address = solver })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = cl.Obtain(ctx, acmeclient.Request{Identifier: "vm-dns", DNSNames: []string{"web.localhost"}})
	var pe *acmeclient.ProblemError
	if !errors.As(err, &pe) || pe.Type != "urn:ietf:params:acme:error:connection" ||
		!strings.Contains(err.Error(), `http-01 challenge for dns "web.localhost"`) {
		t.Fatalf("Obtain: %v; want the CA's connection problem for the http-01 challenge", err)
	}
}
