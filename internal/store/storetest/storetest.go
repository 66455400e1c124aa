// Package storetest opens fresh stores on both engines for tests: every store test runs once
// on SQLite and once on PostgreSQL. PostgreSQL tests use the server at SIYU_TEST_PG (default:
// the Debian cluster's socket, /var/run/postgresql), each test in a schema of its own. Outside
// CI a missing PostgreSQL skips its half; with CI=true it fails the test instead.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/siyu-scrm/siyu/internal/store"
)

// Engines are the engines every contract test runs on.
var Engines = []store.Engine{store.SQLite, store.Postgres}

// Each runs fn once per engine as a subtest with a fresh, migrated store.
func Each(t *testing.T, fn func(t *testing.T, s *store.Store)) {
	t.Helper()
	for _, eng := range Engines {
		t.Run(string(eng), func(t *testing.T) {
			fn(t, Open(t, eng))
		})
	}
}

// Open returns a fresh, migrated store on eng, removed when the test ends.
func Open(t testing.TB, eng store.Engine) *store.Store {
	t.Helper()
	dsn := DSN(t, eng)
	s, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open %s: %v", eng, err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate %s: %v", eng, err)
	}
	return s
}

// DSN returns the DSN of a fresh, empty database on eng (a temp file for SQLite, a new schema
// for PostgreSQL), removed when the test ends.
func DSN(t testing.TB, eng store.Engine) string {
	t.Helper()
	if eng == store.SQLite {
		return filepath.Join(t.TempDir(), "siyu.db")
	}
	base := PostgresURL()
	admin, err := sql.Open("pgx", base)
	if err == nil {
		err = admin.PingContext(context.Background())
	}
	if err != nil {
		if admin != nil {
			admin.Close()
		}
		Unavailable(t, fmt.Sprintf("PostgreSQL at %s: %v", base, err))
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
		admin.Close()
	})
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// PostgresURL is the server tests use.
func PostgresURL() string {
	if v := os.Getenv("SIYU_TEST_PG"); v != "" {
		return v
	}
	return "postgres:///postgres?host=/var/run/postgresql&sslmode=disable"
}

var warnOnce sync.Once

// Unavailable skips a test whose dependency is missing, or fails it under CI=true: CI must run
// every test.
func Unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true and a test dependency is missing: %s", why)
	}
	warnOnce.Do(func() { fmt.Fprintf(os.Stderr, "storetest: skipping: %s\n", why) })
	t.Skip(why)
}
