package store

import (
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	_ "modernc.org/sqlite" // pure-Go SQLite: `go run` needs no C toolchain
)

// openSQLite opens a SQLite file in WAL mode. synchronous=NORMAL keeps every committed
// transaction across a crash of the process (kill -9); only a power loss may drop the last
// transactions. Set SIYU_SQLITE_SYNC=FULL (passed in the DSN as ?sync=FULL) for that too.
// Write transactions begin IMMEDIATE so two writers queue on the busy timeout instead of failing
// on a lock upgrade.
func openSQLite(dsn string) (*sql.DB, error) {
	path, sync := dsn, "NORMAL"
	if i := strings.IndexByte(dsn, '?'); i >= 0 {
		path = dsn[:i]
		if v, err := url.ParseQuery(dsn[i+1:]); err == nil && v.Get("sync") != "" {
			sync = strings.ToUpper(v.Get("sync"))
		}
	}
	if sync != "NORMAL" && sync != "FULL" {
		return nil, fmt.Errorf("sqlite sync must be NORMAL or FULL, got %q", sync)
	}
	path = strings.TrimPrefix(path, "sqlite://")
	path = strings.TrimPrefix(path, "file:")
	conn := "file:" + path + "?_txlock=immediate" +
		"&_pragma=journal_mode(WAL)&_pragma=busy_timeout(30000)&_pragma=foreign_keys(1)" +
		"&_pragma=synchronous(" + sync + ")&_pragma=cache_size(-65536)&_pragma=temp_store(MEMORY)" +
		"&_pragma=wal_autocheckpoint(0)"
	db, err := sql.Open("sqlite", conn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// One writer at a time is SQLite's rule anyway; a few connections let reads run beside it.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	return db, nil
}

// startCheckpointer copies the WAL back into the database file from a goroutine of its own,
// every second, instead of letting SQLite do it inside whichever commit crosses the threshold
// (which stalled the ingestion writer for about a fifth of its time). A PASSIVE checkpoint
// never blocks readers or the writer; when the WAL has grown large anyway (a long transaction
// such as an index build) and is fully copied, a TRUNCATE checkpoint waits for a gap and gives
// the disk space back. It returns the stop function.
func startCheckpointer(db *sql.DB) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			var busy, logPages, done int
			if err := db.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logPages, &done); err != nil {
				slog.Debug("sqlite checkpoint", "err", err)
				continue
			}
			if logPages > 65536 && done == logPages { // ~256 MB of WAL, all copied: start it over
				db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}
