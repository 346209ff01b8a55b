package tpm

import (
	"testing"
)

func TestParsePCRSelection(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"sha256:0-7", "sha256:0,1,2,3,4,5,6,7"},
		{"sha256:7,0,3", "sha256:0,3,7"},
		{"sha1:0+sha256:0-2,23", "sha1:0+sha256:0,1,2,23"},
		{"sha384:10-10", "sha384:10"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			sel, err := ParsePCRSelection(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := sel.String(); got != tc.want {
				t.Fatalf("String() = %q, want %q", got, tc.want)
			}
		})
	}
	if got := DefaultPCRs().String(); got != "sha256:0,1,2,3,4,5,6,7" {
		t.Fatalf("DefaultPCRs() = %q", got)
	}
}

func TestParsePCRSelectionRejects(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "is not BANK:INDICES"},
		{"sha256", "is not BANK:INDICES"},
		{"md5:0", `PCR bank "md5" is not supported`},
		{"sha256:x", `"x" is not a PCR index`},
		{"sha256:", `"" is not a PCR index`},
		{"sha256:-1", `"-1" is not a PCR index`},
		{"sha256:5-2", `"5-2" is not a range`},
		{"sha256:24", "PCR index 24 is out of range 0-23"},
		{"sha256:0-1000000000", "PCR index 24 is out of range 0-23"},
		{"sha256:1,1", "PCR 1 selected twice"},
		{"sha256:1+sha256:2", "bank sha256 appears twice"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := ParsePCRSelection(tc.in)
			wantErr(t, err, tc.want)
		})
	}
}

func TestBank(t *testing.T) {
	for _, name := range []string{"sha1", "sha256", "sha384", "sha512"} {
		b, err := ParseBank(name)
		if err != nil {
			t.Fatal(err)
		}
		h, err := b.Hash()
		if err != nil {
			t.Fatal(err)
		}
		if b.String() != name || h.Size() == 0 {
			t.Fatalf("bank %s: String %q, hash size %d", name, b, h.Size())
		}
	}
	if _, err := Bank(0x0012).Hash(); err == nil {
		t.Fatal("an SM3 bank has a hash")
	}
}
