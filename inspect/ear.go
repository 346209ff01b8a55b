package inspect

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/veraison/ear"
)

// Names in the EARs attest-acme's verifier writes (docs/protocol.md §6).
const (
	policyClaimWorkload = "workload"
	policyClaimReason   = "reason"
)

// jws decodes a compact JWS with jwx. When its payload is an EAR
// (veraison/ear), it returns the EAR's node and the keys it attests
// (akpub); otherwise a node for the JWS. The signature is verified only
// against Options.EARKey, with ES256 fixed (not read from the token).
func (in *inspector) jws(token []byte) (*Node, []crypto.PublicKey, error) {
	msg, err := jws.Parse(token, jws.WithCompact())
	if err != nil {
		return nil, nil, fmt.Errorf("JWS: %w", err)
	}
	sigs := msg.Signatures()
	if len(sigs) != 1 {
		return nil, nil, fmt.Errorf("JWS: %d signatures, want 1", len(sigs))
	}
	header, err := json.Marshal(sigs[0].ProtectedHeaders())
	if err != nil {
		return nil, nil, fmt.Errorf("JWS: protected header: %w", err)
	}
	payload := msg.Payload()

	var ar ear.AttestationResult
	if earErr := ar.UnmarshalJSON(payload); earErr != nil {
		n := &Node{Kind: KindJWS, Title: fmt.Sprintf("JWS (compact, %d bytes) whose payload is not an EAR", len(token))}
		n.add("signature", "signature", "not verified").Note = "(only EARs are verified)"
		n.add("header", "header", JSON(header))
		n.add("payload_error", "not an EAR", earErr.Error())
		if json.Valid(payload) {
			n.add("payload", "payload", JSON(payload))
		} else {
			n.add("payload", "payload", Hex(payload))
		}
		return n, nil, nil
	}

	in.ears++
	sig := Field{Key: "signature", Label: "signature"}
	if key := in.opts.EARKey; key == nil {
		sig.Value = Group{field("status", "status", "not verified")}
		sig.Text = "NOT VERIFIED: no EAR verification key was given; nothing below is authenticated"
	} else if _, err := jws.Verify(token, jws.WithKey(jwa.ES256(), key)); err != nil {
		sig.Value = Group{field("status", "status", "invalid"), field("error", "error", err.Error()), keyField("key", "key", key)}
		sig.Text = "INVALID under the given key: " + err.Error()
		in.problems = append(in.problems, "EAR signature does not verify under the given key: "+err.Error())
	} else {
		kf := keyGroup(key)
		sig.Value = Group{field("status", "status", "valid"), field("alg", "alg", "ES256"), keyField("key", "key", key)}
		sig.Text = "valid: ES256 under the given key (" + kf.Text + ")"
	}
	n, keys := in.earNode(&ar, payload, fmt.Sprintf("EAR: attestation result (JWT, %d bytes)", len(token)), sig)
	n.Fields = slices.Insert(n.Fields, 1, field("header", "header", JSON(header)))
	if in.opts.EARKey == nil {
		n.note("signature NOT verified: the claims below are unauthenticated; give the verifier's public key to check it")
	}
	return n, keys, nil
}

// earClaims decodes an EAR claims set given as JSON, without a signature.
func (in *inspector) earClaims(b []byte) (*Node, error) {
	var ar ear.AttestationResult
	if err := ar.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("EAR claims: %w", err)
	}
	sig := Field{Key: "signature", Label: "signature", Value: Group{field("status", "status", "absent")},
		Text: "NONE: this is a bare claims set, not a signed EAR; nothing in it is authenticated"}
	in.ears++
	if in.opts.EARKey != nil {
		in.problems = append(in.problems, "the EAR claims set has no signature to verify")
	}
	n, _ := in.earNode(&ar, b, fmt.Sprintf("EAR claims set (JSON, %d bytes, unsigned)", len(b)), sig)
	return n, nil
}

// earNode describes an EAR's claims: the top-level claims, then one group
// per submod with its status, trust vector (with veraison/ear's
// descriptions), policy claims and attested key.
func (in *inspector) earNode(ar *ear.AttestationResult, payload []byte, title string, sig Field) (*Node, []crypto.PublicKey) {
	n := &Node{Kind: KindEAR, Title: title}
	n.Fields = append(n.Fields, sig)
	if ar.Profile != nil {
		n.add("eat_profile", "eat_profile", *ar.Profile)
	}
	if ar.IssuedAt != nil {
		iat := time.Unix(*ar.IssuedAt, 0).UTC()
		f := n.add("iat", "iat", iat)
		f.Note = fmt.Sprintf("(%d", *ar.IssuedAt)
		if in.opts.Now != nil {
			f.Note += ", " + ago(in.opts.Now(), iat)
		}
		f.Note += ")"
	}
	if ar.Nonce != nil {
		g := Group{field("encoded", "encoded", *ar.Nonce)}
		f := Field{Key: "eat_nonce", Label: "eat_nonce"}
		if b, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimRight(*ar.Nonce, "=")); err == nil {
			g = append(g, field("hex", "hex", Hex(b)))
			f.Text = scalarText(Hex(b))
			f.Note = fmt.Sprintf("(%d bytes, base64url %q)", len(b), *ar.Nonce)
		} else {
			f.Text = *ar.Nonce + "  (not base64url)"
		}
		f.Value = g
		n.Fields = append(n.Fields, f)
	}
	if v := ar.VerifierID; v != nil {
		g := Group{}
		var parts []string
		if v.Build != nil {
			g = append(g, field("build", "build", *v.Build))
			parts = append(parts, *v.Build)
		}
		if v.Developer != nil {
			g = append(g, field("developer", "developer", *v.Developer))
			parts = append(parts, *v.Developer)
		}
		n.Fields = append(n.Fields, Field{Key: "verifier_id", Label: "ear.verifier-id", Value: g, Text: strings.Join(parts, ", ")})
	}
	if ar.RawEvidence != nil {
		n.add("raw_evidence", "ear.raw-evidence", Hex(*ar.RawEvidence))
	}
	if ar.VeraisonTeeInfo != nil {
		if b, err := json.Marshal(ar.VeraisonTeeInfo); err == nil {
			n.add("tee_info", "ear.veraison.tee-info", JSON(b))
		}
	}

	var keys []crypto.PublicKey
	submods := Group{}
	names := make([]string, 0, len(ar.Submods))
	for name := range ar.Submods {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		g, key := submod(ar.Submods[name])
		if key != nil {
			keys = append(keys, key)
		}
		f := field(name, name, g)
		if s := ar.Submods[name].Status; s != nil {
			f.Note = "status " + s.String()
		}
		submods = append(submods, f)
	}
	n.add("submods", "submods", submods)
	n.Fields = append(n.Fields, Field{Key: "claims", Value: JSON(payload), JSONOnly: true})
	return n, keys
}

// submod describes one appraisal of an EAR, and returns its akpub.
func submod(a *ear.Appraisal) (Group, crypto.PublicKey) {
	g := Group{}
	if a.Status != nil {
		f := field("status", "ear.status", a.Status.String())
		if *a.Status != ear.TrustTierAffirming {
			f.Note = "(NOT affirming)"
		}
		g = append(g, f)
	}
	if a.AppraisalPolicyID != nil {
		g = append(g, field("policy_id", "ear.appraisal-policy-id", *a.AppraisalPolicyID))
	}
	if pc := a.VeraisonPolicyClaims; pc != nil {
		if w, ok := (*pc)[policyClaimWorkload].(string); ok {
			f := field("workload", "workload", w)
			if w == "" {
				f.Note = "(no workload matched)"
			}
			g = append(g, f)
		}
		if r, ok := (*pc)[policyClaimReason].(string); ok {
			g = append(g, field("reason", "reason", r))
		}
		if b, err := json.Marshal(*pc); err == nil {
			g = append(g, Field{Key: "policy_claims", Label: "ear.veraison.policy-claims", Value: JSON(b), JSONOnly: !hasOtherClaims(*pc)})
		}
	}
	var key crypto.PublicKey
	if a.VeraisonKeyAttestation != nil {
		if k, err := a.GetKeyAttestation(); err != nil {
			g = append(g, field("akpub", "akpub", "not readable: "+err.Error()))
		} else {
			key = k
			g = append(g, keyField("akpub", "akpub", k))
		}
	}
	if a.TrustVector != nil {
		g = append(g, field("trust_vector", "ear.trustworthiness-vector", trustVector(*a.TrustVector)))
	}
	if a.VeraisonAnnotatedEvidence != nil {
		if b, err := json.Marshal(*a.VeraisonAnnotatedEvidence); err == nil {
			g = append(g, field("annotated_evidence", "ear.veraison.annotated-evidence", JSON(b)))
		}
	}
	return g, key
}

// hasOtherClaims reports whether policy claims hold more than the workload
// and reason shown on their own lines.
func hasOtherClaims(pc map[string]any) bool {
	for k := range pc {
		if k != policyClaimWorkload && k != policyClaimReason {
			return true
		}
	}
	return false
}

// trustVector describes the eight AR4SI trustworthiness claims, each with
// its value, tier and veraison/ear's short and long descriptions.
func trustVector(tv ear.TrustVector) Group {
	// veraison/ear exports its descriptions only through Report, one line
	// per claim in this order: "Name [tier]: description".
	short := reportDescriptions(tv.Report(true, false))
	long := reportDescriptions(tv.Report(false, false))
	claims := []struct {
		key string
		c   ear.TrustClaim
	}{
		{"instance-identity", tv.InstanceIdentity}, {"configuration", tv.Configuration},
		{"executables", tv.Executables}, {"file-system", tv.FileSystem}, {"hardware", tv.Hardware},
		{"runtime-opaque", tv.RuntimeOpaque}, {"storage-opaque", tv.StorageOpaque}, {"sourced-data", tv.SourcedData},
	}
	g := make(Group, len(claims))
	for i, c := range claims {
		var s, l string
		if len(short) == len(claims) && len(long) == len(claims) {
			s, l = short[i], long[i]
		}
		tier := c.c.GetTier().String()
		g[i] = Field{Key: c.key, Label: c.key,
			Value: Group{field("value", "value", int(c.c)), field("tier", "tier", tier), field("description", "description", s), field("detail", "detail", l)},
			Text:  fmt.Sprintf("%3d  %-15s  %s", int(c.c), tier, s)}
	}
	return g
}

// reportDescriptions returns the description of each line of a
// TrustVector report.
func reportDescriptions(report string) []string {
	var out []string
	for line := range strings.Lines(report) {
		line = strings.TrimRight(line, "\n")
		if _, d, ok := strings.Cut(line, "]: "); ok {
			out = append(out, d)
		}
	}
	return out
}

// ago says how long before now t was, to the second.
func ago(now, t time.Time) string {
	d := now.Sub(t).Truncate(time.Second)
	if d < 0 {
		return (-d).String() + " in the future"
	}
	return d.String() + " ago"
}
