package main

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestTiersCommand(t *testing.T) {
	db := filepath.Join(t.TempDir(), "tiers.db")
	code, out, errOut := runCLI(t, "tiers", "--db", db)
	if code != 0 {
		t.Fatalf("tiers: exit %d, %s", code, errOut)
	}
	for _, want := range []string{"普通会员", "高级会员", "0 customers changed tier"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
