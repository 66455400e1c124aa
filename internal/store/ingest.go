package store

import (
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
)

// The methods in this file serve the ingestion API (internal/ingest): bulk look-ups that let
// it skip work for retried messages and already-known identities, savepoints that keep one bad
// message from rolling back the rest of a batch, and a batched last-seen update.

var savepointRe = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,30}$`)

// Savepoint starts a savepoint: RollbackTo undoes what the transaction wrote after it, Release
// keeps it. Both engines support nested savepoints. name must be a plain lower-case identifier.
func (tx *Tx) Savepoint(name string) error {
	if !savepointRe.MatchString(name) {
		return fmt.Errorf("savepoint: bad name %q", name)
	}
	_, err := tx.exec(`SAVEPOINT ` + name)
	if err == nil {
		tx.mark(name)
	}
	return err
}

// RollbackTo undoes the writes made since Savepoint(name) and ends the savepoint.
func (tx *Tx) RollbackTo(name string) error {
	if !savepointRe.MatchString(name) {
		return fmt.Errorf("savepoint: bad name %q", name)
	}
	if _, err := tx.exec(`ROLLBACK TO SAVEPOINT ` + name); err != nil {
		return err
	}
	_, err := tx.exec(`RELEASE SAVEPOINT ` + name)
	if err == nil {
		tx.attrDefs = nil // definitions made after the savepoint are gone
		tx.rewind(name)
	}
	return err
}

// Release ends a savepoint, keeping its writes (they still commit or roll back with the
// transaction).
func (tx *Tx) Release(name string) error {
	if !savepointRe.MatchString(name) {
		return fmt.Errorf("savepoint: bad name %q", name)
	}
	_, err := tx.exec(`RELEASE SAVEPOINT ` + name)
	return err
}

// inChunk bounds the number of parameters of one IN list (SQLite allows 32766, PostgreSQL 65535).
const inChunk = 500

// KnownMessageIDs reports which of ids are already stored as events: a batch retried after a
// lost response is recognised with one query instead of one per message.
func (tx *Tx) KnownMessageIDs(ids []string) (map[string]bool, error) {
	known := map[string]bool{}
	for start := 0; start < len(ids); start += inChunk {
		part := ids[start:min(start+inChunk, len(ids))]
		args := make([]any, len(part))
		for i, id := range part {
			args[i] = id
		}
		rows, err := tx.query(`SELECT message_id FROM events WHERE message_id IN (`+strings.TrimSuffix(strings.Repeat("?,", len(part)), ",")+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("known message ids: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, err
			}
			known[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return known, nil
}

// IdentityOwners returns the customer of each identity in ids that is known; unknown
// identities are absent from the map.
func (tx *Tx) IdentityOwners(ids []customer.Identity) (map[customer.Identity]int64, error) {
	want := make(map[customer.Identity]bool, len(ids))
	values := make([]string, 0, len(ids))
	seenValue := map[string]bool{}
	for _, id := range ids {
		want[id] = true
		if !seenValue[id.Value] {
			seenValue[id.Value] = true
			values = append(values, id.Value)
		}
	}
	out := make(map[customer.Identity]int64, len(ids))
	for start := 0; start < len(values); start += inChunk {
		part := values[start:min(start+inChunk, len(values))]
		args := make([]any, len(part))
		for i, v := range part {
			args[i] = v
		}
		rows, err := tx.query(`SELECT kind, value, customer_id FROM identities WHERE value IN (`+strings.TrimSuffix(strings.Repeat("?,", len(part)), ",")+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("identity owners: %w", err)
		}
		for rows.Next() {
			var (
				id  customer.Identity
				cid int64
			)
			if err := rows.Scan(&id.Kind, &id.Value, &cid); err != nil {
				rows.Close()
				return nil, err
			}
			if want[id] {
				out[id] = cid
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// OrderCurrency returns the currency of a stored order; ok is false when the order is unknown.
func (tx *Tx) OrderCurrency(orderID string) (currency string, ok bool, err error) {
	err = tx.row(`SELECT currency FROM orders WHERE order_id = ?`, orderID).Scan(&currency)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	return currency, err == nil, err
}

// TouchLastSeenMany moves the last-seen time of many customers forward in one statement per
// 400 customers (TouchLastSeen, batched). It keeps last-seen to the minute: a time less than a
// minute after the stored one writes nothing, so that an active customer's events do not
// rewrite the customer row with each batch.
func (tx *Tx) TouchLastSeenMany(seen map[int64]time.Time) error {
	if len(seen) == 0 {
		return nil
	}
	const chunk = 400
	ids := make([]int64, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	for start := 0; start < len(ids); start += chunk {
		part := ids[start:min(start+chunk, len(ids))]
		args := make([]any, 0, 2*len(part))
		for _, id := range part {
			args = append(args, id, ms(seen[id]))
		}
		vals := strings.TrimSuffix(strings.Repeat("(CAST(? AS BIGINT), CAST(? AS BIGINT)),", len(part)), ",")
		if _, err := tx.exec(`WITH v(id, ts) AS (VALUES `+vals+`)
			UPDATE customers SET last_seen_at = v.ts FROM v WHERE customers.id = v.id AND customers.last_seen_at < v.ts - 60000`, args...); err != nil {
			return fmt.Errorf("touch last seen: %w", err)
		}
	}
	return nil
}
