// Package backup takes consistent online backups of a SQLite database while siyu keeps
// serving, checks backup files, and restores them. A backup is one `VACUUM INTO` statement: it
// reads a single snapshot (in WAL mode writers go on meanwhile) and writes a compact copy, so
// the file holds exactly the transactions committed before it began. It is written under a
// temporary name, synced, checked and only then given its name. PostgreSQL is backed up with
// its own tools (pg_dump, pg_restore); see PostgresCommands.
package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/siyu-scrm/siyu/internal/store"
)

// ErrExists is returned when the file to write already exists and Force is not set.
var ErrExists = errors.New("file exists (use --force to replace it)")

// Options shape a backup or a restore.
type Options struct {
	// Force replaces an existing destination.
	Force bool
	// Progress, when set, is told bytes done of an estimated total, a few times a second.
	Progress func(done, total int64)
}

// Result describes a finished backup or restore.
type Result struct {
	Path          string
	Bytes         int64
	SchemaVersion int
	Elapsed       time.Duration
}

// Create writes a consistent copy of the SQLite database at src (a path, as in --db) to dst.
// The source may be in use by a running server: its writes go on during the backup and are
// not in the copy if they commit after it began. dst is refused if it exists, unless
// opts.Force; a failed backup leaves no file behind.
func Create(ctx context.Context, src, dst string, opts Options) (*Result, error) {
	start := time.Now()
	if store.IsPostgresDSN(src) {
		return nil, errors.New("the database is PostgreSQL: back it up with pg_dump (see PostgresCommands)")
	}
	path := sqlitePath(src)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("source database: %w", err)
	}
	if !opts.Force {
		if _, err := os.Lstat(dst); err == nil {
			return nil, fmt.Errorf("%s: %w", dst, ErrExists)
		}
	}
	// Not store.Open: its Close checkpoints the WAL, which would hold up a running server.
	db, err := openSQLite(path, false)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	version, err := checkVersion(ctx, db, path)
	if err != nil {
		return nil, err
	}
	var pageSize, pages, free int64
	if err := db.QueryRowContext(ctx, `SELECT page_size, page_count, freelist_count FROM pragma_page_size, pragma_page_count, pragma_freelist_count`).Scan(&pageSize, &pages, &free); err != nil {
		return nil, fmt.Errorf("read database size: %w", err)
	}
	total := (pages - free) * pageSize

	tmp, err := tempName(dst)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			os.Remove(tmp)
		}
	}()
	stop := watchSize(tmp, total, opts.Progress)
	_, err = db.ExecContext(ctx, `VACUUM INTO ?`, tmp)
	stop()
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := syncFile(tmp); err != nil {
		return nil, err
	}
	info, err := Inspect(ctx, tmp)
	if err != nil {
		return nil, fmt.Errorf("the backup does not check out: %w", err)
	}
	if info.SchemaVersion != version {
		return nil, fmt.Errorf("the backup has schema version %d, the source %d", info.SchemaVersion, version)
	}
	if err := place(tmp, dst, opts.Force); err != nil {
		return nil, err
	}
	ok = true
	if opts.Progress != nil {
		opts.Progress(info.Bytes, info.Bytes)
	}
	return &Result{Path: dst, Bytes: info.Bytes, SchemaVersion: version, Elapsed: time.Since(start)}, nil
}

// openSQLite opens one connection to a SQLite file, read-only if asked, waiting for locks as
// the server does.
func openSQLite(path string, readOnly bool) (*sql.DB, error) {
	dsn := "file:" + path + "?_pragma=busy_timeout(30000)"
	if readOnly {
		dsn += "&mode=ro"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// sqlitePath strips what openSQLite accepts around a file path (a scheme, options).
func sqlitePath(dsn string) string {
	for _, p := range []string{"sqlite://", "file:"} {
		if len(dsn) >= len(p) && dsn[:len(p)] == p {
			dsn = dsn[len(p):]
		}
	}
	for i := 0; i < len(dsn); i++ {
		if dsn[i] == '?' {
			return dsn[:i]
		}
	}
	return dsn
}

// checkVersion reads the schema version of a siyu database and refuses one that is not siyu's
// or is newer than this binary.
func checkVersion(ctx context.Context, db *sql.DB, path string) (int, error) {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('schema_migrations', 'customers', 'events', 'staff')`).Scan(&n); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if n != 4 {
		return 0, fmt.Errorf("%s is not a siyu database (no schema_migrations, customers, events or staff table)", path)
	}
	var v int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("%s: schema version: %w", path, err)
	}
	if v < 1 {
		return 0, fmt.Errorf("%s has no migration applied", path)
	}
	if v > store.SchemaVersion() {
		return 0, fmt.Errorf("%s has schema version %d; this siyu knows versions up to %d: use a newer siyu", path, v, store.SchemaVersion())
	}
	return v, nil
}

// tempName returns an unused name beside dst (same directory, so the final rename is atomic).
func tempName(dst string) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	name := f.Name()
	f.Close()
	// VACUUM INTO accepts an empty file, but remove it so that nothing but SQLite writes it.
	os.Remove(name)
	return name, nil
}

// watchSize reports the growing size of path against total until stop is called.
func watchSize(path string, total int64, progress func(done, total int64)) (stop func()) {
	if progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if fi, err := os.Stat(path); err == nil {
					progress(min(fi.Size(), total), total)
				}
			}
		}
	}()
	return func() { close(done); <-finished }
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// place gives tmp the name dst: with a hard link when dst must not be replaced (so a file
// created meanwhile is not overwritten either), with a rename otherwise; then syncs the
// directory so the name survives a crash.
func place(tmp, dst string, force bool) error {
	if force {
		if err := os.Rename(tmp, dst); err != nil {
			return err
		}
	} else {
		if err := os.Link(tmp, dst); err != nil {
			if errors.Is(err, os.ErrExist) {
				return fmt.Errorf("%s: %w", dst, ErrExists)
			}
			// A file system without hard links: check, then rename.
			if _, serr := os.Lstat(dst); serr == nil {
				return fmt.Errorf("%s: %w", dst, ErrExists)
			}
			if err := os.Rename(tmp, dst); err != nil {
				return err
			}
		} else {
			os.Remove(tmp)
		}
	}
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
