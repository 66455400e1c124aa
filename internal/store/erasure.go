package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// Privacy: a customer's right to erasure and right of access.
//
// An erased customer keeps a tombstone: its customers row with every personal field emptied
// and merged_into = ErasedMark, plus a customer_erasures row saying when, by whom and what
// was removed. merged_into is what every list, count, segment and the audience engine already
// read to tell live customers from gone ones, so the tombstone disappears from all of them
// without each learning a new column. Orders stay, linked to the tombstone, so revenue totals
// and past RFM distributions do not change; they carry no personal data once the profile and
// identities are gone (see docs/privacy.md).

// ErasedMark is the merged_into of an erased customer's tombstone.
const ErasedMark = -1

// ErasureHook removes a capability's own personal rows of erased customers (ids: the customer
// and the customers merged into it). Packages that add per-customer tables with personal data
// register one in their store file, as with MergeHook.
type ErasureHook func(tx *Tx, ids []int64) (removed int64, err error)

var erasureHooks []ErasureHook

// Erasure is the record of one erased customer.
type Erasure struct {
	CustomerID int64            `json:"customer_id"`
	ErasedAt   time.Time        `json:"erased_at"`
	ByStaff    int64            `json:"by_staff_id"`
	Reason     string           `json:"reason"`
	Removed    map[string]int64 `json:"removed"` // rows removed or emptied, per kind
}

// EraseCustomer erases a customer in one transaction: its profile and attributes are emptied,
// its identities, opt-outs, events, tags and tag history, model rows, SOP memberships and
// group memberships deleted, the rendered content and notes of its touches emptied (open ones
// skipped), the customers merged into it erased the same way; it loses its owner and becomes
// a tombstone (see ErasedMark). audit, when not nil, runs in the same transaction (the audit
// entry commits with the erasure or not at all). A customer already erased, merged away or
// unknown is ErrNotFound.
func (s *Store) EraseCustomer(ctx context.Context, id, by int64, reason string, audit func(tx *Tx, e *Erasure) error) (*Erasure, error) {
	var out *Erasure
	err := s.InTx(ctx, func(tx *Tx) error {
		var merged sql.NullInt64
		if err := tx.row(`SELECT merged_into FROM customers WHERE id = ?`, id).Scan(&merged); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if merged.Valid {
			return ErrNotFound
		}
		rows, err := tx.query(`SELECT id FROM customers WHERE merged_into = ? ORDER BY id`, id)
		ids, err := collect(rows, err, scanID)
		if err != nil {
			return err
		}
		ids = append([]int64{id}, ids...)
		e := &Erasure{CustomerID: id, ErasedAt: tx.Now(), ByStaff: by, Reason: reason, Removed: map[string]int64{}}
		now := ms(e.ErasedAt)
		args := int64Args(ids)
		in := ` IN ` + placeholders(1, len(ids))
		for _, st := range []struct{ kind, sql string }{
			{"events", `DELETE FROM events WHERE customer_id` + in},
			{"identities", `DELETE FROM identities WHERE customer_id` + in},
			{"opt_outs", `DELETE FROM customer_optouts WHERE customer_id` + in},
			{"tags", `DELETE FROM customer_tags WHERE customer_id` + in},
			{"tag_history", `DELETE FROM tag_history WHERE customer_id` + in},
			{"sop_memberships", `DELETE FROM sop_members WHERE customer_id` + in},
			{"rfm_scores", `DELETE FROM customer_rfm WHERE customer_id` + in},
			{"stages", `DELETE FROM customer_stages WHERE customer_id` + in},
			{"stage_history", `DELETE FROM model_events WHERE customer_id` + in},
			{"group_memberships", `DELETE FROM wecom_group_members WHERE customer_id` + in},
			{"merges", `DELETE FROM customer_merges WHERE into_id` + in},
		} {
			res, err := tx.exec(st.sql, args...)
			if err != nil {
				return fmt.Errorf("erase customer %d: %s: %w", id, st.kind, err)
			}
			n, _ := res.RowsAffected()
			e.Removed[st.kind] += n
		}
		res, err := tx.exec(`UPDATE touches SET state = CASE WHEN state IN ('planned', 'due') THEN 'skipped' ELSE state END,
			reason = CASE WHEN state IN ('planned', 'due') THEN 'erased' ELSE reason END,
			content = '', note = '', updated_at = ? WHERE customer_id`+in, append([]any{now}, args...)...)
		if err != nil {
			return fmt.Errorf("erase customer %d: touches: %w", id, err)
		}
		n, _ := res.RowsAffected()
		e.Removed["touch_contents"] = n
		for _, h := range erasureHooks {
			n, err := h(tx, ids)
			if err != nil {
				return fmt.Errorf("erase customer %d: %w", id, err)
			}
			e.Removed["other"] += n
		}
		if _, err := tx.exec(`UPDATE customers SET name = '', gender = '', birthday = '', region = '', phone = '', email = '', avatar_url = '', source = '',
			attrs = '{}', owner_id = NULL, last_seen_at = 0, merged_into = ?, updated_at = ? WHERE id`+in, append([]any{ErasedMark, now}, args...)...); err != nil {
			return fmt.Errorf("erase customer %d: profile: %w", id, err)
		}
		e.Removed["profiles"] = int64(len(ids))
		removed, _ := json.Marshal(e.Removed)
		if _, err := tx.exec(`INSERT INTO customer_erasures (customer_id, erased_at, by_staff, reason, removed) VALUES (?, ?, ?, ?, ?)`,
			id, now, nullID(by), reason, string(removed)); err != nil {
			return fmt.Errorf("erase customer %d: tombstone: %w", id, err)
		}
		tx.noteCustomer(ids...)
		if audit != nil {
			if err := audit(tx, e); err != nil {
				return err
			}
		}
		out = e
		return nil
	})
	return out, err
}

// CustomerErasure returns the tombstone record of an erased customer, or ErrNotFound.
func (s *Store) CustomerErasure(ctx context.Context, id int64) (*Erasure, error) {
	e := &Erasure{CustomerID: id}
	var (
		at      int64
		by      sql.NullInt64
		removed string
	)
	err := s.db.QueryRowContext(ctx, s.q(`SELECT erased_at, by_staff, reason, removed FROM customer_erasures WHERE customer_id = ?`), id).Scan(&at, &by, &e.Reason, &removed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	e.ErasedAt, e.ByStaff = fromMS(at), by.Int64
	return e, json.Unmarshal([]byte(removed), &e.Removed)
}

// CustomerExport is everything siyu holds about one customer (right of access).
type CustomerExport struct {
	ExportedAt   time.Time             `json:"exported_at"`
	Profile      *customer.Customer    `json:"profile"`
	Identities   []customer.Identity   `json:"identities"`
	Tags         []tag.Assignment      `json:"tags"`
	TagHistory   []tag.HistoryEntry    `json:"tag_history"`
	Events       []*event.Event        `json:"events"`
	Orders       []*event.Order        `json:"orders"`
	Touches      []*Touch              `json:"touches"`
	OwnerHistory []OwnerChange         `json:"owner_history"`
	Merges       []Merge               `json:"merges"`
	Stages       []ExportStage         `json:"stages"`
	GroupChats   []string              `json:"group_chats"`
	Notes        []ExportNote          `json:"notes"`
	Counts       map[string]int64      `json:"counts"`
	Attributes   map[string]AttrDefRow `json:"attribute_definitions"`
}

// ExportStage is a customer's current stage in one model.
type ExportStage struct {
	Model     string    `json:"model"`
	Stage     string    `json:"stage"`
	EnteredAt time.Time `json:"entered_at"`
}

// ExportNote is a note staff wrote when finishing a task for the customer.
type ExportNote struct {
	TouchID int64     `json:"touch_id"`
	Note    string    `json:"note"`
	At      time.Time `json:"at"`
}

// ExportCustomer gathers one live customer's data: profile, identities, attributes, tags with
// their history, every event and order, touches with their content and notes, owner history,
// merges, model stages and group chats. A customer merged away or erased is ErrNotFound.
func (s *Store) ExportCustomer(ctx context.Context, id int64) (*CustomerExport, error) {
	c, err := s.Customer(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.MergedInto != 0 {
		return nil, ErrNotFound
	}
	x := &CustomerExport{ExportedAt: s.now(), Profile: c, Counts: map[string]int64{}, Attributes: map[string]AttrDefRow{}, Notes: []ExportNote{}}
	if x.Identities, err = s.Identities(ctx, id); err != nil {
		return nil, err
	}
	defs, err := s.AttrDefs(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range defs {
		if _, ok := c.Attrs[d.Key]; ok {
			x.Attributes[d.Key] = d
		}
	}
	if x.Tags, err = s.CustomerTags(ctx, id); err != nil {
		return nil, err
	}
	x.TagHistory = []tag.HistoryEntry{}
	for before := int64(0); ; {
		page, err := s.TagHistory(ctx, id, before, 1000)
		if err != nil {
			return nil, err
		}
		x.TagHistory = append(x.TagHistory, page...)
		if len(page) < 1000 {
			break
		}
		before = page[len(page)-1].ID
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+eventCols+` FROM events WHERE customer_id = ? ORDER BY ts, id`), id)
	if x.Events, err = collect(rows, err, scanEvent); err != nil {
		return nil, err
	}
	rows, err = s.db.QueryContext(ctx, s.q(`SELECT `+orderCols+` FROM orders WHERE customer_id = ? ORDER BY paid_at, id`), id)
	if x.Orders, err = collect(rows, err, scanOrder); err != nil {
		return nil, err
	}
	rows, err = s.db.QueryContext(ctx, s.q(`SELECT `+touchCols+` FROM touches WHERE customer_id = ? ORDER BY due_at, id`), id)
	if x.Touches, err = collect(rows, err, scanTouch); err != nil {
		return nil, err
	}
	for _, t := range x.Touches {
		if t.Note != "" {
			x.Notes = append(x.Notes, ExportNote{TouchID: t.ID, Note: t.Note, At: t.UpdatedAt})
		}
	}
	if x.OwnerHistory, err = s.OwnerHistory(ctx, id, 0); err != nil {
		return nil, err
	}
	if x.Merges, err = s.Merges(ctx, id); err != nil {
		return nil, err
	}
	rows, err = s.db.QueryContext(ctx, s.q(`SELECT model, stage, entered_at FROM customer_stages WHERE customer_id = ? ORDER BY model`), id)
	x.Stages, err = collect(rows, err, func(sc interface{ Scan(...any) error }) (ExportStage, error) {
		var st ExportStage
		var at int64
		err := sc.Scan(&st.Model, &st.Stage, &at)
		st.EnteredAt = fromMS(at)
		return st, err
	})
	if err != nil {
		return nil, err
	}
	rows, err = s.db.QueryContext(ctx, s.q(`SELECT DISTINCT chat_id FROM wecom_group_members WHERE customer_id = ? ORDER BY chat_id`), id)
	x.GroupChats, err = collect(rows, err, func(sc interface{ Scan(...any) error }) (string, error) {
		var chat string
		return chat, sc.Scan(&chat)
	})
	if err != nil {
		return nil, err
	}
	x.Counts["events"] = int64(len(x.Events))
	x.Counts["orders"] = int64(len(x.Orders))
	x.Counts["touches"] = int64(len(x.Touches))
	x.Counts["tags"] = int64(len(x.Tags))
	return x, nil
}
