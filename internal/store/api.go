package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
)

// This file holds the reads the JSON API needs beyond the customer list: exact keyset pages of
// a customer's events and orders, opt-outs of a whole page at once, and identity ownership.

// timeCursor continues a newest-first list after the row (ts, id): rows sharing a millisecond
// are neither skipped nor repeated at a page boundary.
type timeCursor struct {
	TS int64 `json:"t"`
	ID int64 `json:"i"`
}

func encodeTimeCursor(ts, id int64) string {
	b, _ := json.Marshal(timeCursor{TS: ts, ID: id})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeTimeCursor(s string) (timeCursor, error) {
	var c timeCursor
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(raw, &c)
	}
	if err != nil || c.ID <= 0 {
		return c, &customer.FieldError{Field: "cursor", Reason: "not a cursor from a previous page"}
	}
	return c, nil
}

// TimePage asks for one newest-first page of a customer's events or orders.
type TimePage struct {
	// Before keeps rows strictly older than this time (Unix milliseconds; 0: no bound).
	BeforeMS int64
	// Cursor continues after the last row of a previous page; it wins over BeforeMS.
	Cursor string
	// Limit is the page size, 1 to 1000 (0: 50).
	Limit int
}

func (p *TimePage) where(col string) (string, []any, error) {
	if p.Limit == 0 {
		p.Limit = 50
	}
	if p.Limit < 0 || p.Limit > 1000 {
		return "", nil, &customer.FieldError{Field: "limit", Reason: "between 1 and 1000"}
	}
	if p.Cursor != "" {
		c, err := decodeTimeCursor(p.Cursor)
		if err != nil {
			return "", nil, err
		}
		return fmt.Sprintf(" AND (%s < ? OR (%s = ? AND id < ?))", col, col), []any{c.TS, c.TS, c.ID}, nil
	}
	if p.BeforeMS != 0 {
		return " AND " + col + " < ?", []any{p.BeforeMS}, nil
	}
	return "", nil, nil
}

// EventPage is one page of a customer's timeline.
type EventPage struct {
	Events     []*event.Event `json:"events"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

// CustomerEventPage returns a customer's events newest first, one exact keyset page at a time.
func (s *Store) CustomerEventPage(ctx context.Context, customerID int64, p TimePage) (*EventPage, error) {
	evts, next, err := customerTimePage(ctx, s, `SELECT `+eventCols+` FROM events`, "ts", customerID, p, scanEvent,
		func(e *event.Event) (int64, int64) { return ms(e.Timestamp), e.ID })
	if err != nil {
		return nil, fmt.Errorf("customer %d events: %w", customerID, err)
	}
	return &EventPage{Events: evts, NextCursor: next}, nil
}

// OrderPage is one page of a customer's orders.
type OrderPage struct {
	Orders     []*event.Order `json:"orders"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

// CustomerOrderPage returns a customer's orders by payment time, newest first, one exact keyset
// page at a time.
func (s *Store) CustomerOrderPage(ctx context.Context, customerID int64, p TimePage) (*OrderPage, error) {
	orders, next, err := customerTimePage(ctx, s, `SELECT `+orderCols+` FROM orders`, "paid_at", customerID, p, scanOrder,
		func(o *event.Order) (int64, int64) { return ms(o.PaidAt), o.ID })
	if err != nil {
		return nil, fmt.Errorf("customer %d orders: %w", customerID, err)
	}
	return &OrderPage{Orders: orders, NextCursor: next}, nil
}

// customerTimePage reads one newest-first page of a customer's rows (selectFrom ordered by
// tsCol, then id) and the cursor of the next page, "" on the last.
func customerTimePage[T any](ctx context.Context, s *Store, selectFrom, tsCol string, customerID int64, p TimePage,
	scan func(interface{ Scan(...any) error }) (T, error), key func(T) (ts, id int64)) ([]T, string, error) {
	cond, args, err := p.where(tsCol)
	if err != nil {
		return nil, "", err
	}
	args = append([]any{customerID}, args...)
	args = append(args, p.Limit+1)
	rows, err := s.db.QueryContext(ctx, s.q(selectFrom+` WHERE customer_id = ?`+cond+` ORDER BY `+tsCol+` DESC, id DESC LIMIT ?`), args...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	if len(out) <= p.Limit {
		return out, "", nil
	}
	out = out[:p.Limit]
	return out, encodeTimeCursor(key(out[p.Limit-1])), nil
}

// FillOptOuts sets OptOuts on every customer of a list page with one query (lists do not read
// them row by row).
func (s *Store) FillOptOuts(ctx context.Context, cs []*customer.Customer) error {
	if len(cs) == 0 {
		return nil
	}
	byID := make(map[int64]*customer.Customer, len(cs))
	args := make([]any, 0, len(cs))
	for _, c := range cs {
		c.OptOuts = []string{}
		byID[c.ID] = c
		args = append(args, c.ID)
	}
	in := strings.TrimSuffix(strings.Repeat("?,", len(args)), ",")
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT customer_id, channel FROM customer_optouts WHERE customer_id IN (`+in+`) ORDER BY customer_id, channel`), args...)
	if err != nil {
		return fmt.Errorf("opt-outs: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var ch string
		if err := rows.Scan(&id, &ch); err != nil {
			return err
		}
		if c := byID[id]; c != nil {
			c.OptOuts = append(c.OptOuts, ch)
		}
	}
	return rows.Err()
}

// IdentityOwner returns the customer an identity belongs to, or 0 when it is unknown.
func (tx *Tx) IdentityOwner(id customer.Identity) (int64, error) {
	var cid int64
	err := tx.row(`SELECT customer_id FROM identities WHERE kind = ? AND value = ?`, string(id.Kind), id.Value).Scan(&cid)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("identity %s: %w", id.Kind, err)
	}
	return cid, nil
}

// CheckCustomerCursor reports whether cursor came from a customer list sorted by sortKey, so a
// cursor from another sort (or a forged one) is a field error rather than a failed query.
func CheckCustomerCursor(sortKey, cur string) error {
	if cur == "" {
		return nil
	}
	bad := &customer.FieldError{Field: "cursor", Reason: "not a cursor from a previous page with this sort"}
	raw, err := base64.RawURLEncoding.DecodeString(cur)
	var c cursor
	if err != nil || json.Unmarshal(raw, &c) != nil || c.ID <= 0 {
		return bad
	}
	switch sortCols[sortKey] {
	case "created_at", "last_seen_at":
		if f, ok := c.V.(float64); !ok || f != float64(int64(f)) {
			return bad
		}
	case "name":
		if _, ok := c.V.(string); !ok {
			return bad
		}
	}
	return nil
}
