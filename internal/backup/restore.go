package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"modernc.org/sqlite"

	"github.com/siyu-scrm/siyu/internal/store"
)

// Info describes a checked backup file.
type Info struct {
	Path          string
	Bytes         int64
	SchemaVersion int
	Customers     int64
	Events        int64
}

// Inspect checks that path is a sound siyu SQLite database of a schema version this binary
// knows: the SQLite header, PRAGMA quick_check, the siyu tables and schema_migrations. It opens
// the file read-only.
func Inspect(ctx context.Context, path string) (*Info, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	head := make([]byte, 16)
	_, err = io.ReadFull(f, head)
	f.Close()
	if err != nil || !bytes.Equal(head, []byte("SQLite format 3\x00")) {
		return nil, fmt.Errorf("%s is not a SQLite database", path)
	}
	db, err := openSQLite(path, true)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var check string
	if err := db.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&check); err != nil {
		return nil, fmt.Errorf("%s: quick_check: %w", path, err)
	}
	if check != "ok" {
		return nil, fmt.Errorf("%s is damaged: %s", path, check)
	}
	v, err := checkVersion(ctx, db, path)
	if err != nil {
		return nil, err
	}
	info := &Info{Path: path, Bytes: fi.Size(), SchemaVersion: v}
	if err := db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM customers), (SELECT COUNT(*) FROM events)`).Scan(&info.Customers, &info.Events); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return info, nil
}

// Restore copies the backup at src into the SQLite database dst (a path, as in --db) and
// applies the migrations this binary has that the backup lacks. An existing dst is refused
// unless opts.Force; then it is overwritten page by page inside one SQLite transaction, so a
// restore that fails part way leaves dst as it was. Stop `siyu serve` before restoring over
// the database it uses: a running server would keep in memory what the restore replaced.
func Restore(ctx context.Context, src, dst string, opts Options) (*Result, error) {
	start := time.Now()
	if store.IsPostgresDSN(dst) {
		return nil, errors.New("the database is PostgreSQL: restore it with pg_restore (see PostgresCommands)")
	}
	info, err := Inspect(ctx, src)
	if err != nil {
		return nil, err
	}
	path := sqlitePath(dst)
	if !opts.Force {
		for _, p := range []string{path, path + "-wal"} {
			if fi, err := os.Stat(p); err == nil && fi.Size() > 0 {
				return nil, fmt.Errorf("%s: %w", p, ErrExists)
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := copyPages(ctx, src, path, opts.Progress); err != nil {
		return nil, fmt.Errorf("restore into %s: %w", path, err)
	}
	st, err := store.Open(ctx, dst)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if _, err := st.Migrate(ctx); err != nil {
		return nil, fmt.Errorf("migrate the restored database: %w", err)
	}
	v, err := st.Version(ctx)
	if err != nil {
		return nil, err
	}
	return &Result{Path: path, Bytes: info.Bytes, SchemaVersion: v, Elapsed: time.Since(start)}, nil
}

// restorer is what modernc.org/sqlite's connection offers for the SQLite backup API.
type restorer interface {
	NewRestore(srcURI string) (*sqlite.Backup, error)
}

// copyPages copies every page of src into dst with the SQLite backup API, a few megabytes per
// step so that progress can be told.
func copyPages(ctx context.Context, src, dst string, progress func(done, total int64)) error {
	db, err := openSQLite(dst, false)
	if err != nil {
		return err
	}
	defer db.Close()
	var pageSize int64
	if err := db.QueryRowContext(ctx, `PRAGMA page_size`).Scan(&pageSize); err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		r, ok := dc.(restorer)
		if !ok {
			return fmt.Errorf("the SQLite driver (%T) has no backup API", dc)
		}
		b, err := r.NewRestore("file:" + src + "?mode=ro")
		if err != nil {
			return err
		}
		for more := true; more; {
			if err := ctx.Err(); err != nil {
				b.Finish()
				return err
			}
			if more, err = b.Step(1024); err != nil {
				b.Finish()
				return err
			}
			if progress != nil {
				total := int64(b.PageCount())
				progress((total-int64(b.Remaining()))*pageSize, total*pageSize)
			}
		}
		return b.Finish()
	})
}
