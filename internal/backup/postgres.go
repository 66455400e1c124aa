package backup

import (
	"net/url"
	"strings"
)

// PostgresCommands returns the pg_dump command that backs up the PostgreSQL database dsn into
// file (custom format: compressed, restorable table by table) and the pg_restore command that
// restores it into an empty database. siyu does not run them: they need the PostgreSQL client
// tools of the server's major version, and a restore is the operator's decision. A password in
// the URL is left out of the commands (give it with PGPASSWORD or ~/.pgpass).
func PostgresCommands(dsn, file string) (dump, restore string) {
	safe := dsn
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.User(u.User.Username())
			safe = u.String()
		}
	}
	dump = "pg_dump --format=custom --no-owner --dbname=" + shellQuote(safe) + " --file=" + shellQuote(file)
	restore = "pg_restore --no-owner --exit-on-error --dbname=" + shellQuote(safe) + " " + shellQuote(file)
	return dump, restore
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@%+=,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
