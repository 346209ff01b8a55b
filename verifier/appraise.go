package verifier

import (
	"bytes"
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/attest-acme/attest-acme/challenge"
	"github.com/attest-acme/attest-acme/evidence"
	"github.com/attest-acme/attest-acme/evidence/tpm"
	"github.com/attest-acme/attest-acme/evidence/tsm"
	"github.com/veraison/ear"
)

// Submod names (docs/protocol.md §6).
const (
	PlatformTPM    = "tpm"
	PlatformSEVSNP = "sev-snp"
	PlatformTDX    = "tdx"
	// platformUnknown names the submod of an EAR for evidence whose platform
	// could not even be told (an unreadable bundle).
	platformUnknown = "attest-acme"
)

// appraisedMediaTypes are the media types the in-process appraiser reads.
var appraisedMediaTypes = []string{evidence.MediaTypeBundle, evidence.MediaTypeTPMQuote, evidence.MediaTypeTSMReport}

func knownMediaType(mt string) bool { return slices.Contains(appraisedMediaTypes, mt) }

// Appraiser is the in-process Verifier: it appraises evidence against a Policy
// and signs the result. It is safe for concurrent use.
type Appraiser struct {
	policy     *Policy
	signer     *Signer
	now        func() time.Time
	log        *slog.Logger
	metrics    *Metrics
	tpm        *tpm.Verifier // nil when the policy trusts no AK
	tsm        *tsm.Verifier
	mediaTypes []string
}

// AppraiserConfig configures an Appraiser.
type AppraiserConfig struct {
	// Policy is the appraisal policy.
	Policy *Policy
	// Signer signs the EARs.
	Signer *Signer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log gets one line per appraisal; nil discards.
	Log *slog.Logger
	// Metrics, if not nil, counts appraisals by platform and result.
	Metrics *Metrics
}

// NewAppraiser builds the platform appraisers from the policy's trust anchors.
func NewAppraiser(cfg AppraiserConfig) (*Appraiser, error) {
	if cfg.Policy == nil || cfg.Signer == nil {
		return nil, errors.New("appraiser: a policy and a signer are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	a := &Appraiser{policy: cfg.Policy, signer: cfg.Signer, now: cfg.Now, log: cfg.Log, metrics: cfg.Metrics}
	ta := cfg.Policy.TrustAnchors
	if len(ta.TPM.keys) > 0 || len(ta.TPM.roots) > 0 {
		v, err := tpm.NewVerifier(tpm.Anchors{AKs: ta.TPM.keys, Roots: ta.TPM.roots, Now: cfg.Now})
		if err != nil {
			return nil, fmt.Errorf("appraiser: %w", err)
		}
		a.tpm = v
	}
	snp, err := tsm.NewSNPVerifier(tsm.SNPOptions{Roots: ta.snpRoots, Now: cfg.Now})
	if err != nil {
		return nil, fmt.Errorf("appraiser: %w", err)
	}
	tdx, err := tsm.NewTDXVerifier(tsm.TDXOptions{Roots: ta.tdxRoots, Now: cfg.Now})
	if err != nil {
		return nil, fmt.Errorf("appraiser: %w", err)
	}
	a.tsm = tsm.NewVerifier(tsm.Options{SNP: snp, TDX: tdx})
	a.mediaTypes = cfg.Policy.MediaTypes
	if len(a.mediaTypes) == 0 {
		a.mediaTypes = appraisedMediaTypes
	}
	return a, nil
}

// MediaTypes lists the evidence media types this appraiser accepts.
func (a *Appraiser) MediaTypes() []string { return slices.Clone(a.mediaTypes) }

// VerificationKey is the public key EARs are signed with.
func (a *Appraiser) VerificationKey() crypto.PublicKey { return a.signer.Public() }

// Appraise implements Verifier. A bundle is appraised with nonce N: the kc's
// eat_nonce must be N, D = H(kc) must be in the platform evidence, and the EAR
// carries the kc's key. Bare platform evidence is appraised with nonce D.
func (a *Appraiser) Appraise(_ context.Context, ev evidence.Evidence, nonce []byte) ([]byte, error) {
	if !slices.Contains(a.mediaTypes, ev.MediaType) {
		return nil, &RejectedError{Reason: fmt.Sprintf("media type %q is not accepted", ev.MediaType)}
	}
	if len(nonce) < minNonceSize || len(nonce) > maxNonceSize {
		return nil, &RejectedError{Reason: fmt.Sprintf("nonce is %d bytes, want %d..%d", len(nonce), minNonceSize, maxNonceSize)}
	}
	start := time.Now()
	out := a.appraise(ev, nonce)
	out.Nonce = nonce
	out.PolicyID = a.policy.ID
	tok, err := a.signer.Sign(out)
	if err != nil {
		return nil, err
	}
	status := ear.TrustTierToString[out.Status]
	a.metrics.observe(out.Platform, status, time.Since(start))
	a.log.Info("appraisal", "platform", out.Platform, "status", status, "workload", out.Workload, "reason", out.Reason)
	return tok, nil
}

// failed is the outcome of evidence that could not be verified.
func failed(platform string, err error) Outcome {
	var tv ear.TrustVector
	tv.InstanceIdentity = ear.CryptoValidationFailedClaim
	return Outcome{Platform: platform, Status: ear.TrustTierContraindicated, TrustVector: tv, Reason: err.Error()}
}

func (a *Appraiser) appraise(ev evidence.Evidence, nonce []byte) Outcome {
	platformEv, d := ev, nonce
	var key crypto.PublicKey
	if ev.MediaType == evidence.MediaTypeBundle {
		dec, err := challenge.DecodeBundle(ev.Data, nonce, a.now())
		if err != nil {
			name := platformUnknown
			if b, perr := evidence.ParseBundle(ev.Data); perr == nil {
				name = platformOf(b.Platform.MediaType, b.Platform.Data)
			}
			return failed(name, err)
		}
		platformEv, d, key = dec.Bundle.Platform, dec.D, dec.KC.Key
	}

	var out Outcome
	switch platformEv.MediaType {
	case evidence.MediaTypeTPMQuote:
		out = a.appraiseTPM(platformEv.Data, d)
	case evidence.MediaTypeTSMReport:
		out = a.appraiseTSM(platformEv.Data, d)
	default:
		return failed(platformUnknown, fmt.Errorf("platform evidence of media type %q is not appraised here", platformEv.MediaType))
	}
	// Only an acceptable outcome names the key: nothing may be issued for a
	// contraindicated one.
	if out.Status == ear.TrustTierAffirming || out.Status == ear.TrustTierWarning {
		out.Key = key
	}
	return out
}

// platformOf names the platform of evidence for a submod, without appraising it.
func platformOf(mediaType string, data []byte) string {
	switch mediaType {
	case evidence.MediaTypeTPMQuote:
		return PlatformTPM
	case evidence.MediaTypeTSMReport:
		if r, err := tsm.ParseReport(data); err == nil {
			switch r.Provider {
			case tsm.ProviderSNP:
				return PlatformSEVSNP
			case tsm.ProviderTDX:
				return PlatformTDX
			case tsm.ProviderCCA:
				return "cca"
			}
		}
	}
	return platformUnknown
}

func (a *Appraiser) appraiseTPM(data, d []byte) Outcome {
	if a.tpm == nil {
		return failed(PlatformTPM, errors.New("tpm: the policy trusts no attestation key"))
	}
	c, err := a.tpm.Appraise(data, d)
	if err != nil {
		return failed(PlatformTPM, err)
	}
	// The AK is trusted by the policy (pinned or certified): that identifies
	// the instance. A pinned key says nothing about the TPM being genuine
	// hardware, so no hardware claim is made.
	tv := ear.TrustVector{InstanceIdentity: ear.TrustworthyInstanceClaim}
	for _, w := range a.policy.Workloads {
		if w.TPM == nil {
			continue
		}
		if why := matchPCRs(w.TPM, c.PCRs); why != "" {
			continue
		}
		tv.Executables = ear.ApprovedBootClaim
		return Outcome{Platform: PlatformTPM, Status: ear.TrustTierAffirming, TrustVector: tv, Workload: w.Name}
	}
	tv.Executables = ear.UnrecognizedRuntimeClaim
	return Outcome{Platform: PlatformTPM, Status: ear.TrustTierContraindicated, TrustVector: tv,
		Reason: "tpm: no workload matched the quoted PCR values" + firstMismatch(a.policy.Workloads, func(w Workload) string {
			if w.TPM == nil {
				return ""
			}
			return matchPCRs(w.TPM, c.PCRs)
		})}
}

// matchPCRs returns "" when every PCR the reference lists was quoted with
// that value, or what differs.
func matchPCRs(ref *TPMReference, got tpm.PCRValues) string {
	for bankName, pcrs := range ref.PCRs {
		bank, err := tpm.ParseBank(bankName)
		if err != nil {
			return err.Error()
		}
		for idx, want := range pcrs {
			v, ok := got[bank][idx]
			if !ok {
				return fmt.Sprintf("PCR %s:%d was not quoted", bankName, idx)
			}
			if !bytes.Equal(v, want.Bytes) {
				return fmt.Sprintf("PCR %s:%d is %s", bankName, idx, hex.EncodeToString(v))
			}
		}
	}
	return ""
}

// firstMismatch explains, for the first workload of the platform, why it did
// not match.
func firstMismatch(ws []Workload, why func(Workload) string) string {
	for _, w := range ws {
		if r := why(w); r != "" {
			return fmt.Sprintf(" (workload %q: %s)", w.Name, r)
		}
	}
	return " (the policy has no workload for this platform)"
}

func (a *Appraiser) appraiseTSM(data, d []byte) Outcome {
	c, err := a.tsm.Appraise(data, d)
	if err != nil {
		return failed(platformOf(evidence.MediaTypeTSMReport, data), err)
	}
	switch {
	case c.SNP != nil:
		return a.appraiseSNP(c.SNP)
	case c.TDX != nil:
		return a.appraiseTDX(c.TDX)
	}
	return failed(platformUnknown, fmt.Errorf("tsm: provider %s has no appraiser", c.Provider))
}

func (a *Appraiser) appraiseSNP(c *tsm.SNPClaims) Outcome {
	// The VCEK chain to a trusted ARK was verified: the instance and the AMD
	// hardware are what the trust anchors vouch for.
	tv := ear.TrustVector{InstanceIdentity: ear.TrustworthyInstanceClaim, Hardware: ear.GenuineHardwareClaim}
	if c.Policy.Debug {
		tv.RuntimeOpaque = ear.VisibleMemoryRuntimeClaim
	} else {
		tv.RuntimeOpaque = ear.EncryptedMemoryRuntimeClaim
	}
	for _, w := range a.policy.Workloads {
		ref := w.SEVSNP
		if ref == nil || !bytes.Equal(ref.Measurement.Bytes, c.Measurement) {
			continue
		}
		if ref.HostData.IsSet() && !bytes.Equal(ref.HostData.Bytes, c.HostData) {
			continue
		}
		tv.Executables = ear.ApprovedRuntimeClaim
		out := Outcome{Platform: PlatformSEVSNP, TrustVector: tv, Workload: w.Name, Status: ear.TrustTierContraindicated}
		switch {
		case c.Policy.Debug && !ref.AllowDebug:
			out.TrustVector.Configuration = ear.UnsupportableConfigClaim
			out.Reason = fmt.Sprintf("sev-snp: the guest policy allows debugging, which workload %q does not allow", w.Name)
		case int(c.VMPL) > ref.MaxVMPL:
			out.TrustVector.Configuration = ear.UnsupportableConfigClaim
			out.Reason = fmt.Sprintf("sev-snp: report from VMPL %d, workload %q allows at most %d", c.VMPL, w.Name, ref.MaxVMPL)
		case ref.MinTCB != nil && !c.ReportedTCB.AtLeast(ref.minTCB):
			out.TrustVector.Hardware = ear.UnsafeHardwareClaim
			out.Reason = fmt.Sprintf("sev-snp: reported TCB %s is below the minimum %s of workload %q", fmtTCB(c.ReportedTCB), fmtTCB(ref.minTCB), w.Name)
		default:
			out.TrustVector.Configuration = ear.ApprovedConfigClaim
			out.Status = ear.TrustTierAffirming
			if c.Policy.Debug {
				// Allowed by the policy, but the host can read the guest.
				out.Status = ear.TrustTierWarning
			}
		}
		return out
	}
	tv.Executables = ear.UnrecognizedRuntimeClaim
	return Outcome{Platform: PlatformSEVSNP, Status: ear.TrustTierContraindicated, TrustVector: tv,
		Reason: fmt.Sprintf("sev-snp: no workload matched MEASUREMENT %s", hex.EncodeToString(c.Measurement))}
}

func fmtTCB(t tsm.SNPTCB) string {
	return fmt.Sprintf("{bootloader %d, tee %d, snp %d, microcode %d}", t.BootLoader, t.TEE, t.SNP, t.Microcode)
}

func (a *Appraiser) appraiseTDX(c *tsm.TDXClaims) Outcome {
	// The PCK chain to a trusted root and the QE report were verified. The TCB
	// status is not (offline appraisal, see tsm.TDXVerifier), so the hardware
	// claim says genuine, not up to date.
	tv := ear.TrustVector{InstanceIdentity: ear.TrustworthyInstanceClaim, Hardware: ear.GenuineHardwareClaim}
	if c.Debug {
		tv.RuntimeOpaque = ear.VisibleMemoryRuntimeClaim
	} else {
		tv.RuntimeOpaque = ear.EncryptedMemoryRuntimeClaim
	}
	for _, w := range a.policy.Workloads {
		ref := w.TDX
		if ref == nil || !bytes.Equal(ref.MRTD.Bytes, c.MRTD) || !rtmrsMatch(ref.RTMRs, c.RTMR) {
			continue
		}
		tv.Executables = ear.ApprovedRuntimeClaim
		out := Outcome{Platform: PlatformTDX, TrustVector: tv, Workload: w.Name, Status: ear.TrustTierContraindicated}
		switch {
		case c.Debug && !ref.AllowDebug:
			out.TrustVector.Configuration = ear.UnsupportableConfigClaim
			out.Reason = fmt.Sprintf("tdx: the TD has the DEBUG attribute, which workload %q does not allow", w.Name)
		case ref.Attributes.IsSet() && !bytes.Equal(ref.Attributes.Bytes, c.TDAttributes):
			out.TrustVector.Configuration = ear.UnsupportableConfigClaim
			out.Reason = fmt.Sprintf("tdx: TD_ATTRIBUTES %s, workload %q wants %s", hex.EncodeToString(c.TDAttributes), w.Name, hex.EncodeToString(ref.Attributes.Bytes))
		default:
			out.TrustVector.Configuration = ear.ApprovedConfigClaim
			out.Status = ear.TrustTierAffirming
			if c.Debug {
				out.Status = ear.TrustTierWarning
			}
		}
		return out
	}
	tv.Executables = ear.UnrecognizedRuntimeClaim
	return Outcome{Platform: PlatformTDX, Status: ear.TrustTierContraindicated, TrustVector: tv,
		Reason: fmt.Sprintf("tdx: no workload matched MRTD %s and its RTMRs", hex.EncodeToString(c.MRTD))}
}

func rtmrsMatch(ref map[int]HexValue, got [4][]byte) bool {
	for i, v := range ref {
		if !bytes.Equal(v.Bytes, got[i]) {
			return false
		}
	}
	return true
}
