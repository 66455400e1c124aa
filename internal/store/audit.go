package store

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/siyu-scrm/siyu/internal/customer"
)

// AuditEntry is one line of the audit log: who (a staff member, an API key, or both when a
// key acts for a person; neither for a failed sign-in or the system), when, from where, what
// (Action, one of the audit package's constants) and on what (Target, "kind:id" such as
// "customer:42" or "staff:3"), with the particulars in Detail. Entries are never changed.
type AuditEntry struct {
	ID        int64          `json:"id"`
	At        time.Time      `json:"at"`
	StaffID   int64          `json:"staff_id,omitempty"`
	KeyID     int64          `json:"key_id,omitempty"`
	Action    string         `json:"action"`
	Target    string         `json:"target,omitempty"`
	IP        string         `json:"ip,omitempty"`
	UserAgent string         `json:"user_agent,omitempty"`
	Detail    map[string]any `json:"detail,omitempty"`
	// Actor names who acted, as read back (staff "name (login)", key "name sk_abc…"); it is
	// not stored, so it follows renames.
	Actor string `json:"actor,omitempty"`
}

// Limits of an audit entry's fields. Longer user agents and targets are cut, not refused: an
// action must never fail because its audit line is long.
const (
	maxAuditAction = 100
	maxAuditTarget = 200
	maxAuditIP     = 64
	maxAuditUA     = 400
	maxAuditDetail = 16 << 10
)

// AppendAudit writes one entry on its own. Use Tx.AppendAudit when the action is a write, so
// the entry commits or rolls back with it.
func (s *Store) AppendAudit(ctx context.Context, e AuditEntry) error {
	return s.InTx(ctx, func(tx *Tx) error { return tx.AppendAudit(e) })
}

// AppendAudit writes one entry inside the caller's transaction.
func (tx *Tx) AppendAudit(e AuditEntry) error {
	if e.Action == "" || len(e.Action) > maxAuditAction {
		return fmt.Errorf("audit: action %q: required, at most %d bytes", e.Action, maxAuditAction)
	}
	if e.At.IsZero() {
		e.At = tx.Now()
	}
	detail := []byte("{}")
	if len(e.Detail) > 0 {
		b, err := json.Marshal(e.Detail)
		if err != nil {
			return fmt.Errorf("audit %s: detail: %w", e.Action, err)
		}
		if len(b) > maxAuditDetail {
			b, _ = json.Marshal(map[string]any{"truncated": true, "bytes": len(b)})
		}
		detail = b
	}
	_, err := tx.exec(`INSERT INTO audit_log (at, staff_id, key_id, action, target, ip, user_agent, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		ms(e.At), nullID(e.StaffID), nullID(e.KeyID), e.Action, cut(e.Target, maxAuditTarget), cut(e.IP, maxAuditIP), cut(e.UserAgent, maxAuditUA), string(detail))
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}

// cut shortens s to at most n bytes without splitting a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// AuditQuery selects audit entries; zero fields do not filter.
type AuditQuery struct {
	StaffID int64
	KeyID   int64
	// Action is one action ("auth.sign_in") or, without a dot, every action of an area
	// ("auth").
	Action string
	// Target keeps entries on this target ("customer:42") or, ending in ":", on any target of
	// the kind ("customer:").
	Target string
	// From and To bound the time: From <= at < To.
	From, To time.Time
	// Text searches (case-insensitively) the action, target, IP, user agent, detail and the
	// actor's login and name.
	Text string
	// Cursor continues after the last entry of a previous page; Limit is 50 by default, at
	// most 500.
	Cursor string
	Limit  int
}

// AuditPage is one page of entries, newest first.
type AuditPage struct {
	Entries    []AuditEntry `json:"entries"`
	NextCursor string       `json:"next_cursor,omitempty"`
}

// ListAudit returns one newest-first page of the entries q selects.
func (s *Store) ListAudit(ctx context.Context, q AuditQuery) (*AuditPage, error) {
	limit := q.Limit
	switch {
	case limit == 0:
		limit = 50
	case limit < 0 || limit > 500:
		return nil, &customer.FieldError{Field: "limit", Reason: "want 1 to 500"}
	}
	conds := []string{"1 = 1"}
	args := []any{}
	add := func(cond string, a ...any) { conds = append(conds, cond); args = append(args, a...) }
	if q.StaffID != 0 {
		add("a.staff_id = ?", q.StaffID)
	}
	if q.KeyID != 0 {
		add("a.key_id = ?", q.KeyID)
	}
	switch act := strings.TrimSpace(q.Action); {
	case act == "":
	case strings.Contains(act, "."):
		add("a.action = ?", act)
	default:
		add("a.action LIKE ? ESCAPE '\\'", escapeLike(act)+".%")
	}
	switch t := strings.TrimSpace(q.Target); {
	case t == "":
	case strings.HasSuffix(t, ":"):
		add("a.target LIKE ? ESCAPE '\\'", escapeLike(t)+"%")
	default:
		add("a.target = ?", t)
	}
	if !q.From.IsZero() {
		add("a.at >= ?", ms(q.From))
	}
	if !q.To.IsZero() {
		add("a.at < ?", ms(q.To))
	}
	if text := strings.TrimSpace(q.Text); text != "" {
		like := "%" + escapeLike(strings.ToLower(text)) + "%"
		add(`(LOWER(a.action) LIKE ? ESCAPE '\' OR LOWER(a.target) LIKE ? ESCAPE '\' OR LOWER(a.ip) LIKE ? ESCAPE '\' OR LOWER(a.user_agent) LIKE ? ESCAPE '\' OR LOWER(CAST(a.detail AS TEXT)) LIKE ? ESCAPE '\' OR LOWER(COALESCE(st.login, '')) LIKE ? ESCAPE '\' OR LOWER(COALESCE(st.name, '')) LIKE ? ESCAPE '\')`,
			like, like, like, like, like, like, like)
	}
	if q.Cursor != "" {
		id, err := strconv.ParseInt(q.Cursor, 10, 64)
		if err != nil || id <= 0 {
			return nil, &customer.FieldError{Field: "cursor", Reason: "not a cursor from a previous page"}
		}
		add("a.id < ?", id)
	}
	args = append(args, limit+1)
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT a.id, a.at, COALESCE(a.staff_id, 0), COALESCE(a.key_id, 0), a.action, a.target, a.ip, a.user_agent, a.detail,
		COALESCE(st.name, ''), COALESCE(st.login, ''), COALESCE(k.name, ''), COALESCE(k.prefix, '')
		FROM audit_log a LEFT JOIN staff st ON st.id = a.staff_id LEFT JOIN api_keys k ON k.id = a.key_id
		WHERE `+strings.Join(conds, " AND ")+` ORDER BY a.id DESC LIMIT ?`), args...)
	entries, err := collect(rows, err, scanAudit)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	page := &AuditPage{Entries: entries}
	if len(entries) > limit {
		page.Entries = entries[:limit]
		page.NextCursor = strconv.FormatInt(page.Entries[limit-1].ID, 10)
	}
	return page, nil
}

func scanAudit(sc interface{ Scan(...any) error }) (AuditEntry, error) {
	var (
		e                         AuditEntry
		at                        int64
		detail                    string
		name, login, key, keyPref string
	)
	if err := sc.Scan(&e.ID, &at, &e.StaffID, &e.KeyID, &e.Action, &e.Target, &e.IP, &e.UserAgent, &detail, &name, &login, &key, &keyPref); err != nil {
		return e, err
	}
	e.At = fromMS(at)
	if detail != "" && detail != "{}" {
		if err := json.Unmarshal([]byte(detail), &e.Detail); err != nil {
			return e, fmt.Errorf("audit %d detail: %w", e.ID, err)
		}
	}
	var actor []string
	if login != "" {
		actor = append(actor, name+" ("+login+")")
	}
	if e.KeyID != 0 {
		actor = append(actor, strings.TrimSpace("key "+key+" "+keyPref+"…"))
	}
	e.Actor = strings.Join(actor, " via ")
	return e, nil
}

// escapeLike escapes the LIKE wildcards of s for ESCAPE '\'.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// appendOnlyRE finds {{append_only:TABLE}} in a migration.
var appendOnlyRE = regexp.MustCompile(`\{\{append_only:(\w+)\}\}`)

// appendOnlySQL makes a table refuse UPDATE and DELETE (and, on PostgreSQL, TRUNCATE) with an
// error: the database itself keeps the audit log append-only, whatever code runs against it.
// An operator who must prune it (retention) drops the trigger as the database owner, which is
// itself a visible act.
func appendOnlySQL(engine Engine, table string) string {
	if engine == Postgres {
		return `CREATE OR REPLACE FUNCTION siyu_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege'; END $$;
CREATE TRIGGER ` + table + `_append_only BEFORE UPDATE OR DELETE ON ` + table + ` FOR EACH ROW EXECUTE FUNCTION siyu_append_only();
CREATE TRIGGER ` + table + `_no_truncate BEFORE TRUNCATE ON ` + table + ` FOR EACH STATEMENT EXECUTE FUNCTION siyu_append_only();`
	}
	return `CREATE TRIGGER ` + table + `_no_update BEFORE UPDATE ON ` + table + ` BEGIN SELECT RAISE(ABORT, '` + table + ` is append-only'); END;
CREATE TRIGGER ` + table + `_no_delete BEFORE DELETE ON ` + table + ` BEGIN SELECT RAISE(ABORT, '` + table + ` is append-only'); END;`
}
