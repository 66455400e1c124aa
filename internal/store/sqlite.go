package store

import (
	"database/sql"
	"fmt"
	"net/url"
	"strings"

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
		"&_pragma=synchronous(" + sync + ")&_pragma=cache_size(-65536)&_pragma=temp_store(MEMORY)"
	db, err := sql.Open("sqlite", conn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// One writer at a time is SQLite's rule anyway; a few connections let reads run beside it.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	return db, nil
}
