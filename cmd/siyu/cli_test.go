package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

func TestEveryCommandHasHelp(t *testing.T) {
	for _, c := range commands() {
		code, out, errOut := runCLI(t, c.name, "--help")
		if code != 0 || !strings.Contains(out+errOut, "Usage: siyu "+c.name) {
			t.Errorf("siyu %s --help: exit %d, output %q", c.name, code, out+errOut)
		}
	}
	if code, _, errOut := runCLI(t, "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: exit %d, %q", code, errOut)
	}
}

func TestKeysCreatePrintsTheSecretOnce(t *testing.T) {
	db := filepath.Join(t.TempDir(), "k.db")
	code, out, errOut := runCLI(t, "keys", "create", "--kind", "write", "--name", "shop", "--db", db)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	secret := strings.TrimSpace(out)
	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.KeyBySecret(context.Background(), staff.WriteKey, secret); err != nil {
		t.Fatalf("printed secret %q is not a write key: %v", secret, err)
	}
	_, list, _ := runCLI(t, "keys", "list", "--db", db)
	if strings.Contains(list, secret) || !strings.Contains(list, "shop") {
		t.Fatalf("keys list shows the secret or misses the key:\n%s", list)
	}
	if code, _, errOut := runCLI(t, "keys", "create", "--kind", "nope", "--db", db); code != 1 || !strings.Contains(errOut, "--kind") {
		t.Fatalf("bad kind: exit %d %q", code, errOut)
	}
	// A bad flag is refused before a database is created.
	fresh := filepath.Join(t.TempDir(), "fresh.db")
	if code, _, errOut := runCLI(t, "keys", "create", "--kind", "api", "--role", "boss", "--db", fresh); code != 1 || !strings.Contains(errOut, "--role") {
		t.Fatalf("bad role: exit %d %q", code, errOut)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Fatalf("a refused keys create made %s (%v)", fresh, err)
	}
	// --staff: the key acts for that staff member (a sales key sees their customers).
	sam := &staff.Staff{Login: "sam", Name: "Sam", Role: staff.Sales}
	if err := st.CreateStaff(context.Background(), sam, ""); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "keys", "create", "--kind", "api", "--role", "sales", "--staff", "sam", "--db", db)
	if code != 0 {
		t.Fatalf("--staff sam: exit %d: %s", code, errOut)
	}
	k, err := st.KeyBySecret(context.Background(), staff.APIKey, strings.TrimSpace(out))
	if err != nil || k.CreatedBy != sam.ID || k.Role != staff.Sales {
		t.Fatalf("key made for sam: %+v %v, want a sales key acting for %d", k, err, sam.ID)
	}
	if code, _, errOut := runCLI(t, "keys", "create", "--kind", "api", "--staff", "nobody", "--db", db); code != 1 || !strings.Contains(errOut, "no staff member") {
		t.Fatalf("--staff nobody: exit %d %q", code, errOut)
	}
}

func TestImportNamesTheBadLineAndStrictWritesNothing(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "i.db")
	csv := filepath.Join(dir, "c.csv")
	os.WriteFile(csv, []byte("\ufeff姓名,手机号,生日\n王芳,13800000001,1990-01-02\n李雷,13800000002,not-a-date\n"), 0o644)
	code, out, _ := runCLI(t, "import", "customers", csv, "--strict", "--db", db)
	if code == 0 || !strings.Contains(out, "line 3") {
		t.Fatalf("strict import with a bad line 3: exit %d, report %q", code, out)
	}
	st, _ := store.Open(context.Background(), db)
	n, _ := st.CountCustomers(context.Background(), store.CustomerFilter{})
	st.Close()
	if n != 0 {
		t.Fatalf("strict import wrote %d customers", n)
	}
	code, out, _ = runCLI(t, "import", "customers", csv, "--db", db)
	if code != 0 || !strings.Contains(out, "1 created") || !strings.Contains(out, "line 3") {
		t.Fatalf("lenient import: exit %d, report %q", code, out)
	}
	if _, out, _ = runCLI(t, "import", "customers", csv, "--db", db); !strings.Contains(out, "0 created") {
		t.Fatalf("re-import changed something: %q", out)
	}
}

// TestGracefulShutdown: SIGTERM lets siyu serve finish and close the database; it exits 0.
func TestGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin, err := buildSiyu()
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "g.db")
	srv := startServer(t, bin, db)
	srv.cmd.Process.Signal(syscall.SIGTERM)
	if err := srv.cmd.Wait(); err != nil {
		t.Fatalf("siyu serve after SIGTERM: %v", err)
	}
	if _, err := os.Stat(db + "-wal"); err == nil {
		if fi, _ := os.Stat(db + "-wal"); fi.Size() > 0 {
			t.Errorf("the WAL was not checkpointed on shutdown (%d bytes)", fi.Size())
		}
	}
}

// siyu rfm checks its flags before it opens (and so creates) the database.
func TestRFMRefusesBadFlagsBeforeOpeningTheDatabase(t *testing.T) {
	for _, args := range [][]string{{"--window", "x"}, {"--as-of", "2026-13-01"}} {
		db := filepath.Join(t.TempDir(), "rfm.db")
		code, _, errOut := runCLI(t, append([]string{"rfm", "--db", db}, args...)...)
		if code != 1 || !strings.Contains(errOut, args[0]) {
			t.Errorf("rfm %v: exit %d, %q", args, code, errOut)
		}
		if _, err := os.Stat(db); !os.IsNotExist(err) {
			t.Errorf("rfm %v created %s (stat: %v)", args, db, err)
		}
	}
	db := filepath.Join(t.TempDir(), "rfm.db")
	if code, _, errOut := runCLI(t, "rfm", "--db", db, "--window", "0d"); code != 1 || !strings.Contains(errOut, "window_days") {
		t.Errorf("rfm --window 0d: exit %d, %q", code, errOut)
	}
}
