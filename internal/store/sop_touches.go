package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Touch states. A touch is planned until it is due; a staff task is then due (in its
// executor's inbox) until done, skipped or expired; an automatic one is sending until its
// adapter answers, then sent or failed. Skipped touches say why (opted out, capped, exit).
const (
	TouchPlanned = "planned"
	TouchDue     = "due"
	TouchSending = "sending"
	TouchDone    = "done"
	TouchSkipped = "skipped"
	TouchExpired = "expired"
	TouchSent    = "sent"
	TouchFailed  = "failed"
)

// Touch is one planned contact of one customer by one SOP step.
type Touch struct {
	ID         int64     `json:"id"`
	Key        string    `json:"key"`
	SOPID      int64     `json:"sop_id"`
	Version    int       `json:"version"`
	Step       int       `json:"step"`
	CustomerID int64     `json:"customer_id"`
	Occurrence string    `json:"occurrence"`
	EnteredAt  time.Time `json:"entered_at"`
	Channel    string    `json:"channel"`
	ExecutorID int64     `json:"executor_id,omitempty"`
	Automatic  bool      `json:"automatic"`
	DueAt      time.Time `json:"due_at"`
	DueDay     string    `json:"due_day"`
	State      string    `json:"state"`
	Reason     string    `json:"reason,omitempty"`
	Content    string    `json:"content,omitempty"`
	Note       string    `json:"note,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

const touchCols = `id, key, sop_id, version, step, customer_id, occurrence, entered_at, channel, COALESCE(executor_id, 0), automatic,
	due_at, due_day, state, reason, content, note, created_at, updated_at, COALESCE(finished_at, 0)`

func scanTouch(sc interface{ Scan(...any) error }) (*Touch, error) {
	var (
		t                                        Touch
		auto                                     int
		entered, due, created, updated, finished int64
	)
	if err := sc.Scan(&t.ID, &t.Key, &t.SOPID, &t.Version, &t.Step, &t.CustomerID, &t.Occurrence, &entered, &t.Channel, &t.ExecutorID, &auto,
		&due, &t.DueDay, &t.State, &t.Reason, &t.Content, &t.Note, &created, &updated, &finished); err != nil {
		return nil, err
	}
	t.Automatic = auto != 0
	t.EnteredAt, t.DueAt, t.CreatedAt, t.UpdatedAt, t.FinishedAt = fromMS(entered), fromMS(due), fromMS(created), fromMS(updated), fromMS(finished)
	return &t, nil
}

func terminal(state string) bool {
	switch state {
	case TouchDone, TouchSkipped, TouchExpired, TouchSent, TouchFailed:
		return true
	}
	return false
}

// InsertTouch adds a touch in tx unless one with its key exists, and reports whether it added
// it (t.ID is set then): the key makes planning idempotent.
func (tx *Tx) InsertTouch(t *Touch) (bool, error) {
	now := tx.Now()
	var finished any
	if terminal(t.State) {
		finished = ms(now)
	}
	auto := 0
	if t.Automatic {
		auto = 1
	}
	err := tx.row(`INSERT INTO touches (key, sop_id, version, step, customer_id, occurrence, entered_at, channel, executor_id, automatic,
		due_at, due_day, state, reason, content, note, created_at, updated_at, finished_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING id`,
		t.Key, t.SOPID, t.Version, t.Step, t.CustomerID, t.Occurrence, ms(t.EnteredAt), t.Channel, nullID(t.ExecutorID), auto,
		ms(t.DueAt), t.DueDay, t.State, t.Reason, t.Content, t.Note, ms(now), ms(now), finished).Scan(&t.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("insert touch %s: %w", t.Key, err)
	}
	t.CreatedAt, t.UpdatedAt = now, now
	return true, nil
}

// CountChannelDay counts a customer's touches on a channel on a day (YYYY-MM-DD) that will
// reach or have reached them: planned, due, sending, done or sent. It is what caps count.
func (tx *Tx) CountChannelDay(customerID int64, channel, day string) (int, error) {
	var n int
	err := tx.row(`SELECT COUNT(*) FROM touches WHERE customer_id = ? AND channel = ? AND due_day = ?
		AND state IN ('planned', 'due', 'sending', 'done', 'sent')`, customerID, channel, day).Scan(&n)
	return n, err
}

// LastEntry is when a customer last entered an SOP (its first step's entry time), zero if never.
func (tx *Tx) LastEntry(sopID, customerID int64) (time.Time, error) {
	var v sql.NullInt64
	err := tx.row(`SELECT MAX(entered_at) FROM touches WHERE sop_id = ? AND customer_id = ? AND step = 0`, sopID, customerID).Scan(&v)
	return nullMS(v), err
}

// Contact is what planning needs of a customer: its owner and opt-outs.
type Contact struct {
	CustomerID int64
	OwnerID    int64
	OptOuts    map[string]bool
	Merged     bool
}

// Contact reads a customer's owner and opt-outs in tx (ErrNotFound when there is no such
// customer).
func (tx *Tx) Contact(customerID int64) (*Contact, error) {
	c := &Contact{CustomerID: customerID, OptOuts: map[string]bool{}}
	var merged int64
	err := tx.row(`SELECT COALESCE(owner_id, 0), COALESCE(merged_into, 0) FROM customers WHERE id = ?`, customerID).Scan(&c.OwnerID, &merged)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	c.Merged = merged != 0
	rows, err := tx.query(`SELECT channel FROM customer_optouts WHERE customer_id = ?`, customerID)
	chans, err := collect(rows, err, func(sc interface{ Scan(...any) error }) (string, error) {
		var ch string
		return ch, sc.Scan(&ch)
	})
	if err != nil {
		return nil, err
	}
	for _, ch := range chans {
		c.OptOuts[ch] = true
	}
	return c, nil
}

// Touch returns one touch.
func (s *Store) Touch(ctx context.Context, id int64) (*Touch, error) {
	t, err := scanTouch(s.db.QueryRowContext(ctx, s.q(`SELECT `+touchCols+` FROM touches WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return t, err
}

// Touch returns one touch in tx.
func (tx *Tx) Touch(id int64) (*Touch, error) {
	t, err := scanTouch(tx.row(`SELECT `+touchCols+` FROM touches WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return t, err
}

// TouchUpdate is a state change of a touch; empty strings leave reason, content and note as
// they are.
type TouchUpdate struct {
	From                  []string // the states it may change from
	To                    string
	Reason, Content, Note string
	// ExecutorID, when set, hands the touch to another staff member.
	ExecutorID int64
}

// UpdateTouch changes a touch's state when it is in one of u.From and reports whether it did:
// the compare-and-set that keeps two runners from acting on one touch twice.
func (tx *Tx) UpdateTouch(id int64, u TouchUpdate) (bool, error) {
	if len(u.From) == 0 {
		return false, errors.New("update touch: no from state")
	}
	now := ms(tx.Now())
	var finished any
	if terminal(u.To) {
		finished = now
	}
	args := []any{u.To, u.Reason, u.Reason, u.Content, u.Content, u.Note, u.Note, nullID(u.ExecutorID), now, finished, id}
	for _, f := range u.From {
		args = append(args, f)
	}
	res, err := tx.exec(`UPDATE touches SET state = ?,
		reason = CASE WHEN ? = '' THEN reason ELSE ? END,
		content = CASE WHEN ? = '' THEN content ELSE ? END,
		note = CASE WHEN ? = '' THEN note ELSE ? END,
		executor_id = COALESCE(?, executor_id),
		updated_at = ?, finished_at = ?
		WHERE id = ? AND state IN (`+strings.TrimSuffix(strings.Repeat("?,", len(u.From)), ",")+`)`, args...)
	if err != nil {
		return false, fmt.Errorf("update touch %d: %w", id, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// CancelRemaining skips a customer's planned touches of one SOP occurrence (an exit condition
// held) and returns how many.
func (tx *Tx) CancelRemaining(sopID, customerID int64, occurrence, reason string) (int64, error) {
	now := ms(tx.Now())
	res, err := tx.exec(`UPDATE touches SET state = ?, reason = ?, updated_at = ?, finished_at = ?
		WHERE sop_id = ? AND customer_id = ? AND occurrence = ? AND state = ?`,
		TouchSkipped, reason, now, now, sopID, customerID, occurrence, TouchPlanned)
	if err != nil {
		return 0, fmt.Errorf("cancel remaining touches: %w", err)
	}
	return res.RowsAffected()
}

// BoughtSince reports whether a customer has a paid order at or after t.
func (s *Store) BoughtSince(ctx context.Context, customerID int64, t time.Time) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM orders WHERE customer_id = ? AND paid_at >= ?`), customerID, ms(t)).Scan(&n)
	return n > 0, err
}

// TouchFilter selects touches. Zero fields select everything.
type TouchFilter struct {
	SOPID      int64
	CustomerID int64
	ExecutorID int64 // staff tasks of this executor
	// Inbox selects staff tasks (not automatic) by inbox tab: today, overdue, upcoming, done.
	Inbox string
	// Now and Location place "today" for Inbox.
	Now      time.Time
	Location *time.Location
	Limit    int
}

// Touches lists touches by due time.
func (s *Store) Touches(ctx context.Context, f TouchFilter) ([]*Touch, error) {
	var (
		where []string
		args  []any
	)
	if f.SOPID != 0 {
		where, args = append(where, "sop_id = ?"), append(args, f.SOPID)
	}
	if f.CustomerID != 0 {
		where, args = append(where, "customer_id = ?"), append(args, f.CustomerID)
	}
	if f.ExecutorID != 0 {
		where, args = append(where, "executor_id = ?"), append(args, f.ExecutorID)
	}
	order := "due_at, id"
	if f.Inbox != "" {
		loc := f.Location
		if loc == nil {
			loc = time.UTC
		}
		lt := f.Now.In(loc)
		today := ms(time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, loc))
		where = append(where, "automatic = 0")
		switch f.Inbox {
		case "today":
			where, args = append(where, "state = ? AND due_at >= ?"), append(args, TouchDue, today)
		case "overdue":
			where, args = append(where, "state = ? AND due_at < ?"), append(args, TouchDue, today)
		case "upcoming":
			where, args = append(where, "state = ?"), append(args, TouchPlanned)
		case "done":
			where, args = append(where, "state IN (?, ?, ?)"), append(args, TouchDone, TouchSkipped, TouchExpired)
			order = "finished_at DESC, id DESC"
		default:
			return nil, fmt.Errorf("unknown inbox %q", f.Inbox)
		}
	}
	q := `SELECT ` + touchCols + ` FROM touches`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY ` + order
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, s.q(q), args...)
	return collect(rows, err, scanTouch)
}

// TouchCounts counts an SOP's touches by step and state.
func (s *Store) TouchCounts(ctx context.Context, sopID int64) (map[int]map[string]int64, error) {
	type row struct {
		step  int
		state string
		n     int64
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT step, state, COUNT(*) FROM touches WHERE sop_id = ? GROUP BY step, state`), sopID)
	rs, err := collect(rows, err, func(sc interface{ Scan(...any) error }) (row, error) {
		var r row
		return r, sc.Scan(&r.step, &r.state, &r.n)
	})
	if err != nil {
		return nil, err
	}
	out := map[int]map[string]int64{}
	for _, r := range rs {
		if out[r.step] == nil {
			out[r.step] = map[string]int64{}
		}
		out[r.step][r.state] = r.n
	}
	return out, nil
}
