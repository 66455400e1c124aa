package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/demo"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/store"
)

var ctx = context.Background()

// anchor is the demo's "now" and the stores' clock, so that two databases built the same way
// hold the same bytes.
var anchor = time.Date(2025, 6, 30, 0, 0, 0, 0, time.UTC)

const demoCustomers = 1000

// openDemo creates a demo database at path: deterministic for a given anchor and seed.
func openDemo(t *testing.T, path string) *store.Store {
	t.Helper()
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.SetClock(func() time.Time { return anchor })
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := demo.Generate(ctx, st, demo.Options{Customers: demoCustomers, Seed: 7, Anchor: anchor}); err != nil {
		t.Fatal(err)
	}
	return st
}

// write is the k-th transaction of the test's writer: a new customer with an identity, an
// event, and a last-seen update of a demo customer, so that a torn transaction would show in
// three tables. It is deterministic in k.
func write(st *store.Store, k int) error {
	at := anchor.Add(time.Duration(k) * time.Second)
	return st.InTx(ctx, func(tx *store.Tx) error {
		id, err := tx.CreateCustomer([]customer.Identity{{Kind: customer.UserID, Value: fmt.Sprintf("bk-u-%d", k)}}, at)
		if err != nil {
			return err
		}
		if _, err := tx.InsertEvents([]*event.Event{{MessageID: fmt.Sprintf("bk-%d", k), CustomerID: id, Type: "track", Name: "咨询", Properties: map[string]any{"k": k}, Timestamp: at}}); err != nil {
			return err
		}
		return tx.TouchLastSeen(int64(1+k%demoCustomers), at)
	})
}

// TestBackupWhileWritingIsASnapshot backs a demo database up while a writer commits
// transactions, then checks that the backup is exactly the database after some prefix of those
// transactions: a second database built from the same demo plus the first k writes (k read
// from the backup) equals the backup in every row of every table. The restored backup equals
// the backup; and once writes stop, a second backup restored equals the source.
func TestBackupWhileWritingIsASnapshot(t *testing.T) {
	dir := t.TempDir()
	srcPath := filepath.Join(dir, "src.db")
	src := openDemo(t, srcPath)

	var committed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var werr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		for k := 1; ; k++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := write(src, k); err != nil {
				werr = err
				return
			}
			committed.Store(int64(k))
		}
	}()
	waitFor := func(n int64) {
		for committed.Load() < n {
			if werr != nil {
				t.Fatal(werr)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(50)
	before := committed.Load()
	b1 := filepath.Join(dir, "b1.siyu")
	var calls atomic.Int64
	res, err := Create(ctx, srcPath, b1, Options{Progress: func(done, total int64) { calls.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	after := committed.Load()
	waitFor(after + 50) // the writer went on after the backup, too
	close(stop)
	wg.Wait()
	if werr != nil {
		t.Fatal(werr)
	}
	if res.SchemaVersion != store.SchemaVersion() || res.Bytes == 0 || calls.Load() == 0 {
		t.Fatalf("result %+v, %d progress calls", res, calls.Load())
	}
	integrity(t, b1)

	bdb := readOnly(t, b1)
	var k int64
	if err := bdb.QueryRow(`SELECT COUNT(*) FROM events WHERE message_id LIKE 'bk-%'`).Scan(&k); err != nil {
		t.Fatal(err)
	}
	if k < before || k > after+1 {
		t.Fatalf("backup holds %d writes; %d were committed before it began and %d when it ended", k, before, after)
	}
	t.Logf("backup holds writes 1…%d; %d were committed when it began, %d when it ended, %d in all", k, before, after, committed.Load())

	replica := openDemo(t, filepath.Join(dir, "replica.db"))
	for i := 1; i <= int(k); i++ {
		if err := write(replica, i); err != nil {
			t.Fatal(err)
		}
	}
	sameRows(t, "backup", bdb, "demo + first writes", replica.DB())

	r1 := filepath.Join(dir, "restored1.db")
	if _, err := Restore(ctx, b1, r1, Options{}); err != nil {
		t.Fatal(err)
	}
	integrity(t, r1)
	sameRows(t, "restored", readOnly(t, r1), "backup", bdb)

	// Quiet now: a backup restored equals the source itself.
	b2 := filepath.Join(dir, "b2.siyu")
	if _, err := Create(ctx, srcPath, b2, Options{}); err != nil {
		t.Fatal(err)
	}
	r2 := filepath.Join(dir, "restored2.db")
	if _, err := Restore(ctx, b2, r2, Options{}); err != nil {
		t.Fatal(err)
	}
	sameRows(t, "restored", readOnly(t, r2), "source", src.DB())

	// Restoring over an existing database needs --force, and then replaces it entirely.
	if _, err := Restore(ctx, b1, r2, Options{}); !errors.Is(err, ErrExists) {
		t.Fatalf("restore over an existing database: %v, want ErrExists", err)
	}
	if _, err := Restore(ctx, b1, r2, Options{Force: true}); err != nil {
		t.Fatal(err)
	}
	sameRows(t, "restored with --force", readOnly(t, r2), "backup", bdb)
}

func TestBackupRefusals(t *testing.T) {
	dir := t.TempDir()
	srcPath := filepath.Join(dir, "src.db")
	st, err := store.Open(ctx, srcPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "b.siyu")
	if err := os.WriteFile(dst, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(ctx, srcPath, dst, Options{}); !errors.Is(err, ErrExists) {
		t.Fatalf("backup over an existing file: %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "precious" {
		t.Fatal("the existing file was touched")
	}
	if _, err := Create(ctx, srcPath, dst, Options{Force: true}); err != nil {
		t.Fatalf("--force: %v", err)
	}
	if _, err := Create(ctx, filepath.Join(dir, "missing.db"), filepath.Join(dir, "x.siyu"), Options{}); err == nil {
		t.Fatal("a backup of a missing database succeeded")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp-*")); len(left) > 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}

	// A restore checks what it is given.
	notSQLite := filepath.Join(dir, "notes.txt")
	os.WriteFile(notSQLite, []byte("hello, this is not a database at all"), 0o600)
	otherDB := filepath.Join(dir, "other.db")
	other, _ := sql.Open("sqlite", otherDB)
	if _, err := other.Exec(`CREATE TABLE t (x)`); err != nil {
		t.Fatal(err)
	}
	other.Close()
	newer := filepath.Join(dir, "newer.siyu")
	if _, err := Create(ctx, srcPath, newer, Options{}); err != nil {
		t.Fatal(err)
	}
	nd, _ := sql.Open("sqlite", newer)
	if _, err := nd.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, store.SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	nd.Close()
	for _, tc := range []struct{ file, want string }{
		{notSQLite, "not a SQLite database"},
		{otherDB, "not a siyu database"},
		{newer, "use a newer siyu"},
		{filepath.Join(dir, "nope.siyu"), "no such file"},
	} {
		target := filepath.Join(dir, "restore-"+filepath.Base(tc.file)+".db")
		_, err := Restore(ctx, tc.file, target, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("restore %s: %v, want an error saying %q", filepath.Base(tc.file), err, tc.want)
		}
		if _, err := os.Stat(target); err == nil {
			t.Errorf("restore %s created %s", filepath.Base(tc.file), target)
		}
	}
}

func TestPostgresCommands(t *testing.T) {
	dump, restore := PostgresCommands("postgres://siyu:s3cret@db.internal:5432/siyu?sslmode=require", "/var/backups/siyu 2026.dump")
	for _, s := range []string{dump, restore} {
		if strings.Contains(s, "s3cret") {
			t.Errorf("the password is printed: %s", s)
		}
	}
	if want := `pg_dump --format=custom --no-owner --dbname='postgres://siyu@db.internal:5432/siyu?sslmode=require' --file='/var/backups/siyu 2026.dump'`; dump != want {
		t.Errorf("dump:\n%s\nwant\n%s", dump, want)
	}
	if !strings.HasPrefix(restore, "pg_restore --no-owner --exit-on-error --dbname=") {
		t.Errorf("restore: %s", restore)
	}
}

func readOnly(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func integrity(t *testing.T, path string) {
	t.Helper()
	var res string
	if err := readOnly(t, path).QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil || res != "ok" {
		t.Fatalf("integrity_check %s: %q %v", path, res, err)
	}
}

// sameRows compares two databases: the same schema (every CREATE statement) and, table by
// table, the same rows (sqlite_sequence included, so ids continue alike).
func sameRows(t *testing.T, aName string, a *sql.DB, bName string, b *sql.DB) {
	t.Helper()
	sa, sb := dump(t, a, `SELECT type || ' ' || name || ': ' || COALESCE(sql, '') FROM sqlite_master ORDER BY type, name`), dump(t, b, `SELECT type || ' ' || name || ': ' || COALESCE(sql, '') FROM sqlite_master ORDER BY type, name`)
	firstDiff(t, "schema", aName, sa, bName, sb)
	tables := names(t, a)
	rows := 0
	for _, name := range tables {
		q := fmt.Sprintf(`SELECT * FROM %q`, name)
		cols := columns(t, a, name)
		order := make([]string, cols)
		for i := range order {
			order[i] = fmt.Sprint(i + 1)
		}
		q += " ORDER BY " + strings.Join(order, ", ")
		ra, rb := dump(t, a, q), dump(t, b, q)
		firstDiff(t, "table "+name, aName, ra, bName, rb)
		rows += len(ra)
	}
	t.Logf("%s = %s: %d tables, %d rows", aName, bName, len(tables), rows)
}

func names(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func columns(t *testing.T, db *sql.DB, table string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM pragma_table_info(?)`, table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// dump runs q and returns each row as one line of its values.
func dump(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, v := range vals {
			if x, ok := v.([]byte); ok {
				v = "x'" + fmt.Sprintf("%x", x) + "'"
			}
			fmt.Fprintf(&b, "%T:%v\x1f", v, v)
		}
		out = append(out, b.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func firstDiff(t *testing.T, what, aName string, a []string, bName string, b []string) {
	t.Helper()
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			t.Fatalf("%s differs at row %d:\n%s: %s\n%s: %s", what, i+1, aName, a[i], bName, b[i])
		}
	}
	if len(a) != len(b) {
		t.Fatalf("%s: %s has %d rows, %s %d", what, aName, len(a), bName, len(b))
	}
}
