package web

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/locale"
	"github.com/siyu-scrm/siyu/internal/staff"
)

// Message keys are written literally in templates ({{t "key"}}) and in console Go code
// (v.T("key"), setFlash(w, kind, "key")); keys built at run time from a prefix are checked
// from the values they are built from.
var (
	templateKeyRe = regexp.MustCompile(`\bt\s+"([^"]+)"`)
	goKeyRe       = regexp.MustCompile(`(?:\.T\(|setFlash\(w, "\w+", |fail\(http\.\w+, |newView\(w, r, "\w*", |settingsView\(w, r, )"([^"]+)"`)
)

func TestConsoleMessageKeysExist(t *testing.T) {
	used := map[string]string{} // key → where
	err := fs.WalkDir(templateFS, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := templateFS.ReadFile(p)
		for _, m := range templateKeyRe.FindAllStringSubmatch(string(b), -1) {
			used[m[1]] = p
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	goFiles, _ := filepath.Glob("console*.go")
	for _, f := range goFiles {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range goKeyRe.FindAllStringSubmatch(string(b), -1) {
			if !strings.HasSuffix(m[1], ".") { // a prefix: its keys are added below
				used[m[1]] = f
			}
		}
	}
	if len(used) < 100 {
		t.Fatalf("found only %d message keys: is the scan still matching how keys are written?", len(used))
	}
	add := func(prefix string, values ...string) {
		for _, v := range values {
			used[prefix+v] = "built from " + prefix
		}
	}
	for _, r := range staff.Roles {
		add("role.", string(r))
		add("role_hint.", string(r))
	}
	for _, k := range customer.IdentityKinds {
		add("identity.", string(k))
	}
	add("channel.", customer.Channels...)
	for _, at := range []customer.AttrType{customer.AttrString, customer.AttrNumber, customer.AttrBool, customer.AttrDate, customer.AttrList} {
		add("attr_type.", string(at))
	}
	add("order_status.", event.Paid, event.PartiallyRefunded, event.Refunded)
	add("key_kind.", string(staff.WriteKey), string(staff.APIKey))
	add("gender.", "male", "female")
	for _, sec := range sections {
		add("nav.", sec.Key)
		if sec.Soon {
			add("soon.", sec.Key)
		}
	}
	for _, so := range customerSorts {
		add("customers.sort.", so.Key)
	}
	for _, code := range []int{403, 404, 429, 500} {
		add("error."+strconv.Itoa(code)+".", "title", "body")
	}
	add("staff.error.", "login", "name", "role", "email", "password", "login_taken") // fields checkStaff and HashPassword name
	add("keys.error.", "kind", "role", "name")                                       // fields CreateKey names
	for key, where := range used {
		for _, lang := range locale.Languages {
			if !locale.Has(lang, key) {
				t.Errorf("%s uses %q, missing in %s.json", where, key, lang)
			}
		}
	}
}
