package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/siyu-scrm/siyu/internal/event"
)

// InsertEvents stores events, skipping any whose MessageID is already stored (a retry), and
// reports which were new. Events go in multi-row statements: this is the ingestion hot path.
func (tx *Tx) InsertEvents(evts []*event.Event) ([]bool, error) {
	inserted := make([]bool, len(evts))
	const chunk = 200
	now := ms(tx.Now())
	for start := 0; start < len(evts); start += chunk {
		part := evts[start:min(start+chunk, len(evts))]
		args := make([]any, 0, len(part)*8)
		for _, e := range part {
			props, err := marshalObject(e.Properties)
			if err != nil {
				return nil, fmt.Errorf("event %s properties: %w", e.MessageID, err)
			}
			ctxJSON, err := marshalObject(e.Context)
			if err != nil {
				return nil, fmt.Errorf("event %s context: %w", e.MessageID, err)
			}
			recv := ms(e.ReceivedAt)
			if recv == 0 {
				recv = now
			}
			args = append(args, e.MessageID, e.CustomerID, e.Type, e.Name, props, ctxJSON, ms(e.Timestamp), recv)
		}
		q := tx.s.q(`INSERT INTO events (message_id, customer_id, type, name, properties, context, ts, received_at) VALUES ` +
			placeholders(len(part), 8) + ` ON CONFLICT (message_id) DO NOTHING RETURNING message_id, id`)
		var rows *sql.Rows
		var err error
		if len(part) == chunk || len(part)%50 == 0 { // the common sizes: prepared once per connection
			stmt, perr := tx.s.prepared(tx.ctx, q)
			if perr != nil {
				return nil, fmt.Errorf("insert events: %w", perr)
			}
			rows, err = tx.tx.StmtContext(tx.ctx, stmt).QueryContext(tx.ctx, args...)
		} else {
			rows, err = tx.tx.QueryContext(tx.ctx, q, args...)
		}
		if err != nil {
			return nil, fmt.Errorf("insert events: %w", err)
		}
		got := map[string]int64{}
		for rows.Next() {
			var mid string
			var id int64
			if err := rows.Scan(&mid, &id); err != nil {
				rows.Close()
				return nil, err
			}
			got[mid] = id
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		for i, e := range part {
			if id, ok := got[e.MessageID]; ok {
				inserted[start+i] = true
				e.ID = id
				tx.noteEvent(EventChange{ID: id, CustomerID: e.CustomerID, Name: e.Name, At: e.Timestamp})
				delete(got, e.MessageID) // a message id twice in one call counts once
			}
		}
	}
	return inserted, nil
}

func marshalObject(m map[string]any) (string, error) {
	if len(m) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(m)
	return string(b), err
}

const eventCols = `id, message_id, customer_id, type, name, properties, context, ts, received_at`

func scanEvent(sc interface{ Scan(...any) error }) (*event.Event, error) {
	var (
		e             event.Event
		props, ctxStr string
		ts, recv      int64
	)
	if err := sc.Scan(&e.ID, &e.MessageID, &e.CustomerID, &e.Type, &e.Name, &props, &ctxStr, &ts, &recv); err != nil {
		return nil, err
	}
	e.Timestamp, e.ReceivedAt = fromMS(ts), fromMS(recv)
	if err := json.Unmarshal([]byte(props), &e.Properties); err != nil {
		return nil, fmt.Errorf("event %d properties: %w", e.ID, err)
	}
	if ctxStr != "{}" && ctxStr != "" {
		if err := json.Unmarshal([]byte(ctxStr), &e.Context); err != nil {
			return nil, fmt.Errorf("event %d context: %w", e.ID, err)
		}
	}
	return &e, nil
}

// CustomerEvents returns a customer's events, newest first, older than before (zero: now),
// at most limit.
func (s *Store) CustomerEvents(ctx context.Context, customerID int64, before time.Time, limit int) ([]*event.Event, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	b := ms(before)
	if b == 0 {
		b = 1<<62 - 1
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+eventCols+` FROM events WHERE customer_id = ? AND ts < ? ORDER BY ts DESC, id DESC LIMIT ?`), customerID, b, limit)
	return collect(rows, err, scanEvent)
}

// EventByMessageID returns one stored event.
func (s *Store) EventByMessageID(ctx context.Context, messageID string) (*event.Event, error) {
	e, err := scanEvent(s.db.QueryRowContext(ctx, s.q(`SELECT `+eventCols+` FROM events WHERE message_id = ?`), messageID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return e, err
}

// CountEvents counts stored events.
func (s *Store) CountEvents(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM events`).Scan(&n)
	return n, err
}
