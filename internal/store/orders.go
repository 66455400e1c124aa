package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
)

// UpsertOrder stores an order, or, when its OrderID exists, updates amount, products and
// payment time (a shop resending a corrected order) while keeping refunds. It reports whether
// the order was new.
func (tx *Tx) UpsertOrder(o *event.Order) (bool, error) {
	if o.OrderID == "" {
		return false, &customer.FieldError{Field: "order_id", Reason: "required"}
	}
	if o.AmountMinor < 0 {
		return false, &customer.FieldError{Field: "total", Reason: "negative amount"}
	}
	products, err := json.Marshal(o.Products)
	if err != nil {
		return false, err
	}
	if o.Products == nil {
		products = []byte("[]")
	}
	now := ms(tx.Now())
	var (
		existing, curCustomer, curAmount, curPaid int64
		curCurrency, curProducts                  string
	)
	err = tx.row(`SELECT id, customer_id, amount_minor, currency, products, paid_at FROM orders WHERE order_id = ?`, o.OrderID).
		Scan(&existing, &curCustomer, &curAmount, &curCurrency, &curProducts, &curPaid)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		status := o.Status
		if status == "" {
			status = event.Paid
		}
		var refundedAt any
		if !o.RefundedAt.IsZero() {
			refundedAt = ms(o.RefundedAt)
		}
		err = tx.row(`INSERT INTO orders (order_id, customer_id, status, amount_minor, refunded_minor, currency, products, paid_at, refunded_at, source, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			o.OrderID, o.CustomerID, status, o.AmountMinor, o.RefundedMinor, o.Currency, string(products), ms(o.PaidAt), refundedAt, o.Source, now, now).Scan(&o.ID)
		if err != nil {
			return false, fmt.Errorf("insert order %s: %w", o.OrderID, err)
		}
		tx.noteCustomer(o.CustomerID)
		return true, nil
	case err != nil:
		return false, err
	}
	o.ID = existing
	if curCustomer == o.CustomerID && curAmount == o.AmountMinor && curCurrency == o.Currency && curPaid == ms(o.PaidAt) && sameJSON(curProducts, products) {
		return false, nil // a resent or re-imported order: nothing to write, updated_at stays
	}
	_, err = tx.exec(`UPDATE orders SET customer_id = ?, amount_minor = ?, currency = ?, products = ?, paid_at = ?, updated_at = ?,
		status = CASE WHEN refunded_minor = 0 THEN 'paid' WHEN refunded_minor >= ? THEN 'refunded' ELSE 'partially_refunded' END
		WHERE id = ?`, o.CustomerID, o.AmountMinor, o.Currency, string(products), ms(o.PaidAt), now, o.AmountMinor, existing)
	tx.noteCustomer(o.CustomerID, curCustomer)
	return false, err
}

// sameJSON reports whether stored JSON (respaced by PostgreSQL's JSONB) and b say the same.
func sameJSON(stored string, b []byte) bool {
	if stored == string(b) {
		return true
	}
	var x, y any
	if json.Unmarshal([]byte(stored), &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

// RefundOrder records a full (AmountMinor 0) or partial refund. Refunds add up and are capped
// at the order amount. An unknown order is a field error.
func (tx *Tx) RefundOrder(r event.Refund) error {
	var id, amount, refunded, cust int64
	err := tx.row(`SELECT id, amount_minor, refunded_minor, customer_id FROM orders WHERE order_id = ?`, r.OrderID).Scan(&id, &amount, &refunded, &cust)
	if errors.Is(err, sql.ErrNoRows) {
		return &customer.FieldError{Field: "properties.order_id", Reason: fmt.Sprintf("no order %q to refund", r.OrderID)}
	}
	if err != nil {
		return err
	}
	if r.AmountMinor < 0 {
		return &customer.FieldError{Field: "properties.total", Reason: "negative refund"}
	}
	add := r.AmountMinor
	if add == 0 {
		add = amount - refunded
	}
	refunded = min(refunded+add, amount)
	status := event.PartiallyRefunded
	if refunded >= amount {
		status = event.Refunded
	}
	at := ms(r.At)
	if at == 0 {
		at = ms(tx.Now())
	}
	_, err = tx.exec(`UPDATE orders SET refunded_minor = ?, status = ?, refunded_at = ?, updated_at = ? WHERE id = ?`, refunded, status, at, ms(tx.Now()), id)
	tx.noteCustomer(cust)
	return err
}

const orderCols = `id, order_id, customer_id, status, amount_minor, refunded_minor, currency, products, paid_at, refunded_at, source`

func scanOrder(sc interface{ Scan(...any) error }) (*event.Order, error) {
	var (
		o        event.Order
		products string
		paid     int64
		refunded sql.NullInt64
	)
	if err := sc.Scan(&o.ID, &o.OrderID, &o.CustomerID, &o.Status, &o.AmountMinor, &o.RefundedMinor, &o.Currency, &products, &paid, &refunded, &o.Source); err != nil {
		return nil, err
	}
	o.PaidAt, o.RefundedAt = fromMS(paid), nullMS(refunded)
	if err := json.Unmarshal([]byte(products), &o.Products); err != nil {
		return nil, fmt.Errorf("order %s products: %w", o.OrderID, err)
	}
	return &o, nil
}

// CustomerOrders lists a customer's orders, newest first.
func (s *Store) CustomerOrders(ctx context.Context, customerID int64, limit int) ([]*event.Order, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+orderCols+` FROM orders WHERE customer_id = ? ORDER BY paid_at DESC, id DESC LIMIT ?`), customerID, limit)
	return collect(rows, err, scanOrder)
}

// Order returns one order by the shop's order id.
func (s *Store) Order(ctx context.Context, orderID string) (*event.Order, error) {
	o, err := scanOrder(s.db.QueryRowContext(ctx, s.q(`SELECT `+orderCols+` FROM orders WHERE order_id = ?`), orderID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return o, err
}
