package inspect

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"

	"github.com/veraison/cmw"
	"github.com/veraison/ear"
	"go.step.sm/crypto/x509util"
)

// mediaTypeEAR is the media type of the EAR record in a certificate's
// id-pe-cmw extension (docs/protocol.md §1.8).
const mediaTypeEAR = `application/eat+jwt; eat_profile="` + ear.EatProfile + `"`

// certificate decodes an X.509 certificate with crypto/x509, its SANs with
// x509util (for the PermanentIdentifier otherName), and its id-pe-cmw
// extension with veraison/cmw, with the EAR inside.
func (in *inspector) certificate(der []byte, depth int) (*Node, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("X.509 certificate: %w", err)
	}
	n := &Node{Kind: KindCertificate, Title: fmt.Sprintf("X.509 certificate (DER, %d bytes)", len(der))}
	certBasics(n, c, in.opts)
	n.Fields = append(n.Fields, sanField(c))
	n.Fields = append(n.Fields, keyField("public_key", "public key", c.PublicKey))
	n.add("signature_algorithm", "signature", c.SignatureAlgorithm.String())
	if ku := keyUsages(c.KeyUsage); len(ku) > 0 {
		n.add("key_usage", "key usage", ku)
	}
	if eku := extKeyUsages(c); len(eku) > 0 {
		n.add("ext_key_usage", "ext key usage", eku)
	}
	if c.BasicConstraintsValid {
		n.add("is_ca", "CA", c.IsCA)
	}

	var cmwExts []pkix.Extension
	exts := List{}
	for _, e := range c.Extensions {
		s := e.Id.String()
		if name := extensionName(e.Id.String()); name != "" {
			s += " " + name
		}
		if e.Critical {
			s += " (critical)"
		}
		exts = append(exts, s)
		if e.Id.Equal(cmw.OidExtCmw) {
			cmwExts = append(cmwExts, e)
		}
	}
	n.add("extensions", "extensions", exts)

	for i, e := range cmwExts {
		key, label := "id_pe_cmw", "id-pe-cmw"
		if len(cmwExts) > 1 {
			key, label = fmt.Sprintf("id_pe_cmw_%d", i+1), fmt.Sprintf("id-pe-cmw [%d]", i+1)
			n.note("the certificate has %d id-pe-cmw extensions; attest-acme's CA writes one", len(cmwExts))
		}
		rec, err := cmw.DecodeX509Extension(e)
		if err != nil {
			n.add(key, label, opaque("id-pe-cmw: not valid", e.Value, err.Error()))
			continue
		}
		rn, keys := in.cmwNode(rec, "id-pe-cmw extension", depth)
		rn.Fields = append([]Field{field("critical", "critical", e.Critical)}, rn.Fields...)
		n.add(key, label, rn)
		for _, k := range keys {
			f := n.add("akpub_is_public_key", "EAR akpub = key", sameKey(k, c.PublicKey))
			if sameKey(k, c.PublicKey) {
				f.Note = "(the EAR attests this certificate's key)"
			} else {
				f.Note = "(NO: the EAR attests another key than this certificate's)"
				n.note("the EAR in id-pe-cmw attests a key other than the certificate's public key")
			}
		}
	}
	return n, nil
}

// certBasics adds the fields every certificate description has.
func certBasics(n *Node, c *x509.Certificate, opts Options) {
	n.add("subject", "subject", orEmpty(c.Subject.String()))
	n.add("issuer", "issuer", orEmpty(c.Issuer.String()))
	n.add("serial", "serial", c.SerialNumber.Text(16))
	v := Group{field("not_before", "not before", c.NotBefore), field("not_after", "not after", c.NotAfter)}
	text := fmt.Sprintf("%s to %s", c.NotBefore.UTC().Format("2006-01-02T15:04:05Z"), c.NotAfter.UTC().Format("2006-01-02T15:04:05Z"))
	if opts.Now != nil {
		now := opts.Now()
		status := "valid now"
		switch {
		case now.Before(c.NotBefore):
			status = "NOT YET VALID"
		case now.After(c.NotAfter):
			status = "EXPIRED"
		}
		v = append(v, field("status", "status", status))
		text += " (" + status + ")"
	}
	n.Fields = append(n.Fields, Field{Key: "validity", Label: "validity", Value: v, Text: text})
	sum := sha256.Sum256(c.Raw)
	n.add("sha256", "SHA-256(DER)", Hex(sum[:]))
}

// certSummary describes a certificate in a chain (AK, SEV-SNP, PCK): who it
// names and its key, without extensions.
func certSummary(der []byte) *Node {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return opaque("certificate: not valid", der, err.Error())
	}
	n := &Node{Kind: KindCertificate, Title: fmt.Sprintf("X.509 certificate (DER, %d bytes)", len(der))}
	certBasics(n, c, Options{})
	n.Fields = append(n.Fields, keyField("public_key", "public key", c.PublicKey))
	return n
}

// sanField lists the subject alternative names, the PermanentIdentifier
// otherName (RFC 4043) among them, as x509util parses them.
func sanField(c *x509.Certificate) Field {
	sans, err := parseSANs(c)
	if err != nil {
		return field("sans", "SANs", Group{field("error", "error", err.Error())})
	}
	g := Group{}
	if len(sans.PermanentIdentifiers) > 0 {
		l := List{}
		for _, p := range sans.PermanentIdentifiers {
			pg := Group{field("identifier", "identifier", p.Identifier)}
			if len(p.Assigner) > 0 {
				pg = append(pg, field("assigner", "assigner", asn1.ObjectIdentifier(p.Assigner).String()))
			}
			l = append(l, pg)
		}
		g = append(g, Field{Key: "permanent_identifiers", Label: "PermanentIdentifier", Value: l, Text: permanentIDsText(sans.PermanentIdentifiers)})
	}
	if len(sans.DNSNames) > 0 {
		g = append(g, field("dns", "DNS", stringList(sans.DNSNames)))
	}
	if len(sans.IPAddresses) > 0 {
		l := List{}
		for _, ip := range sans.IPAddresses {
			l = append(l, ip.String())
		}
		g = append(g, field("ip", "IP", l))
	}
	if len(sans.EmailAddresses) > 0 {
		g = append(g, field("email", "email", stringList(sans.EmailAddresses)))
	}
	if len(sans.URIs) > 0 {
		l := List{}
		for _, u := range sans.URIs {
			l = append(l, u.String())
		}
		g = append(g, field("uri", "URI", l))
	}
	if len(sans.HardwareModuleNames) > 0 {
		l := List{}
		for _, h := range sans.HardwareModuleNames {
			l = append(l, Group{field("type", "type", asn1.ObjectIdentifier(h.Type).String()), field("serial", "serial", Hex(h.SerialNumber))})
		}
		g = append(g, field("hardware_module_names", "HardwareModuleName", l))
	}
	if len(g) == 0 {
		return Field{Key: "sans", Label: "SANs", Value: g, Text: "(none)"}
	}
	return field("sans", "SANs", g)
}

// permanentIDsText shows permanent identifiers on one line.
func permanentIDsText(ids []x509util.PermanentIdentifier) string {
	parts := make([]string, len(ids))
	for i, p := range ids {
		parts[i] = p.Identifier
		if len(p.Assigner) > 0 {
			parts[i] += " (assigner " + asn1.ObjectIdentifier(p.Assigner).String() + ")"
		}
	}
	return strings.Join(parts, ", ")
}

// parseSANs runs x509util.ParseSubjectAlternativeNames, which asserts the
// types of directoryName values and would panic on a malformed one.
func parseSANs(c *x509.Certificate) (sans x509util.SubjectAlternativeNames, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("subjectAltName: malformed (%v)", r)
		}
	}()
	return x509util.ParseSubjectAlternativeNames(c)
}

// orEmpty shows an empty distinguished name as such.
func orEmpty(dn string) string {
	if dn == "" {
		return "(empty)"
	}
	return dn
}

// stringList turns strings into a List.
func stringList(s []string) List {
	l := make(List, len(s))
	for i, v := range s {
		l[i] = v
	}
	return l
}

// keyUsages names the key usage bits set (RFC 5280 §4.2.1.3).
func keyUsages(ku x509.KeyUsage) List {
	l := List{}
	for _, u := range []struct {
		bit  x509.KeyUsage
		name string
	}{
		{x509.KeyUsageDigitalSignature, "digitalSignature"}, {x509.KeyUsageContentCommitment, "contentCommitment"},
		{x509.KeyUsageKeyEncipherment, "keyEncipherment"}, {x509.KeyUsageDataEncipherment, "dataEncipherment"},
		{x509.KeyUsageKeyAgreement, "keyAgreement"}, {x509.KeyUsageCertSign, "keyCertSign"},
		{x509.KeyUsageCRLSign, "cRLSign"}, {x509.KeyUsageEncipherOnly, "encipherOnly"}, {x509.KeyUsageDecipherOnly, "decipherOnly"},
	} {
		if ku&u.bit != 0 {
			l = append(l, u.name)
		}
	}
	return l
}

// extKeyUsages names the extended key usages (RFC 5280 §4.2.1.12).
func extKeyUsages(c *x509.Certificate) List {
	l := List{}
	for _, u := range c.ExtKeyUsage {
		switch u {
		case x509.ExtKeyUsageServerAuth:
			l = append(l, "serverAuth")
		case x509.ExtKeyUsageClientAuth:
			l = append(l, "clientAuth")
		case x509.ExtKeyUsageCodeSigning:
			l = append(l, "codeSigning")
		case x509.ExtKeyUsageEmailProtection:
			l = append(l, "emailProtection")
		case x509.ExtKeyUsageTimeStamping:
			l = append(l, "timeStamping")
		case x509.ExtKeyUsageOCSPSigning:
			l = append(l, "OCSPSigning")
		case x509.ExtKeyUsageAny:
			l = append(l, "any")
		default:
			l = append(l, fmt.Sprintf("x509.ExtKeyUsage(%d)", u))
		}
	}
	for _, oid := range c.UnknownExtKeyUsage {
		l = append(l, oid.String())
	}
	return l
}

// extensionName names the extensions an attest-acme certificate carries.
func extensionName(oid string) string {
	switch oid {
	case "2.5.29.14":
		return "subjectKeyIdentifier"
	case "2.5.29.15":
		return "keyUsage"
	case "2.5.29.17":
		return "subjectAltName"
	case "2.5.29.19":
		return "basicConstraints"
	case "2.5.29.35":
		return "authorityKeyIdentifier"
	case "2.5.29.37":
		return "extKeyUsage"
	case "1.3.6.1.5.5.7.1.1":
		return "authorityInfoAccess"
	case "1.3.6.1.5.5.7.1.35":
		return "id-pe-cmw"
	case "1.3.6.1.4.1.37476.9000.64.1":
		return "step provisioner"
	}
	return ""
}

// cmwRecord takes a CMW given on its own: a CBOR record or a CBOR-tag CMW.
func (in *inspector) cmwRecord(b []byte, depth int) (*Node, error) {
	var c cmw.CMW
	if err := c.UnmarshalCBOR(b); err != nil {
		return nil, fmt.Errorf("CMW record: %w", err)
	}
	n, _ := in.cmwNode(&c, fmt.Sprintf("CBOR, %d bytes", len(b)), depth)
	return n, nil
}

// cmwNode describes a decoded CMW: a record's media type, indicator and
// value (an EAR, or whatever else is recognised), or a collection's items.
// It returns the keys any EAR inside attests.
func (in *inspector) cmwNode(c *cmw.CMW, where string, depth int) (*Node, []crypto.PublicKey) {
	if c.GetKind() == cmw.KindCollection {
		n := &Node{Kind: KindCMWRecord, Title: fmt.Sprintf("CMW collection (%s, %s)", c.GetFormat(), where)}
		if t, err := c.GetCollectionType(); err == nil && t != "" {
			n.add("__cmwc_t", "__cmwc_t", t)
		}
		var keys []crypto.PublicKey
		meta, err := c.GetCollectionMeta()
		if err != nil {
			n.add("error", "error", err.Error())
			return n, nil
		}
		items := Group{}
		for _, m := range meta {
			item, err := c.GetCollectionItem(m.Key)
			label := fmt.Sprint(m.Key)
			if err != nil {
				items = append(items, field(label, label, err.Error()))
				continue
			}
			if depth >= maxDepth {
				items = append(items, field(label, label, "(nested too deep)"))
				continue
			}
			in2, k := in.cmwNode(item, "item", depth+1)
			keys = append(keys, k...)
			items = append(items, field(label, label, in2))
		}
		n.add("items", "items", items)
		return n, keys
	}

	n := &Node{Kind: KindCMWRecord, Title: fmt.Sprintf("CMW record (%s, %s)", c.GetFormat(), where)}
	mt, _ := c.GetMonadType() // a monad: cannot fail
	ind, _ := c.GetMonadIndicator()
	val, _ := c.GetMonadValue()
	n.add("media_type", "media type", mt)
	f := n.add("indicator", "indicator", uint(ind))
	if s := ind.String(); s != "" {
		f.Note = "(" + s + ")"
	}
	if mt == mediaTypeEAR || strings.HasPrefix(mt, "application/eat+jwt") {
		en, keys, err := in.jws(val)
		if err != nil {
			n.add("value", "value", opaque("EAR: not valid", val, err.Error()))
			return n, nil
		}
		n.add("value", "value", en)
		return n, keys
	}
	vn, why := in.recognise(val, depth+1)
	if vn == nil {
		vn = opaque(fmt.Sprintf("value of media type %q (not recognised)", mt), val, why)
	}
	n.add("value", "value", vn)
	return n, nil
}
