package store

import (
	"context"
	"fmt"
	"time"

	"github.com/siyu-scrm/siyu/internal/staff"
)

// Amount is a sum of money in one currency.
type Amount struct {
	Currency string `json:"currency"`
	Minor    int64  `json:"minor"`
	Orders   int64  `json:"orders"`
}

// WorkbenchStats are the figures on the console's home page (工作台).
type WorkbenchStats struct {
	Customers       int64    // live (not merged away) customers
	NewThisWeek     int64    // customers created since the week began
	EventsToday     int64    // events whose timestamp is today
	OrdersThisMonth int64    // orders paid this month
	GMVThisMonth    []Amount // net of refunds, one per currency, largest first
}

// Workbench computes the home page figures within a data scope: a limited scope counts only
// its owners' customers and their events and orders. The caller decides where days, weeks and
// months begin (the operators' time zone, Monday-first weeks).
func (s *Store) Workbench(ctx context.Context, sc staff.CustomerScope, dayStart, weekStart, monthStart time.Time) (*WorkbenchStats, error) {
	var st WorkbenchStats
	scope, args := ownersIn("c.owner_id", sc)
	with := func(extra ...any) []any { return append(extra, args...) }
	for _, q := range []struct {
		dst  *int64
		sql  string
		args []any
	}{
		{&st.Customers, `SELECT COUNT(*) FROM customers c WHERE c.merged_into IS NULL` + scope, args},
		{&st.NewThisWeek, `SELECT COUNT(*) FROM customers c WHERE c.created_at >= ? AND c.merged_into IS NULL` + scope, with(ms(weekStart))},
		{&st.EventsToday, eventsToday(sc.All()) + scope, with(ms(dayStart))},
	} {
		if err := s.db.QueryRowContext(ctx, s.q(q.sql), q.args...).Scan(q.dst); err != nil {
			return nil, fmt.Errorf("workbench: %w", err)
		}
	}
	join := ""
	if !sc.All() {
		join = ` JOIN customers c ON c.id = o.customer_id`
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT o.currency, COALESCE(SUM(o.amount_minor - o.refunded_minor), 0), COUNT(*) FROM orders o`+join+
		` WHERE o.paid_at >= ?`+scope+` GROUP BY o.currency ORDER BY 2 DESC, 1`), with(ms(monthStart))...)
	if err != nil {
		return nil, fmt.Errorf("workbench orders: %w", err)
	}
	defer rows.Close()
	st.GMVThisMonth = []Amount{}
	for rows.Next() {
		var a Amount
		if err := rows.Scan(&a.Currency, &a.Minor, &a.Orders); err != nil {
			return nil, err
		}
		st.OrdersThisMonth += a.Orders
		st.GMVThisMonth = append(st.GMVThisMonth, a)
	}
	return &st, rows.Err()
}

func eventsToday(all bool) string {
	if all {
		return `SELECT COUNT(*) FROM events WHERE ts >= ?`
	}
	return `SELECT COUNT(*) FROM events e JOIN customers c ON c.id = e.customer_id WHERE e.ts >= ?`
}

// CountCustomersUpTo counts the customers matching f but stops at limit+1 rows, so a list can
// say "more than 10,000" without scanning a million rows.
func (s *Store) CountCustomersUpTo(ctx context.Context, f CustomerFilter, limit int64) (int64, error) {
	where, args, err := s.customerWhere(&f)
	if err != nil {
		return 0, err
	}
	var n int64
	args = append(args, limit+1)
	err = s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM (SELECT 1 FROM customers WHERE `+where+` LIMIT ?) t`), args...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count customers: %w", err)
	}
	return n, nil
}

// CustomerSources lists up to limit distinct non-empty sources, alphabetically. It walks the
// source index one value at a time (a loose index scan), so its cost grows with the number of
// sources, not of customers.
func (s *Store) CustomerSources(ctx context.Context, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`WITH RECURSIVE src(v, n) AS (
		SELECT MIN(source), 1 FROM customers WHERE source > ''
		UNION ALL
		SELECT (SELECT MIN(source) FROM customers WHERE source > src.v), n + 1 FROM src WHERE src.v IS NOT NULL AND n < ?
	) SELECT v FROM src WHERE v IS NOT NULL`), limit)
	if err != nil {
		return nil, fmt.Errorf("customer sources: %w", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// EventCursor marks a place in time order among events: a timestamp and, among events that
// share it, an id.
type EventCursor struct {
	TS time.Time
	ID int64
}
