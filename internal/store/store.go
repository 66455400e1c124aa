// Package store keeps siyu's data in SQLite (embedded, the default) or PostgreSQL behind one
// API. Both engines run the same SQL, written with ? placeholders and rewritten for
// PostgreSQL; engine differences live in sqlite.go and postgres.go. Times are stored as Unix
// milliseconds (BIGINT) so that both engines compare and sort them the same way.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/siyu-scrm/siyu/internal/staff"
)

// Engine names a storage engine.
type Engine string

// The engines.
const (
	SQLite   Engine = "sqlite"
	Postgres Engine = "postgres"
)

// ErrNotFound is returned when a row asked for by key does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a write would break a uniqueness rule (a login taken, say).
var ErrConflict = errors.New("conflict")

// Store is the database. It is safe for concurrent use.
type Store struct {
	db     *sql.DB
	engine Engine
	now    func() time.Time
	subs   subscribers
	stmts  sync.Map // query → *sql.Stmt, for the hot statements (see prepared)
	stop   func()   // stops background work (the SQLite checkpointer)
	// passwordPolicy is what new passwords must satisfy (SetPasswordPolicy).
	passwordPolicy staff.PasswordPolicy
	origin         string      // this process in the change feed (changefeed.go)
	noFeed         atomic.Bool // PauseChangeFeed
}

// Open opens the database named by dsn: a postgres:// or postgresql:// URL (or a libpq
// key=value string starting with "host=") opens PostgreSQL, anything else is a SQLite file
// path. It does not migrate; call Migrate.
func Open(ctx context.Context, dsn string) (*Store, error) {
	var (
		db  *sql.DB
		eng Engine
		err error
	)
	if IsPostgresDSN(dsn) {
		eng = Postgres
		db, err = openPostgres(dsn)
	} else {
		eng = SQLite
		db, err = openSQLite(dsn)
	}
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s database: %w", eng, err)
	}
	s := &Store{db: db, engine: eng, now: time.Now, stop: func() {}, origin: newOrigin()}
	if eng == SQLite {
		s.stop = startCheckpointer(db)
	}
	return s, nil
}

// prepared returns a statement prepared once per store; transactions use it through
// tx.tx.StmtContext, which database/sql prepares once per connection. The ingestion hot path
// uses it so SQLite does not parse a 200-row INSERT again for every chunk.
func (s *Store) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// IsPostgresDSN reports whether dsn names a PostgreSQL database.
func IsPostgresDSN(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") || strings.HasPrefix(dsn, "host=")
}

// Engine tells which engine the store runs on.
func (s *Store) Engine() Engine { return s.engine }

// DB exposes the connection pool for benchmarks and backups.
func (s *Store) DB() *sql.DB { return s.db }

// SetClock replaces the clock (tests use a fake one).
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// Now is the store's clock.
func (s *Store) Now() time.Time { return s.now() }

// Close closes the database; with SQLite it also checkpoints the WAL.
func (s *Store) Close() error {
	s.stop()
	s.stmts.Range(func(_, v any) bool { v.(*sql.Stmt).Close(); return true })
	if s.engine == SQLite {
		s.db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	}
	return s.db.Close()
}

// q rewrites ? placeholders to $1, $2, … for PostgreSQL. Queries never contain a literal "?".
func (s *Store) q(query string) string {
	if s.engine != Postgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// Tx is one transaction: writes that belong together go through one Tx and commit or roll
// back as a whole.
type Tx struct {
	s   *Store
	tx  *sql.Tx
	ctx context.Context
	// attrDefs caches the attribute definitions read inside this transaction.
	attrDefs map[string]AttrDefRow
	// changes collects what the transaction changed, published to subscribers on commit.
	changes Changes
	marks   map[string]changeMark
}

// InTx runs fn in a transaction, committing when fn returns nil and rolling back otherwise.
func (s *Store) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	tx := &Tx{s: s, tx: sqlTx, ctx: ctx}
	if err := fn(tx); err != nil {
		sqlTx.Rollback()
		return err
	}
	if err := tx.writeFeed(); err != nil {
		sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	s.publish(&tx.changes)
	return nil
}

// exec, query and row run SQL on the transaction with placeholders rewritten.
func (tx *Tx) exec(query string, args ...any) (sql.Result, error) {
	return tx.tx.ExecContext(tx.ctx, tx.s.q(query), args...)
}
func (tx *Tx) query(query string, args ...any) (*sql.Rows, error) {
	return tx.tx.QueryContext(tx.ctx, tx.s.q(query), args...)
}
func (tx *Tx) row(query string, args ...any) *sql.Row {
	return tx.tx.QueryRowContext(tx.ctx, tx.s.q(query), args...)
}

// Now is the store's clock, as seen by a transaction.
func (tx *Tx) Now() time.Time { return tx.s.now() }

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

func nullMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}

// placeholders returns "(?,?,?),(?,?,?)" for rows rows of cols columns.
func placeholders(rows, cols int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	return strings.TrimSuffix(strings.Repeat(one+",", rows), ",")
}

// isUniqueViolation reports whether err is a uniqueness violation on either engine.
func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	m := err.Error()
	return strings.Contains(m, "UNIQUE constraint failed") || strings.Contains(m, "SQLSTATE 23505") || strings.Contains(m, "duplicate key value")
}

// collect reads every row of a query with scan, closing the rows: the one loop behind every
// list the store returns. It never returns a nil slice, so lists encode as [] in JSON.
func collect[T any](rows *sql.Rows, err error, scan func(sc interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// scanID scans a row of one integer column (an id), for collect.
func scanID(sc interface{ Scan(...any) error }) (int64, error) {
	var id int64
	return id, sc.Scan(&id)
}
