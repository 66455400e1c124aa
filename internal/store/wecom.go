package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// WeCom (internal/wecom): the callback inbox, replay protection, the staff ↔ WeCom userid
// mapping, channel codes, group chats, mirrored tags and the shared access token.

func init() { mergeHooks = append(mergeHooks, mergeWeCom) }

// ErrWeComReplay refuses a callback whose (msg_signature, nonce) was seen before.
var ErrWeComReplay = errors.New("wecom callback replayed")

// WeCom inbox states.
const (
	WeComPending = "pending"
	WeComDone    = "done"
	WeComFailed  = "failed" // gave up after WeComMaxAttempts
)

// WeComMaxAttempts is how often the worker tries an event before it is left failed.
const WeComMaxAttempts = 8

// WeComInboxRow is one queued callback event.
type WeComInboxRow struct {
	ID         int64
	Key        string
	Kind       string
	Payload    string // the decrypted XML
	State      string
	Attempts   int
	LastError  string
	ReceivedAt time.Time
}

// QueueWeComEvent durably queues a verified callback event in one transaction with the
// record of its (signature, nonce): a replay of the same pair is refused with ErrWeComReplay
// and writes nothing; the same event delivered again under a new signature (WeCom's retry)
// is recorded as seen but not queued twice (queued false).
func (s *Store) QueueWeComEvent(ctx context.Context, signature, nonce, key, kind, payload string) (queued bool, err error) {
	err = s.InTx(ctx, func(tx *Tx) error {
		now := ms(tx.Now())
		res, err := tx.exec(`INSERT INTO wecom_nonces (signature, nonce, seen_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, signature, nonce, now)
		if err != nil {
			return fmt.Errorf("wecom nonce: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrWeComReplay
		}
		res, err = tx.exec(`INSERT INTO wecom_inbox (event_key, kind, payload, state, next_at, received_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_key) DO NOTHING`,
			key, kind, payload, WeComPending, now, now)
		if err != nil {
			return fmt.Errorf("wecom inbox: %w", err)
		}
		n, _ := res.RowsAffected()
		queued = n > 0
		return nil
	})
	return queued, err
}

// PruneWeComNonces forgets signatures seen before t (callbacks older than the freshness
// window are refused anyway, so they cannot be replayed).
func (s *Store) PruneWeComNonces(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, s.q(`DELETE FROM wecom_nonces WHERE seen_at < ?`), ms(before))
	if err != nil {
		return 0, fmt.Errorf("prune wecom nonces: %w", err)
	}
	return res.RowsAffected()
}

const weComInboxCols = `id, event_key, kind, payload, state, attempts, last_error, received_at`

func scanWeComInbox(sc interface{ Scan(...any) error }) (*WeComInboxRow, error) {
	var r WeComInboxRow
	var recv int64
	if err := sc.Scan(&r.ID, &r.Key, &r.Kind, &r.Payload, &r.State, &r.Attempts, &r.LastError, &recv); err != nil {
		return nil, err
	}
	r.ReceivedAt = fromMS(recv)
	return &r, nil
}

// NextWeComEvent returns the oldest pending event that is due, or nil. It locks nothing: the
// worker prepares the event (API calls) outside any transaction, then takes it with
// LockWeComEvent in the transaction that applies it.
func (s *Store) NextWeComEvent(ctx context.Context) (*WeComInboxRow, error) {
	r, err := scanWeComInbox(s.db.QueryRowContext(ctx, s.q(`SELECT `+weComInboxCols+` FROM wecom_inbox WHERE state = ? AND next_at <= ? ORDER BY id LIMIT 1`),
		WeComPending, ms(s.now())))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("next wecom event: %w", err)
	}
	return r, nil
}

// LockWeComEvent takes a pending event for this transaction; false when it is no longer
// pending or another instance holds it (PostgreSQL: FOR UPDATE SKIP LOCKED).
func (tx *Tx) LockWeComEvent(id int64) (bool, error) {
	q := `SELECT id FROM wecom_inbox WHERE id = ? AND state = ?`
	if tx.s.engine == Postgres {
		q += ` FOR UPDATE SKIP LOCKED`
	}
	var got int64
	err := tx.row(q, id, WeComPending).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lock wecom event %d: %w", id, err)
	}
	return true, nil
}

// CustomerOwnerSource returns a customer's owner (0: none) and source.
func (tx *Tx) CustomerOwnerSource(id int64) (owner int64, source string, err error) {
	err = tx.row(`SELECT COALESCE(owner_id, 0), source FROM customers WHERE id = ?`, id).Scan(&owner, &source)
	if err != nil {
		return 0, "", fmt.Errorf("customer %d: %w", id, err)
	}
	return owner, source, nil
}

// FinishWeComEvent marks an event done, in the transaction that applied it.
func (tx *Tx) FinishWeComEvent(id int64) error {
	_, err := tx.exec(`UPDATE wecom_inbox SET state = ?, attempts = attempts + 1, last_error = '', done_at = ? WHERE id = ?`, WeComDone, ms(tx.Now()), id)
	return err
}

// FailWeComEvent records a failed attempt: the event is tried again after retryIn, or left
// failed after WeComMaxAttempts. It reports whether the event gave up.
func (s *Store) FailWeComEvent(ctx context.Context, id int64, cause error, retryIn time.Duration) (gaveUp bool, err error) {
	msg := cause.Error()
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	err = s.InTx(ctx, func(tx *Tx) error {
		var attempts int
		if err := tx.row(`SELECT attempts FROM wecom_inbox WHERE id = ?`, id).Scan(&attempts); err != nil {
			return fmt.Errorf("wecom event %d: %w", id, err)
		}
		attempts++
		state := WeComPending
		if attempts >= WeComMaxAttempts {
			state, gaveUp = WeComFailed, true
		}
		_, err := tx.exec(`UPDATE wecom_inbox SET state = ?, attempts = ?, last_error = ?, next_at = ? WHERE id = ?`,
			state, attempts, msg, ms(tx.Now().Add(retryIn)), id)
		return err
	})
	return gaveUp, err
}

// WeComInbox lists the inbox, oldest first (tests and the console's integration page).
func (s *Store) WeComInbox(ctx context.Context) ([]*WeComInboxRow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+weComInboxCols+` FROM wecom_inbox ORDER BY id`)
	return collect(rows, err, scanWeComInbox)
}

// SetWeComUserID maps a staff member to their WeCom userid ("" removes the mapping). A userid
// belongs to one staff member: mapping it to another is ErrConflict.
func (s *Store) SetWeComUserID(ctx context.Context, staffID int64, userID string) error {
	return s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.exec(`DELETE FROM wecom_staff WHERE staff_id = ?`, staffID); err != nil {
			return err
		}
		if userID == "" {
			return nil
		}
		var n int
		if err := tx.row(`SELECT COUNT(*) FROM staff WHERE id = ?`, staffID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		res, err := tx.exec(`INSERT INTO wecom_staff (wecom_userid, staff_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, userID, staffID, ms(tx.Now()))
		if err != nil {
			return fmt.Errorf("map wecom userid: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: WeCom userid %q belongs to another staff member", ErrConflict, userID)
		}
		return nil
	})
}

// WeComStaff returns the staff member (id and login) mapped to a WeCom userid; id 0 when none.
func (tx *Tx) WeComStaff(userID string) (id int64, login string, err error) {
	err = tx.row(`SELECT s.id, s.login FROM wecom_staff w JOIN staff s ON s.id = w.staff_id WHERE w.wecom_userid = ?`, userID).Scan(&id, &login)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil
	}
	return id, login, err
}

// WeComUserIDs returns every mapping, WeCom userid → staff id.
func (s *Store) WeComUserIDs(ctx context.Context) (map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT wecom_userid, staff_id FROM wecom_staff`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var u string
		var id int64
		if err := rows.Scan(&u, &id); err != nil {
			return nil, err
		}
		out[u] = id
	}
	return out, rows.Err()
}

// SetWeComChannelCode names the source a 渠道活码's state stands for ("" removes it).
func (s *Store) SetWeComChannelCode(ctx context.Context, state, source string) error {
	if state == "" {
		return &customer.FieldError{Field: "state", Reason: "required"}
	}
	if source == "" {
		_, err := s.db.ExecContext(ctx, s.q(`DELETE FROM wecom_channel_codes WHERE state = ?`), state)
		return err
	}
	_, err := s.db.ExecContext(ctx, s.q(`INSERT INTO wecom_channel_codes (state, source, created_at) VALUES (?, ?, ?)
		ON CONFLICT (state) DO UPDATE SET source = excluded.source`), state, source, ms(s.now()))
	return err
}

// WeComChannelSource returns the source label of a channel code's state; ok false when the
// state is not a known channel code.
func (tx *Tx) WeComChannelSource(state string) (source string, ok bool, err error) {
	err = tx.row(`SELECT source FROM wecom_channel_codes WHERE state = ?`, state).Scan(&source)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return source, err == nil, err
}

// WeComGroupChat is a customer group chat (客户群) as siyu knows it.
type WeComGroupChat struct {
	ChatID    string
	Name      string
	Owner     string // the owner's WeCom userid
	Status    string // "active" or "dismissed"
	Members   []string
	UpdatedAt time.Time
}

// Group chat states.
const (
	WeComChatActive    = "active"
	WeComChatDismissed = "dismissed"
)

// UpsertWeComGroupChat creates or updates a group chat; empty name or owner keep the stored
// ones.
func (tx *Tx) UpsertWeComGroupChat(chatID, name, owner, status string) error {
	now := ms(tx.Now())
	var dismissed any
	if status == WeComChatDismissed {
		dismissed = now
	}
	_, err := tx.exec(`INSERT INTO wecom_group_chats (chat_id, name, owner_userid, status, created_at, updated_at, dismissed_at) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (chat_id) DO UPDATE SET
			name = CASE WHEN excluded.name = '' THEN wecom_group_chats.name ELSE excluded.name END,
			owner_userid = CASE WHEN excluded.owner_userid = '' THEN wecom_group_chats.owner_userid ELSE excluded.owner_userid END,
			status = excluded.status, updated_at = excluded.updated_at, dismissed_at = excluded.dismissed_at`,
		chatID, name, owner, status, now, now, dismissed)
	if err != nil {
		return fmt.Errorf("wecom group chat %s: %w", chatID, err)
	}
	return nil
}

// AddWeComGroupMember records a member joining a chat (customerID 0 for staff and unknown
// members); added is false when the member was already in.
func (tx *Tx) AddWeComGroupMember(chatID, memberID string, customerID int64, at time.Time) (added bool, err error) {
	res, err := tx.exec(`INSERT INTO wecom_group_members (chat_id, member_id, customer_id, joined_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		chatID, memberID, nullID(customerID), ms(at))
	if err != nil {
		return false, fmt.Errorf("wecom group member: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// RemoveWeComGroupMember records a member leaving; removed is false when they were not in.
func (tx *Tx) RemoveWeComGroupMember(chatID, memberID string) (removed bool, err error) {
	res, err := tx.exec(`DELETE FROM wecom_group_members WHERE chat_id = ? AND member_id = ?`, chatID, memberID)
	if err != nil {
		return false, fmt.Errorf("wecom group member: %w", err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// WeComGroupMembers lists a chat's members, member id → customer id (0 when not a customer).
func (tx *Tx) WeComGroupMembers(chatID string) (map[string]int64, error) {
	rows, err := tx.query(`SELECT member_id, COALESCE(customer_id, 0) FROM wecom_group_members WHERE chat_id = ?`, chatID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var m string
		var c int64
		if err := rows.Scan(&m, &c); err != nil {
			return nil, err
		}
		out[m] = c
	}
	return out, rows.Err()
}

// WeComGroupChat returns one group chat with its members (sorted), or ErrNotFound.
func (s *Store) WeComGroupChat(ctx context.Context, chatID string) (*WeComGroupChat, error) {
	var g WeComGroupChat
	var upd int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT chat_id, name, owner_userid, status, updated_at FROM wecom_group_chats WHERE chat_id = ?`), chatID).
		Scan(&g.ChatID, &g.Name, &g.Owner, &g.Status, &upd)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	g.UpdatedAt = fromMS(upd)
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT member_id FROM wecom_group_members WHERE chat_id = ? ORDER BY member_id`), chatID)
	g.Members, err = collect(rows, err, func(sc interface{ Scan(...any) error }) (string, error) {
		var m string
		return m, sc.Scan(&m)
	})
	return &g, err
}

// WeComTagGroupName is the siyu tag group that mirrors WeCom's customer tag library.
const WeComTagGroupName = "企微标签"

// WeComTag returns the siyu tag mirroring a WeCom tag id, 0 when there is none.
func (tx *Tx) WeComTag(wecomID string) (int64, error) {
	var id int64
	err := tx.row(`SELECT w.tag_id FROM wecom_tags w JOIN tags t ON t.id = w.tag_id WHERE w.wecom_id = ?`, wecomID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return id, err
}

// weComTagGroup returns the id of the 企微标签 group, creating it.
func (tx *Tx) weComTagGroup() (int64, error) {
	var id int64
	err := tx.row(`SELECT id FROM tag_groups WHERE name = ?`, WeComTagGroupName).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	now := ms(tx.Now())
	err = tx.row(`INSERT INTO tag_groups (name, kind, exclusive, position, created_at, updated_at)
		VALUES (?, ?, 0, (SELECT COALESCE(MAX(position), 0) + 1 FROM tag_groups), ?, ?) RETURNING id`,
		WeComTagGroupName, string(tag.Custom), now, now).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("create tag group %s: %w", WeComTagGroupName, err)
	}
	return id, nil
}

// MirrorWeComTag creates or renames the siyu tag that mirrors a WeCom tag, in the 企微标签
// group, named "group/tag" after WeCom's tag group and tag (names are unique only within a
// WeCom group). It returns the siyu tag id.
func (tx *Tx) MirrorWeComTag(wecomID, wecomGroupID, groupName, tagName string, position int) (int64, error) {
	name, err := tag.CleanName("name", truncateRunes(groupName+"/"+tagName, tag.MaxNameLen))
	if err != nil {
		return 0, err
	}
	gid, err := tx.weComTagGroup()
	if err != nil {
		return 0, err
	}
	now := ms(tx.Now())
	id, err := tx.WeComTag(wecomID)
	if err != nil {
		return 0, err
	}
	if id != 0 {
		if _, err := tx.exec(`UPDATE tags SET name = ?, position = ?, updated_at = ? WHERE id = ? AND (name <> ? OR position <> ?)`, name, position, now, id, name, position); err != nil {
			return 0, fmt.Errorf("rename wecom tag %s: %w", wecomID, err)
		}
		_, err := tx.exec(`UPDATE wecom_tags SET wecom_group_id = ? WHERE wecom_id = ?`, wecomGroupID, wecomID)
		return id, err
	}
	// A siyu tag of that name may already exist in the group (a mapping lost with its tag).
	err = tx.row(`SELECT id FROM tags WHERE group_id = ? AND name = ?`, gid, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.row(`INSERT INTO tags (group_id, name, color, position, created_at, updated_at) VALUES (?, ?, '', ?, ?, ?) RETURNING id`,
			gid, name, position, now, now).Scan(&id)
	}
	if err != nil {
		return 0, fmt.Errorf("mirror wecom tag %s: %w", wecomID, err)
	}
	_, err = tx.exec(`INSERT INTO wecom_tags (wecom_id, tag_id, wecom_group_id, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (wecom_id) DO UPDATE SET tag_id = excluded.tag_id, wecom_group_id = excluded.wecom_group_id`, wecomID, id, wecomGroupID, now)
	if err != nil {
		return 0, fmt.Errorf("map wecom tag %s: %w", wecomID, err)
	}
	return id, nil
}

// DeleteWeComTags deletes the siyu tags mirroring WeCom tags (by tag id) or whole WeCom tag
// groups (by group id), removing them from customers with reason wecom.
func (tx *Tx) DeleteWeComTags(tagIDs, groupIDs []string) ([]tag.Change, error) {
	var ids []int64
	for _, w := range tagIDs {
		got, err := tx.int64s(`SELECT tag_id FROM wecom_tags WHERE wecom_id = ?`, w)
		if err != nil {
			return nil, err
		}
		ids = append(ids, got...)
	}
	for _, g := range groupIDs {
		got, err := tx.int64s(`SELECT tag_id FROM wecom_tags WHERE wecom_group_id = ?`, g)
		if err != nil {
			return nil, err
		}
		ids = append(ids, got...)
	}
	ids = uniqueIDs(ids)
	existing, err := tx.tagMetas(ids)
	if err != nil {
		return nil, err
	}
	var live []int64
	for _, id := range ids {
		if _, ok := existing[id]; ok {
			live = append(live, id)
		}
	}
	changes, err := tx.deleteTags(live, tag.Cause{Reason: tag.ReasonWeCom})
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if _, err := tx.exec(`DELETE FROM wecom_tags WHERE tag_id = ?`, id); err != nil {
			return nil, err
		}
	}
	return changes, nil
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}

// WeComToken returns the stored access token of an app and its expiry ("" when none).
func (s *Store) WeComToken(ctx context.Context, name string) (token string, expires time.Time, err error) {
	var exp int64
	err = s.db.QueryRowContext(ctx, s.q(`SELECT token, expires_at FROM wecom_tokens WHERE name = ?`), name).Scan(&token, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, nil
	}
	return token, fromMS(exp), err
}

// RefreshWeComToken replaces an app's access token with one from fetch, unless another
// instance already did: when the stored token differs from stale and is valid for more than
// margin, it is returned without fetching. On PostgreSQL the check and the fetch hold an
// advisory lock, so instances never fetch at once; on SQLite (one process) the caller's mutex
// serialises refreshes and the fetch runs outside any transaction, not holding the write lock.
func (s *Store) RefreshWeComToken(ctx context.Context, name, stale string, margin time.Duration,
	fetch func(context.Context) (string, time.Time, error)) (string, time.Time, error) {
	var token string
	var expires time.Time
	// refresh runs on a transaction (PostgreSQL) or on the pool (SQLite).
	refresh := func(row func(string, ...any) *sql.Row, exec func(string, ...any) (sql.Result, error)) error {
		var exp int64
		err := row(s.q(`SELECT token, expires_at FROM wecom_tokens WHERE name = ?`), name).Scan(&token, &exp)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err == nil && token != stale && fromMS(exp).After(s.now().Add(margin)) {
			expires = fromMS(exp)
			return nil
		}
		if token, expires, err = fetch(ctx); err != nil {
			return err
		}
		_, err = exec(s.q(`INSERT INTO wecom_tokens (name, token, expires_at, updated_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at, updated_at = excluded.updated_at`),
			name, token, ms(expires), ms(s.now()))
		return err
	}
	var err error
	if s.engine == Postgres {
		err = s.InTx(ctx, func(tx *Tx) error {
			if _, err := tx.exec(`SELECT pg_advisory_xact_lock(727002, hashtext(?))`, name); err != nil {
				return err
			}
			return refresh(func(q string, a ...any) *sql.Row { return tx.tx.QueryRowContext(ctx, q, a...) },
				func(q string, a ...any) (sql.Result, error) { return tx.tx.ExecContext(ctx, q, a...) })
		})
	} else {
		err = refresh(func(q string, a ...any) *sql.Row { return s.db.QueryRowContext(ctx, q, a...) },
			func(q string, a ...any) (sql.Result, error) { return s.db.ExecContext(ctx, q, a...) })
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("wecom access token: %w", err)
	}
	return token, expires, nil
}

// mergeWeCom moves group memberships to the surviving customer.
func mergeWeCom(tx *Tx, from, into int64) error {
	_, err := tx.exec(`UPDATE wecom_group_members SET customer_id = ? WHERE customer_id = ?`, into, from)
	return err
}
