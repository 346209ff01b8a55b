package caplugin

import (
	"fmt"
	"slices"
	"strings"
)

// IssuanceRule says which identifiers the CA may certify for one workload
// (DESIGN.md decision 6). A workload is a named set of reference values in
// the verifier's policy; the EAR names the workload the evidence matched.
type IssuanceRule struct {
	// Workload is the workload name as the EAR carries it.
	Workload string `json:"workload"`
	// PermanentIdentifiers are patterns for the permanent-identifier the
	// certificate may carry; "*" matches any run of one or more characters.
	PermanentIdentifiers []string `json:"permanentIdentifiers"`
	// DNSNames are patterns for DNS names the same order may add; matched
	// label by label, "*" matching one or more characters inside one label
	// ("*.svc.example" matches "a.svc.example", not "a.b.svc.example").
	DNSNames []string `json:"dnsNames,omitempty"`
}

// IssuancePolicy maps workloads to the identifiers they may have. Deny by
// default: a workload with no rule, or an identifier no rule matches, is
// refused.
type IssuancePolicy struct {
	rules map[string]IssuanceRule
}

// NewIssuancePolicy checks rules and builds the policy. Workload names must
// be unique; every rule needs at least one permanent-identifier pattern.
func NewIssuancePolicy(rules []IssuanceRule) (*IssuancePolicy, error) {
	p := &IssuancePolicy{rules: make(map[string]IssuanceRule, len(rules))}
	for i, r := range rules {
		field := fmt.Sprintf("issuance[%d]", i)
		if r.Workload == "" {
			return nil, fmt.Errorf("%s.workload: missing", field)
		}
		if _, dup := p.rules[r.Workload]; dup {
			return nil, fmt.Errorf("%s.workload: %q has two rules", field, r.Workload)
		}
		if len(r.PermanentIdentifiers) == 0 {
			return nil, fmt.Errorf("%s.permanentIdentifiers: workload %q has none", field, r.Workload)
		}
		for j, pat := range r.PermanentIdentifiers {
			if err := checkPattern(pat); err != nil {
				return nil, fmt.Errorf("%s.permanentIdentifiers[%d]: %w", field, j, err)
			}
		}
		for j, pat := range r.DNSNames {
			if err := checkDNSPattern(pat); err != nil {
				return nil, fmt.Errorf("%s.dnsNames[%d]: %w", field, j, err)
			}
		}
		p.rules[r.Workload] = r
	}
	return p, nil
}

// AllowsIdentifier reports whether workload may have the permanent
// identifier id; the error says why not.
func (p *IssuancePolicy) AllowsIdentifier(workload, id string) error {
	r, ok := p.rules[workload]
	if !ok {
		return fmt.Errorf("workload %q has no issuance rule", workload)
	}
	if slices.ContainsFunc(r.PermanentIdentifiers, func(pat string) bool { return globMatch(pat, id) }) {
		return nil
	}
	return fmt.Errorf("workload %q may not have permanent-identifier %q", workload, id)
}

// AllowsDNSName reports whether workload may have the DNS name name.
func (p *IssuancePolicy) AllowsDNSName(workload, name string) error {
	r, ok := p.rules[workload]
	if !ok {
		return fmt.Errorf("workload %q has no issuance rule", workload)
	}
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	if slices.ContainsFunc(r.DNSNames, func(pat string) bool { return dnsMatch(pat, name) }) {
		return nil
	}
	return fmt.Errorf("workload %q may not have DNS name %q", workload, name)
}

// Covers reports whether any rule's permanent-identifier patterns match id:
// the identifiers this CA attests with "cmw". A certificate for such an
// identifier is issued only with a stored attestation result.
func (p *IssuancePolicy) Covers(id string) bool {
	for _, r := range p.rules {
		if slices.ContainsFunc(r.PermanentIdentifiers, func(pat string) bool { return globMatch(pat, id) }) {
			return true
		}
	}
	return false
}

func checkPattern(pat string) error {
	if pat == "" {
		return fmt.Errorf("empty pattern")
	}
	if strings.ContainsAny(pat, " \t\r\n") {
		return fmt.Errorf("pattern %q contains white space", pat)
	}
	return nil
}

func checkDNSPattern(pat string) error {
	if err := checkPattern(pat); err != nil {
		return err
	}
	if pat != strings.ToLower(pat) {
		return fmt.Errorf("DNS pattern %q is not lower case", pat)
	}
	for _, l := range strings.Split(pat, ".") {
		if l == "" {
			return fmt.Errorf("DNS pattern %q has an empty label", pat)
		}
	}
	return nil
}

// globMatch matches s against pat, where "*" matches one or more characters
// and every other character matches itself.
func globMatch(pat, s string) bool {
	if !strings.Contains(pat, "*") {
		return pat == s
	}
	parts := strings.Split(pat, "*")
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	last := parts[len(parts)-1]
	for i, part := range parts[1:] {
		if i == len(parts)-2 { // the last part must end s, after at least one character
			return len(s) > len(last) && strings.HasSuffix(s, last)
		}
		// Each "*" takes at least one character, then the next literal part.
		if len(s) == 0 {
			return false
		}
		idx := strings.Index(s[1:], part)
		if idx < 0 {
			return false
		}
		s = s[1+idx+len(part):]
	}
	return false
}

// dnsMatch matches a DNS name label by label.
func dnsMatch(pat, name string) bool {
	pl, nl := strings.Split(pat, "."), strings.Split(name, ".")
	if len(pl) != len(nl) {
		return false
	}
	for i := range pl {
		if !globMatch(pl[i], nl[i]) {
			return false
		}
	}
	return true
}
