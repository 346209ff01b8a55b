package caplugin

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/attest-acme/attest-acme/challenge"
	"github.com/veraison/cmw"
	"go.step.sm/crypto/keyutil"
	"go.step.sm/crypto/x509util"
)

// Object identifiers of the SANs the enforcer reads.
var (
	oidSubjectAltName      = asn1.ObjectIdentifier{2, 5, 29, 17}              // id-ce-subjectAltName
	oidPermanentIdentifier = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 3} // id-on-permanentIdentifier (RFC 4043)
	oidHardwareModuleName  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 4} // id-on-hardwareModuleName (RFC 4108)
)

// enforcer is the last hook on every certificate step-ca signs
// (authority.WithX509Enforcers). For a certificate with a permanent-identifier
// SAN it looks up the attestation result stored at the challenge, by the
// certificate's key and that identifier, and then adds the EAR as an
// id-pe-cmw extension, checks the SANs against the workload's issuance rule
// and caps the lifetime. Other certificates pass unchanged.
//
// It fails closed: an identifier that the issuance policy covers but that has
// no stored result for this key (validated another way, or not at all), an
// expired record, a SAN the workload may not have, or an id-pe-cmw extension
// the CA did not make, refuse the certificate.
type enforcer struct {
	store       *store
	policy      *IssuancePolicy
	maxLifetime time.Duration
	now         func() time.Time
	log         *slog.Logger
	metrics     *Metrics
}

// Enforce implements provisioner.CertificateEnforcer.
func (e *enforcer) Enforce(cert *x509.Certificate) error {
	if err := e.enforce(cert); err != nil {
		e.metrics.certificate("refused")
		e.log.Warn("attested certificate refused", slog.String("error", err.Error()))
		return err
	}
	return nil
}

func (e *enforcer) enforce(cert *x509.Certificate) error {
	for _, ext := range slices.Concat(cert.ExtraExtensions, cert.Extensions) {
		if ext.Id.Equal(cmw.OidExtCmw) {
			return errors.New("attest-acme: the certificate template carries an id-pe-cmw extension; only the CA adds it")
		}
	}
	sans, err := templateSANs(cert)
	if err != nil {
		return fmt.Errorf("attest-acme: %w", err)
	}
	if len(sans.permanentIDs) == 0 {
		return nil // not an attested certificate
	}
	if len(sans.permanentIDs) > 1 {
		return fmt.Errorf("attest-acme: the certificate has %d permanent-identifier SANs, want one", len(sans.permanentIDs))
	}
	pid := sans.permanentIDs[0]
	id := pid.Identifier

	fp, err := keyutil.Fingerprint(cert.PublicKey)
	if err != nil {
		return fmt.Errorf("attest-acme: certificate key: %w", err)
	}
	rec, err := e.store.getEAR(fp, id)
	switch {
	case errors.Is(err, errNoRecord) && !e.policy.Covers(id):
		return nil // an identifier of another attestation format (tpm, apple, step)
	case err != nil:
		return fmt.Errorf("attest-acme: permanent-identifier %q: %w", id, err)
	}
	if len(pid.Assigner) != 0 {
		return fmt.Errorf("attest-acme: permanent-identifier %q has an assigner %v; the attested identifier has none", id, asn1.ObjectIdentifier(pid.Assigner))
	}
	if now := e.now(); now.After(rec.ExpiresAt) {
		return fmt.Errorf("attest-acme: the attestation result for %q expired at %s", id, rec.ExpiresAt.Format(time.RFC3339))
	}
	// The policy may have changed since the challenge: check it again.
	if err := e.policy.AllowsIdentifier(rec.Workload, id); err != nil {
		return fmt.Errorf("attest-acme: %w", err)
	}
	for _, name := range sans.dnsNames {
		if err := e.policy.AllowsDNSName(rec.Workload, name); err != nil {
			return fmt.Errorf("attest-acme: %w", err)
		}
	}
	if len(sans.others) > 0 {
		return fmt.Errorf("attest-acme: an attested certificate may not carry %s SANs", sans.others[0])
	}

	if max := cert.NotBefore.Add(e.maxLifetime); cert.NotAfter.After(max) {
		cert.NotAfter = max
	}
	ext, err := challenge.NewEARExtension([]byte(rec.EAR))
	if err != nil {
		return fmt.Errorf("attest-acme: %w", err)
	}
	cert.ExtraExtensions = append(cert.ExtraExtensions, ext)
	e.metrics.certificate("extended")
	e.log.Info("attested certificate", slog.String("identifier", id), slog.String("workload", rec.Workload),
		slog.String("order", rec.OrderID), slog.String("authorization", rec.AuthorizationID),
		slog.Time("not_after", cert.NotAfter))
	return nil
}

// sanSet is what a certificate template's SANs name.
type sanSet struct {
	permanentIDs []x509util.PermanentIdentifier
	dnsNames     []string
	// others names each other kind of SAN present ("IP address", "email", ...).
	others []string
}

// templateSANs collects the SANs of a certificate about to be signed: the
// fields Go's x509 writes and, when step-ca's template needs an otherName,
// the subjectAltName extension in ExtraExtensions that replaces them.
func templateSANs(cert *x509.Certificate) (*sanSet, error) {
	s := &sanSet{dnsNames: slices.Clone(cert.DNSNames)}
	if len(cert.IPAddresses) > 0 {
		s.others = append(s.others, "IP address")
	}
	if len(cert.EmailAddresses) > 0 {
		s.others = append(s.others, "email")
	}
	if len(cert.URIs) > 0 {
		s.others = append(s.others, "URI")
	}
	for _, ext := range slices.Concat(cert.ExtraExtensions, cert.Extensions) {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		// x509util parses the otherNames (permanent identifiers, hardware
		// module names); the other GeneralNames are read here.
		parsed, err := x509util.ParseSubjectAlternativeNames(&x509.Certificate{Extensions: []pkix.Extension{ext}})
		if err != nil {
			return nil, fmt.Errorf("subjectAltName: %w", err)
		}
		s.permanentIDs = append(s.permanentIDs, parsed.PermanentIdentifiers...)
		if len(parsed.HardwareModuleNames) > 0 {
			s.others = append(s.others, "hardware module name")
		}
		var names []asn1.RawValue
		if rest, err := asn1.Unmarshal(ext.Value, &names); err != nil {
			return nil, fmt.Errorf("subjectAltName: %w", err)
		} else if len(rest) > 0 {
			return nil, errors.New("subjectAltName: trailing data")
		}
		for _, n := range names {
			if n.Class != asn1.ClassContextSpecific {
				return nil, fmt.Errorf("subjectAltName: GeneralName of class %d", n.Class)
			}
			switch n.Tag {
			case 0: // otherName: parsed above; anything but a permanent identifier is refused
				var on struct {
					TypeID asn1.ObjectIdentifier
					Value  asn1.RawValue
				}
				if _, err := asn1.UnmarshalWithParams(n.FullBytes, &on, "tag:0"); err != nil {
					return nil, fmt.Errorf("subjectAltName: otherName: %w", err)
				}
				if !on.TypeID.Equal(oidPermanentIdentifier) && !on.TypeID.Equal(oidHardwareModuleName) {
					s.others = append(s.others, "otherName "+on.TypeID.String())
				}
			case 1:
				s.others = append(s.others, "email")
			case 2:
				s.dnsNames = append(s.dnsNames, string(n.Bytes))
			case 6:
				s.others = append(s.others, "URI")
			case 7:
				s.others = append(s.others, "IP address")
			default:
				s.others = append(s.others, fmt.Sprintf("GeneralName [%d]", n.Tag))
			}
		}
	}
	return s, nil
}
