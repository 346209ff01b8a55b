// Command veraison-psa is the PSA test client for a loopback Veraison
// deployment. It only parses flags and calls the psa package.
//
//	veraison-psa keygen -out IAK.pem
//	veraison-psa pubkey -key IAK.pem                    # SPKI PEM and instance ID (base64)
//	veraison-psa token -key IAK.pem -claims CLAIMS.json -nonce HEX -out TOKEN.cbor
//	veraison-psa provision -url PROVISIONING_URL -media-type MT FILE...
//	veraison-psa verify -url VERIFICATION_URL -ear-key KEY -nonce HEX
//	    (-token TOKEN.cbor | -key IAK.pem -claims CLAIMS.json) [-want affirming] [-jwt-out EAR.jwt]
//	veraison-psa check-ear -jwt EAR.jwt -ear-key KEY -nonce HEX [-want affirming]
//
// verify and check-ear print the EAR claims as JSON on stdout and fail unless
// the EAR verifies under the pinned key, carries the nonce, is fresh, and its
// PSA_IOT submod has the wanted status.
package main

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/veraison/ear"

	"github.com/attest-acme/attest-acme/tools/veraison/client/psa"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(os.Args[1:], os.Stdout, time.Now); err != nil {
		logger.Error("veraison-psa failed", "err", err)
		os.Exit(1)
	}
}

const usage = `usage: veraison-psa COMMAND [flags]
commands: keygen, pubkey, token, provision, verify, check-ear`

// EAR freshness accepted by verify and check-ear.
const (
	earMaxAge = 5 * time.Minute
	earSkew   = time.Minute
)

func run(args []string, stdout io.Writer, now func() time.Time) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	switch cmd {
	case "keygen":
		out := fs.String("out", "", "file for the new IAK (PKCS#8 PEM); must not exist")
		if err := parse(fs, args); err != nil {
			return err
		}
		if *out == "" {
			return errors.New("keygen: -out is required")
		}
		pemBytes, err := psa.GenerateIAK(rand.Reader)
		if err != nil {
			return err
		}
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("keygen: %w", err)
		}
		if _, err := f.Write(pemBytes); err != nil {
			f.Close()
			return fmt.Errorf("keygen: %w", err)
		}
		return f.Close()

	case "pubkey":
		keyPath := fs.String("key", "", "IAK (PEM)")
		if err := parse(fs, args); err != nil {
			return err
		}
		key, err := loadIAK(*keyPath)
		if err != nil {
			return err
		}
		pub, err := psa.PublicKeyPEM(&key.PublicKey)
		if err != nil {
			return err
		}
		id, err := psa.InstanceID(&key.PublicKey)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%sinstance-id: %s\n", pub, base64.StdEncoding.EncodeToString(id))
		return err

	case "token":
		keyPath := fs.String("key", "", "IAK (PEM)")
		claimsPath := fs.String("claims", "", "claims template (psatoken JSON, without psa-nonce)")
		nonceHex := fs.String("nonce", "", "psa-nonce, hex (32, 48 or 64 bytes)")
		out := fs.String("out", "", "output file for the token (COSE_Sign1 CBOR)")
		if err := parse(fs, args); err != nil {
			return err
		}
		if *out == "" {
			return errors.New("token: -out is required")
		}
		nonce, err := parseNonce(*nonceHex)
		if err != nil {
			return err
		}
		tok, err := buildToken(*keyPath, *claimsPath, nonce)
		if err != nil {
			return err
		}
		return os.WriteFile(*out, tok, 0o644)

	case "provision":
		base := fs.String("url", "", "provisioning service base URL")
		mt := fs.String("media-type", psa.MediaTypeCoRIM, "media type of the documents")
		if err := fs.Parse(args); err != nil {
			return err
		}
		if *base == "" || fs.NArg() == 0 {
			return errors.New("provision: -url and at least one file are required")
		}
		for _, p := range fs.Args() {
			doc, err := os.ReadFile(p)
			if err != nil {
				return fmt.Errorf("provision: %w", err)
			}
			if err := psa.Provision(*base, *mt, doc); err != nil {
				return fmt.Errorf("provision %s: %w", p, err)
			}
			fmt.Fprintf(stdout, "provisioned %s\n", p)
		}
		return nil

	case "verify":
		base := fs.String("url", "", "verification service base URL")
		earKeyPath := fs.String("ear-key", "", "pinned EAR verification key (JWK or PEM)")
		nonceHex := fs.String("nonce", "", "session nonce = psa-nonce, hex (32, 48 or 64 bytes)")
		tokenPath := fs.String("token", "", "a ready token to submit (else one is built with -key and -claims)")
		keyPath := fs.String("key", "", "IAK (PEM)")
		claimsPath := fs.String("claims", "", "claims template")
		want := fs.String("want", "affirming", "required status of the PSA_IOT submod")
		jwtOut := fs.String("jwt-out", "", "file to save the EAR JWT to")
		if err := parse(fs, args); err != nil {
			return err
		}
		if *base == "" {
			return errors.New("verify: -url is required")
		}
		nonce, err := parseNonce(*nonceHex)
		if err != nil {
			return err
		}
		earKey, err := loadEARKey(*earKeyPath)
		if err != nil {
			return err
		}
		wantTier, err := parseTier(*want)
		if err != nil {
			return err
		}
		var build psa.EvidenceFunc
		switch {
		case *tokenPath != "" && (*keyPath != "" || *claimsPath != ""):
			return errors.New("verify: give either -token or -key and -claims")
		case *tokenPath != "":
			tok, err := os.ReadFile(*tokenPath)
			if err != nil {
				return fmt.Errorf("verify: %w", err)
			}
			build = func([]byte) ([]byte, error) { return tok, nil }
		default:
			build = func(n []byte) ([]byte, error) { return buildToken(*keyPath, *claimsPath, n) }
		}
		jwt, err := psa.ChallengeResponse(*base, nonce, psa.MediaTypeToken, build)
		if err != nil {
			return err
		}
		if *jwtOut != "" {
			if err := os.WriteFile(*jwtOut, jwt, 0o644); err != nil {
				return fmt.Errorf("verify: %w", err)
			}
		}
		return checkAndPrint(jwt, earKey, nonce, wantTier, now(), stdout)

	case "check-ear":
		jwtPath := fs.String("jwt", "", "EAR JWT file")
		earKeyPath := fs.String("ear-key", "", "pinned EAR verification key (JWK or PEM)")
		nonceHex := fs.String("nonce", "", "expected eat_nonce, hex")
		want := fs.String("want", "affirming", "required status of the PSA_IOT submod")
		if err := parse(fs, args); err != nil {
			return err
		}
		nonce, err := hex.DecodeString(*nonceHex)
		if err != nil || len(nonce) == 0 {
			return fmt.Errorf("check-ear: -nonce must be non-empty hex (%v)", err)
		}
		earKey, err := loadEARKey(*earKeyPath)
		if err != nil {
			return err
		}
		wantTier, err := parseTier(*want)
		if err != nil {
			return err
		}
		jwt, err := os.ReadFile(*jwtPath)
		if err != nil {
			return fmt.Errorf("check-ear: %w", err)
		}
		return checkAndPrint([]byte(strings.TrimSpace(string(jwt))), earKey, nonce, wantTier, now(), stdout)

	default:
		return fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
}

func checkAndPrint(jwt []byte, key *ecdsa.PublicKey, nonce []byte, want ear.TrustTier, now time.Time, stdout io.Writer) error {
	ar, err := psa.CheckEAR(jwt, psa.EARCheck{Key: key, Nonce: nonce, Now: now, MaxAge: earMaxAge, Skew: earSkew})
	if err != nil {
		return err
	}
	doc, err := ar.MarshalJSONIndent("", "  ")
	if err != nil {
		return fmt.Errorf("encoding the EAR claims: %w", err)
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", doc); err != nil {
		return err
	}
	got, err := psa.SubmodStatus(ar, psa.SubmodName)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("EAR submod %s status is %s, want %s", psa.SubmodName, got, want)
	}
	return nil
}

// parse parses flags and rejects positional arguments.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %q", fs.Name(), fs.Args())
	}
	return nil
}

func parseNonce(h string) ([]byte, error) {
	if h == "" {
		return nil, errors.New("-nonce is required")
	}
	n, err := hex.DecodeString(h)
	if err != nil {
		return nil, fmt.Errorf("-nonce: %w", err)
	}
	if err := psa.CheckNonce(n); err != nil {
		return nil, err
	}
	return n, nil
}

func parseTier(s string) (ear.TrustTier, error) {
	t, ok := ear.StringToTrustTier[s]
	if !ok {
		return ear.TrustTierNone, fmt.Errorf("-want %q: want none, affirming, warning or contraindicated", s)
	}
	return t, nil
}

func loadIAK(path string) (*ecdsa.PrivateKey, error) {
	if path == "" {
		return nil, errors.New("-key is required")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return psa.LoadIAK(b)
}

func loadEARKey(path string) (*ecdsa.PublicKey, error) {
	if path == "" {
		return nil, errors.New("-ear-key is required")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return psa.ParseEARKey(b)
}

func buildToken(keyPath, claimsPath string, nonce []byte) ([]byte, error) {
	key, err := loadIAK(keyPath)
	if err != nil {
		return nil, err
	}
	if claimsPath == "" {
		return nil, errors.New("-claims is required")
	}
	claims, err := os.ReadFile(claimsPath)
	if err != nil {
		return nil, err
	}
	return psa.NewToken(claims, nonce, key)
}
