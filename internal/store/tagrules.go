package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// Tag rules are stored as a name, an enabled flag and a JSON spec (trigger and actions).
// Every write bumps the version in settings (tagRulesVersionKey) in the same transaction, so
// rule runners in every process see a change on their next call and reload.

const tagRulesVersionKey = "tag_rules.version"

func backfillKey(ruleID int64) string { return fmt.Sprintf("tag_rule.%d.backfill", ruleID) }

const tagRuleCols = `id, name, enabled, spec, COALESCE(created_by, 0), created_at, updated_at, backfilled_at`

func scanTagRule(sc interface{ Scan(...any) error }) (*tag.Rule, error) {
	var (
		r                tag.Rule
		enabled          int64
		spec             string
		created, updated int64
		backfilled       sql.NullInt64
	)
	if err := sc.Scan(&r.ID, &r.Name, &enabled, &spec, &r.CreatedBy, &created, &updated, &backfilled); err != nil {
		return nil, err
	}
	var sp tag.Spec
	if err := json.Unmarshal([]byte(spec), &sp); err != nil {
		return nil, fmt.Errorf("tag rule %d spec: %w", r.ID, err)
	}
	r.Enabled = enabled != 0
	r.Trigger, r.Actions = sp.Trigger, sp.Actions
	r.CreatedAt, r.UpdatedAt, r.BackfilledAt = fromMS(created), fromMS(updated), nullMS(backfilled)
	return &r, nil
}

// tagRuleSpec validates a rule and returns the spec it is stored as. The checks: the rule's
// own (tag.Rule.Check, with schema for condition trees), then that the tags of its actions
// exist and it adds at most one tag per single-choice group.
func (tx *Tx) tagRuleSpec(r *tag.Rule, schema segment.Schema) ([]byte, error) {
	if err := r.Check(schema); err != nil {
		return nil, err
	}
	if _, err := tx.checkTagSet(r.Actions.Add, r.Actions.Remove, "actions.add", "actions.remove"); err != nil {
		return nil, err
	}
	return json.Marshal(tag.Spec{Trigger: r.Trigger, Actions: r.Actions})
}

func (tx *Tx) bumpTagRules() error {
	_, err := tx.exec(`INSERT INTO settings (key, value) VALUES (?, '1')
		ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(settings.value AS BIGINT) + 1 AS TEXT)`, tagRulesVersionKey)
	if err != nil {
		return fmt.Errorf("bump tag rules version: %w", err)
	}
	return nil
}

// CreateTagRule validates and stores a rule and sets r.ID. schema validates a condition
// trigger's tree (segment.Validate); it may be nil for event rules. Bad input comes back as
// a *customer.FieldError naming the field.
func (s *Store) CreateTagRule(ctx context.Context, r *tag.Rule, schema segment.Schema) error {
	return s.InTx(ctx, func(tx *Tx) error {
		spec, err := tx.tagRuleSpec(r, schema)
		if err != nil {
			return err
		}
		now := tx.Now()
		if err := tx.row(`INSERT INTO tag_rules (name, enabled, spec, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			r.Name, boolInt(r.Enabled), string(spec), nullID(r.CreatedBy), ms(now), ms(now)).Scan(&r.ID); err != nil {
			return fmt.Errorf("create tag rule: %w", err)
		}
		r.CreatedAt, r.UpdatedAt = now, now
		return tx.bumpTagRules()
	})
}

// UpdateTagRule validates and replaces a rule's name, enabled flag, trigger and actions. An
// interrupted back-fill of the rule starts over on its next run.
func (s *Store) UpdateTagRule(ctx context.Context, r *tag.Rule, schema segment.Schema) error {
	return s.InTx(ctx, func(tx *Tx) error {
		old, err := scanTagRule(tx.row(`SELECT `+tagRuleCols+` FROM tag_rules WHERE id = ?`, r.ID))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		spec, err := tx.tagRuleSpec(r, schema)
		if err != nil {
			return err
		}
		now := tx.Now()
		if _, err := tx.exec(`UPDATE tag_rules SET name = ?, enabled = ?, spec = ?, updated_at = ? WHERE id = ?`,
			r.Name, boolInt(r.Enabled), string(spec), ms(now), r.ID); err != nil {
			return fmt.Errorf("update tag rule %d: %w", r.ID, err)
		}
		if _, err := tx.exec(`DELETE FROM settings WHERE key = ?`, backfillKey(r.ID)); err != nil {
			return err
		}
		r.CreatedBy, r.CreatedAt, r.UpdatedAt, r.BackfilledAt = old.CreatedBy, old.CreatedAt, now, old.BackfilledAt
		return tx.bumpTagRules()
	})
}

// DeleteTagRule deletes a rule. The tags it assigned stay (their history says which rule).
func (s *Store) DeleteTagRule(ctx context.Context, id int64) error {
	return s.InTx(ctx, func(tx *Tx) error {
		res, err := tx.exec(`DELETE FROM tag_rules WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("delete tag rule %d: %w", id, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		if _, err := tx.exec(`DELETE FROM settings WHERE key = ?`, backfillKey(id)); err != nil {
			return err
		}
		return tx.bumpTagRules()
	})
}

// TagRule returns one rule.
func (s *Store) TagRule(ctx context.Context, id int64) (*tag.Rule, error) {
	r, err := scanTagRule(s.db.QueryRowContext(ctx, s.q(`SELECT `+tagRuleCols+` FROM tag_rules WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return r, err
}

// TagRules lists every rule, enabled or not, by id.
func (s *Store) TagRules(ctx context.Context) ([]*tag.Rule, error) {
	var out []*tag.Rule
	err := s.InTx(ctx, func(tx *Tx) error {
		var err error
		out, err = tx.TagRules()
		return err
	})
	return out, err
}

// TagRules lists every rule by id, as the transaction sees them.
func (tx *Tx) TagRules() ([]*tag.Rule, error) {
	rows, err := tx.query(`SELECT ` + tagRuleCols + ` FROM tag_rules ORDER BY id`)
	return collect(rows, err, scanTagRule)
}

// TagRulesVersion changes whenever a rule is created, changed or deleted: a runner caches
// the rules and reloads them when the version moves.
func (tx *Tx) TagRulesVersion() (int64, error) {
	var v string
	err := tx.row(`SELECT value FROM settings WHERE key = ?`, tagRulesVersionKey).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// refuseRuleTags refuses to delete tags that a rule adds or removes.
func (tx *Tx) refuseRuleTags(ids []int64) error {
	rules, err := tx.TagRules()
	if err != nil {
		return err
	}
	for _, r := range rules {
		for _, id := range r.Actions.TagIDs() {
			for _, del := range ids {
				if id == del {
					return fmt.Errorf("%w: tag %d is used by tag rule %d (%s): change or delete the rule first", ErrConflict, id, r.ID, r.Name)
				}
			}
		}
	}
	return nil
}

// CountEventsNamed counts the stored events named name after cursor (zero: all), for
// back-fill progress.
func (s *Store) CountEventsNamed(ctx context.Context, name string, after EventCursor) (int64, error) {
	where, args := eventsNamedWhere(name, after)
	var n int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM events WHERE `+where), args...).Scan(&n)
	return n, err
}

// EventsNamed returns up to limit stored events named name in (timestamp, id) order after
// cursor (zero: from the first). Back-fills page through it: the (name, ts) index serves
// each page directly, however many events there are.
func (s *Store) EventsNamed(ctx context.Context, name string, after EventCursor, limit int) ([]*event.Event, error) {
	where, args := eventsNamedWhere(name, after)
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+eventCols+` FROM events WHERE `+where+` ORDER BY ts, id LIMIT ?`), append(args, limit)...)
	if err != nil {
		return nil, fmt.Errorf("events named %q: %w", name, err)
	}
	defer rows.Close()
	var out []*event.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func eventsNamedWhere(name string, after EventCursor) (string, []any) {
	if after.ID == 0 {
		return `name = ?`, []any{name}
	}
	t := ms(after.TS)
	return `name = ? AND ts >= ? AND (ts > ? OR id > ?)`, []any{name, t, t, after.ID}
}

// CustomerEventProps returns the properties of a customer's events named name with a
// timestamp in (from, to] (from zero: no lower bound): how a rule counts "at least N times
// within D days".
func (tx *Tx) CustomerEventProps(customerID int64, name string, from, to time.Time) ([]map[string]any, error) {
	lo := int64(-1 << 62)
	if !from.IsZero() {
		lo = ms(from)
	}
	rows, err := tx.query(`SELECT properties FROM events WHERE customer_id = ? AND ts > ? AND ts <= ? AND name = ?`, customerID, lo, ms(to), name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []map[string]any
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, err
		}
		var p map[string]any
		if err := json.Unmarshal([]byte(raw), &p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// TagRuleBackfillCursor returns where an interrupted back-fill of a rule stopped; ok is
// false when none is under way.
func (s *Store) TagRuleBackfillCursor(ctx context.Context, ruleID int64) (cur EventCursor, ok bool, err error) {
	v, ok, err := s.Setting(ctx, backfillKey(ruleID))
	if err != nil || !ok {
		return cur, false, err
	}
	tsStr, idStr, found := strings.Cut(v, ":")
	ts, err1 := strconv.ParseInt(tsStr, 10, 64)
	id, err2 := strconv.ParseInt(idStr, 10, 64)
	if !found || err1 != nil || err2 != nil {
		return cur, false, nil // unreadable: start over, which is safe
	}
	return EventCursor{TS: fromMS(ts), ID: id}, true, nil
}

// SetTagRuleBackfillCursor records, in the transaction that applied a chunk of a back-fill,
// the last event it covered.
func (tx *Tx) SetTagRuleBackfillCursor(ruleID int64, cur EventCursor) error {
	_, err := tx.exec(`INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
		backfillKey(ruleID), fmt.Sprintf("%d:%d", ms(cur.TS), cur.ID))
	return err
}

// FinishTagRuleBackfill marks a rule back-filled now and forgets its cursor.
func (tx *Tx) FinishTagRuleBackfill(ruleID int64) error {
	res, err := tx.exec(`UPDATE tag_rules SET backfilled_at = ? WHERE id = ?`, ms(tx.Now()), ruleID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	_, err = tx.exec(`DELETE FROM settings WHERE key = ?`, backfillKey(ruleID))
	return err
}
