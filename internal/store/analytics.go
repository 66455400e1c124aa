package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/analytics"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/staff"
)

// Analytics aggregates (analytics.Source): one GROUP BY query per figure, each a range scan of
// an existing index — customers_created for new customers and cohorts, events_ts for active
// customers, orders_paid (orders_customer_paid for "first order ever") for orders, and
// events_name_ts plus events_customer_name_ts for funnels. The customers table is joined only
// when a report is scoped to an owner or split by a customer field.

// paidOrderSQL is the condition that makes an order count as paid: not fully refunded (zero
// amounts count), as in the RFM and lifecycle models.
const paidOrderSQL = `status <> 'refunded'`

// analyticsScope is the SQL form of an analytics.Scope over a table whose customer id column
// is col: the join to customers (when needed), extra conditions and their arguments, and the
// group expression.
type analyticsScope struct {
	join, where, key string
	args             []any
}

// scopeSQL builds the scope of a query. onCustomers says that the query reads customers c
// itself, so no join is needed.
func (s *Store) scopeSQL(sc analytics.Scope, col string, onCustomers bool) (analyticsScope, error) {
	out := analyticsScope{key: `CAST('' AS TEXT)`}
	needJoin := sc.Owner != 0 || sc.OwnersOnly || sc.By != ""
	switch sc.By {
	case "":
	case "source", "gender", "region":
		out.key = "c." + sc.By
	case "owner":
		out.key = `COALESCE(CAST(c.owner_id AS TEXT), '')`
	default:
		return out, &customer.FieldError{Field: "by", Reason: "must be one of " + strings.Join(analytics.GroupFields, ", ")}
	}
	if needJoin && !onCustomers {
		out.join = ` JOIN customers c ON c.id = ` + col
	}
	var w strings.Builder
	switch {
	case sc.Owner < 0:
		w.WriteString(` AND 1 = 0`)
	case sc.Owner > 0:
		w.WriteString(` AND c.owner_id = ?`)
		out.args = append(out.args, sc.Owner)
	}
	if sc.OwnersOnly {
		cond, in := ownersIn("c.owner_id", staff.CustomerScope{Limited: true, Owners: sc.Owners})
		w.WriteString(cond)
		out.args = append(out.args, in...)
	}
	if sc.Customers != nil {
		ids := make([]string, len(sc.Customers))
		for i, id := range sc.Customers {
			ids[i] = strconv.FormatInt(id, 10)
		}
		// One argument however many members: a JSON array (SQLite) or an array literal.
		if s.engine == Postgres {
			w.WriteString(` AND ` + col + ` = ANY(CAST(? AS BIGINT[]))`)
			out.args = append(out.args, "{"+strings.Join(ids, ",")+"}")
		} else {
			w.WriteString(` AND ` + col + ` IN (SELECT value FROM json_each(?))`)
			out.args = append(out.args, "["+strings.Join(ids, ",")+"]")
		}
	}
	out.where = w.String()
	return out, nil
}

// AnalyticsCounts implements analytics.Source: every tally of [from, to) per group.
func (s *Store) AnalyticsCounts(ctx context.Context, sc analytics.Scope, from, to time.Time) (map[string]*analytics.Counts, error) {
	out := map[string]*analytics.Counts{}
	get := func(k string) *analytics.Counts {
		if out[k] == nil {
			out[k] = &analytics.Counts{}
		}
		return out[k]
	}
	f, t := ms(from), ms(to)

	// New customers, with the first paid order of each (before the period ended).
	cs, err := s.scopeSQL(sc, "c.id", true)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+cs.key+`, c.created_at,
		(SELECT MIN(o.paid_at) FROM orders o WHERE o.customer_id = c.id AND o.`+paidOrderSQL+` AND o.paid_at < ?)
		FROM customers c WHERE c.merged_into IS NULL AND c.created_at >= ? AND c.created_at < ?`+cs.where),
		append([]any{t, f, t}, cs.args...)...)
	if err != nil {
		return nil, fmt.Errorf("new customers: %w", err)
	}
	for rows.Next() {
		var (
			k       string
			created int64
			first   sql.NullInt64
		)
		if err := rows.Scan(&k, &created, &first); err != nil {
			rows.Close()
			return nil, err
		}
		c := get(k)
		c.NewCustomers++
		if first.Valid {
			c.Converted++
			c.DaysToFirstOrder = append(c.DaysToFirstOrder, float64(max(first.Int64-created, 0))/86400000)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}

	// Active customers.
	es, err := s.scopeSQL(sc, "e.customer_id", false)
	if err != nil {
		return nil, err
	}
	err = s.analyticsRows(ctx, `SELECT `+es.key+`, COUNT(DISTINCT e.customer_id) FROM events e`+es.join+
		` WHERE e.ts >= ? AND e.ts < ?`+es.where+` GROUP BY 1`, append([]any{f, t}, es.args...), func(sc rowScanner) error {
		var k string
		var n int64
		if err := sc.Scan(&k, &n); err != nil {
			return err
		}
		get(k).Active = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("active customers: %w", err)
	}

	// Buyers, first-time and repeat buyers, orders and GMV: per customer, then per group.
	ords, err := s.scopeSQL(sc, "o.customer_id", false)
	if err != nil {
		return nil, err
	}
	err = s.analyticsRows(ctx, `SELECT k,
		CAST(SUM(CASE WHEN n > 0 THEN 1 ELSE 0 END) AS BIGINT),
		CAST(SUM(CASE WHEN n > 0 AND NOT EXISTS (SELECT 1 FROM orders p WHERE p.customer_id = t.cid AND p.`+paidOrderSQL+` AND p.paid_at < ?) THEN 1 ELSE 0 END) AS BIGINT),
		CAST(SUM(CASE WHEN n > 1 THEN 1 ELSE 0 END) AS BIGINT),
		CAST(SUM(n) AS BIGINT), CAST(SUM(gmv) AS BIGINT)
		FROM (SELECT `+ords.key+` AS k, o.customer_id AS cid,
			SUM(CASE WHEN o.`+paidOrderSQL+` THEN 1 ELSE 0 END) AS n, SUM(o.amount_minor - o.refunded_minor) AS gmv
			FROM orders o`+ords.join+` WHERE o.paid_at >= ? AND o.paid_at < ?`+ords.where+` GROUP BY 1, 2) t
		GROUP BY k`, append([]any{f, f, t}, ords.args...), func(sc rowScanner) error {
		var k string
		var c analytics.Counts
		if err := sc.Scan(&k, &c.Buyers, &c.FirstTimeBuyers, &c.RepeatBuyers, &c.Orders, &c.GMVMinor); err != nil {
			return err
		}
		g := get(k)
		g.Buyers, g.FirstTimeBuyers, g.RepeatBuyers, g.Orders, g.GMVMinor = c.Buyers, c.FirstTimeBuyers, c.RepeatBuyers, c.Orders, c.GMVMinor
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("buyers: %w", err)
	}
	return out, nil
}

// rowScanner is a row to scan (the analytics queries).
type rowScanner interface{ Scan(...any) error }

// analyticsRows runs a query and calls fn for each row.
func (s *Store) analyticsRows(ctx context.Context, query string, args []any, fn func(rowScanner) error) error {
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// bucketSQL is a CASE expression giving the index of the bucket x falls in, for x at or after
// edges[0]: arguments are the bucket ends edges[1:].
func bucketSQL(x string, edges []time.Time) (string, []any) {
	var b strings.Builder
	args := make([]any, 0, len(edges)-1)
	b.WriteString("CASE")
	for i, e := range edges[1:] {
		b.WriteString(" WHEN " + x + " < ? THEN " + strconv.Itoa(i))
		args = append(args, ms(e))
	}
	b.WriteString(" ELSE " + strconv.Itoa(len(edges)-1) + " END")
	return b.String(), args
}

// CohortCounts implements analytics.Source: the size of each of the first cohorts buckets
// (customers created in it) and, per bucket from its own to the last, how many of them were
// active (any event) or bought (a paid order paid in the bucket).
func (s *Store) CohortCounts(ctx context.Context, sc analytics.Scope, edges []time.Time, cohorts int, m analytics.CohortMetric) ([]analytics.CohortCount, error) {
	if len(edges) < 2 || cohorts < 1 || cohorts > len(edges)-1 {
		return []analytics.CohortCount{}, nil
	}
	cs, err := s.scopeSQL(sc, "c.id", true)
	if err != nil {
		return nil, err
	}
	first, acquired, end := ms(edges[0]), ms(edges[cohorts]), ms(edges[len(edges)-1])
	cohort, cargs := bucketSQL("c.created_at", edges[:cohorts+1])
	out := []analytics.CohortCount{}
	scan := func(bucket bool) func(rowScanner) error {
		return func(sc rowScanner) error {
			c := analytics.CohortCount{Bucket: -1}
			dst := []any{&c.Group, &c.Cohort}
			if bucket {
				dst = append(dst, &c.Bucket)
			}
			if err := sc.Scan(append(dst, &c.Customers)...); err != nil {
				return err
			}
			out = append(out, c)
			return nil
		}
	}
	args := append(append(cargs, first, acquired), cs.args...)
	err = s.analyticsRows(ctx, `SELECT `+cs.key+`, `+cohort+`, COUNT(*) FROM customers c
		WHERE c.merged_into IS NULL AND c.created_at >= ? AND c.created_at < ?`+cs.where+` GROUP BY 1, 2`, args, scan(false))
	if err != nil {
		return nil, fmt.Errorf("cohort sizes: %w", err)
	}
	var join, at string
	switch m {
	case analytics.Retention:
		join, at = ` JOIN events x ON x.customer_id = c.id`, "x.ts"
	case analytics.Repurchase:
		join, at = ` JOIN orders x ON x.customer_id = c.id AND x.`+paidOrderSQL, "x.paid_at"
	default:
		return nil, &customer.FieldError{Field: "metric", Reason: "must be retention or repurchase"}
	}
	bucket, bargs := bucketSQL(at, edges)
	args = append(append(append(append([]any{}, cargs...), bargs...), first, acquired, first, end), cs.args...)
	err = s.analyticsRows(ctx, `SELECT k, co, b, COUNT(DISTINCT cid) FROM (
		SELECT `+cs.key+` AS k, c.id AS cid, `+cohort+` AS co, `+bucket+` AS b FROM customers c`+join+`
		WHERE c.merged_into IS NULL AND c.created_at >= ? AND c.created_at < ? AND `+at+` >= ? AND `+at+` < ?`+cs.where+`) t
		WHERE b >= co GROUP BY k, co, b`, args, scan(true))
	if err != nil {
		return nil, fmt.Errorf("cohort %s: %w", m, err)
	}
	return out, nil
}

// FunnelEvents implements analytics.Source: the events named in names of the customers who
// did first in [from, to), timestamped in [from, until), by customer, time and id.
func (s *Store) FunnelEvents(ctx context.Context, sc analytics.Scope, names []string, first string, from, to, until time.Time, fn func(customerID int64, group string, ev analytics.FunnelEvent) error) error {
	es, err := s.scopeSQL(sc, "e.customer_id", false)
	if err != nil {
		return err
	}
	args := make([]any, 0, len(names)+5+len(es.args))
	for _, n := range names {
		args = append(args, n)
	}
	args = append(append(args, ms(from), ms(until), first, ms(from), ms(to)), es.args...)
	err = s.analyticsRows(ctx, `SELECT e.customer_id, `+es.key+`, e.name, e.ts FROM events e`+es.join+`
		WHERE e.name IN (`+strings.TrimSuffix(strings.Repeat("?,", len(names)), ",")+`) AND e.ts >= ? AND e.ts < ?
		AND e.customer_id IN (SELECT f.customer_id FROM events f WHERE f.name = ? AND f.ts >= ? AND f.ts < ?)`+es.where+`
		ORDER BY e.customer_id, e.ts, e.id`, args, func(sc rowScanner) error {
		var (
			id int64
			g  string
			ev analytics.FunnelEvent
		)
		if err := sc.Scan(&id, &g, &ev.Name, &ev.At); err != nil {
			return err
		}
		return fn(id, g, ev)
	})
	if err != nil {
		return fmt.Errorf("funnel events: %w", err)
	}
	return nil
}
