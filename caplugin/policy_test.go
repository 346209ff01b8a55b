package caplugin

import (
	"strings"
	"testing"
)

func TestGlobMatch(t *testing.T) {
	for _, tc := range []struct {
		pat, s string
		want   bool
	}{
		{"vm-1", "vm-1", true},
		{"vm-1", "vm-12", false},
		{"vm-*", "vm-1", true},
		{"vm-*", "vm-", false}, // "*" takes at least one character
		{"*", "x", true},
		{"*", "", false},
		{"*-prod", "a-prod", true},
		{"*-prod", "-prod", false},
		{"a*b*c", "aXbYc", true},
		{"a*b*c", "abc", false},
		{"a*b*c", "aXbc", false},
		{"a*b*c", "aXbYbZc", true},
		{"a*a", "aaa", true},
		{"a*a", "aa", false},
	} {
		if got := globMatch(tc.pat, tc.s); got != tc.want {
			t.Errorf("globMatch(%q, %q) = %v, want %v", tc.pat, tc.s, got, tc.want)
		}
	}
}

func TestIssuancePolicyDeniesByDefault(t *testing.T) {
	p, err := NewIssuancePolicy([]IssuanceRule{
		{Workload: "web", PermanentIdentifiers: []string{"web-*"}, DNSNames: []string{"*.web.example", "web.example"}},
		{Workload: "db", PermanentIdentifiers: []string{"db-1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, workload, id string
		wantErr            string
	}{
		{"allowed identifier", "web", "web-7", ""},
		{"identifier of another workload", "web", "db-1", `workload "web" may not have permanent-identifier "db-1"`},
		{"workload without a rule", "cache", "web-7", `workload "cache" has no issuance rule`},
		{"exact identifier", "db", "db-1", ""},
		{"exact identifier, longer", "db", "db-10", "may not have"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErr(t, p.AllowsIdentifier(tc.workload, tc.id), tc.wantErr)
		})
	}
	for _, tc := range []struct {
		name, workload, dns string
		wantErr             string
	}{
		{"one label under the wildcard", "web", "a.web.example", ""},
		{"upper case and a trailing dot", "web", "A.Web.Example.", ""},
		{"two labels under the wildcard", "web", "a.b.web.example", `may not have DNS name "a.b.web.example"`},
		{"exact name", "web", "web.example", ""},
		{"workload with no DNS names", "db", "db.example", `may not have DNS name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErr(t, p.AllowsDNSName(tc.workload, tc.dns), tc.wantErr)
		})
	}
	if !p.Covers("web-1") || !p.Covers("db-1") || p.Covers("other") {
		t.Error("Covers does not follow the permanent-identifier patterns")
	}
}

func TestNewIssuancePolicyRejects(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rules   []IssuanceRule
		wantErr string
	}{
		{"no workload name", []IssuanceRule{{PermanentIdentifiers: []string{"x"}}}, "issuance[0].workload: missing"},
		{"two rules for a workload", []IssuanceRule{{Workload: "w", PermanentIdentifiers: []string{"a"}}, {Workload: "w", PermanentIdentifiers: []string{"b"}}}, `issuance[1].workload: "w" has two rules`},
		{"no identifiers", []IssuanceRule{{Workload: "w"}}, "issuance[0].permanentIdentifiers"},
		{"empty pattern", []IssuanceRule{{Workload: "w", PermanentIdentifiers: []string{""}}}, "issuance[0].permanentIdentifiers[0]: empty pattern"},
		{"white space", []IssuanceRule{{Workload: "w", PermanentIdentifiers: []string{"a b"}}}, "white space"},
		{"upper-case DNS pattern", []IssuanceRule{{Workload: "w", PermanentIdentifiers: []string{"a"}, DNSNames: []string{"A.example"}}}, "issuance[0].dnsNames[0]: DNS pattern \"A.example\" is not lower case"},
		{"empty DNS label", []IssuanceRule{{Workload: "w", PermanentIdentifiers: []string{"a"}, DNSNames: []string{"a..example"}}}, "empty label"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewIssuancePolicy(tc.rules)
			checkErr(t, err, tc.wantErr)
		})
	}
}

// checkErr fails unless err is nil and want is empty, or err contains want.
func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q, want one containing %q", err, want)
	}
}
