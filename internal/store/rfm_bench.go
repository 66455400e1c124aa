package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/segment"
)

// What `siyu bench rfm` needs from the store: loading ten million orders fast (COPY on
// PostgreSQL, multi-row INSERTs on SQLite, secondary indexes built once afterwards) and RFM as
// one SQL query with window functions, the reference the Go computation is measured against
// (and held to in the store tests).

// LoadOrders loads n new orders made by next (i from 0): on SQLite in multi-row INSERTs in one
// transaction, on PostgreSQL through COPY; the orders' secondary indexes are dropped first and
// rebuilt in one pass at the end. For benchmarks and big loads into a quiet database: nothing
// is published to subscribers, and on PostgreSQL the three steps are separate transactions.
func (s *Store) LoadOrders(ctx context.Context, n int, next func(i int) *event.Order) error {
	if s.engine != Postgres {
		return s.InTx(ctx, func(tx *Tx) error {
			defs, err := tx.DropIndexes(nil, "orders")
			if err != nil {
				return err
			}
			const batch = 100_000
			buf := make([]*event.Order, 0, batch)
			for i := 0; i < n; i++ {
				buf = append(buf, next(i))
				if len(buf) == batch || i == n-1 {
					if err := tx.insertOrderRows(buf); err != nil {
						return err
					}
					buf = buf[:0]
				}
			}
			return tx.CreateIndexes(defs)
		})
	}
	var defs []string
	err := s.InTx(ctx, func(tx *Tx) error {
		var err error
		defs, err = tx.DropIndexes(nil, "orders")
		return err
	})
	if err != nil {
		return err
	}
	cols := []string{"order_id", "customer_id", "status", "amount_minor", "refunded_minor", "currency", "products", "paid_at", "refunded_at", "source", "created_at", "updated_at"}
	err = s.rawPG(ctx, func(c *pgx.Conn) error {
		i := 0
		_, err := c.CopyFrom(ctx, pgx.Identifier{"orders"}, cols, pgx.CopyFromFunc(func() ([]any, error) {
			if i == n {
				return nil, nil
			}
			o := next(i)
			i++
			return orderRow(o, nil)
		}))
		return err
	})
	if err != nil {
		return fmt.Errorf("copy orders: %w", err)
	}
	return s.InTx(ctx, func(tx *Tx) error {
		if err := tx.CreateIndexes(defs); err != nil {
			return err
		}
		_, err := tx.exec(`ANALYZE orders`)
		return err
	})
}

// insertOrderRows inserts orders (SQLite) without noting customers.
func (tx *Tx) insertOrderRows(orders []*event.Order) error {
	cols := []string{"order_id", "customer_id", "status", "amount_minor", "refunded_minor", "currency", "products", "paid_at", "refunded_at", "source", "created_at", "updated_at"}
	return tx.insertRows("orders", cols, len(orders), func(i int, args []any) ([]any, error) {
		return orderRow(orders[i], args)
	})
}

// orderRow appends an order's column values, as BulkInsertOrders writes them.
func orderRow(o *event.Order, args []any) ([]any, error) {
	products := "[]"
	if len(o.Products) > 0 {
		b, err := json.Marshal(o.Products)
		if err != nil {
			return nil, fmt.Errorf("order %s products: %w", o.OrderID, err)
		}
		products = string(b)
	}
	status := o.Status
	if status == "" {
		status = event.Paid
	}
	var refundedAt any
	updated := ms(o.PaidAt)
	if !o.RefundedAt.IsZero() {
		refundedAt = ms(o.RefundedAt)
		updated = ms(o.RefundedAt)
	}
	return append(args, o.OrderID, o.CustomerID, string(status), o.AmountMinor, o.RefundedMinor, o.Currency, products, ms(o.PaidAt), refundedAt, o.Source, ms(o.PaidAt), updated), nil
}

// rawPG runs fn on a PostgreSQL connection of the pool, as pgx sees it (for COPY).
func (s *Store) rawPG(ctx context.Context, fn func(*pgx.Conn) error) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return driver.ErrBadConn
		}
		return fn(c.Conn())
	})
}

// RFMReferenceSQL is RFM as one query with window functions (PostgreSQL), written from the
// rule in docs/models.md and independent of the Go code: R counts whole days in UTC+8, scores
// come from RANK() (ties get the rank of the first of their group), classes from the cut. It
// returns customer_id, r, f, m_minor, r_score, f_score, m_score, class per buyer. Quantile
// scoring only.
func RFMReferenceSQL(cfg model.RFMConfig, asOf segment.Day) string {
	q := cfg.Quantiles
	scoreSQL := func(w string) string {
		return fmt.Sprintf(`1 + CASE WHEN 100*%[1]s >= %[2]d*n THEN 1 ELSE 0 END + CASE WHEN 100*%[1]s >= %[3]d*n THEN 1 ELSE 0 END
			+ CASE WHEN 100*%[1]s >= %[4]d*n THEN 1 ELSE 0 END + CASE WHEN 100*%[1]s >= %[5]d*n THEN 1 ELSE 0 END`, w, q[0], q[1], q[2], q[3])
	}
	high := func(sc, sum string) string {
		if cfg.Cut.Mode == model.CutScore {
			return fmt.Sprintf("CASE WHEN %s >= %d THEN 1 ELSE 0 END", sc, cfg.Cut.Score)
		}
		return fmt.Sprintf("CASE WHEN %s*n > %s THEN 1 ELSE 0 END", sc, sum)
	}
	return `WITH agg AS (
		SELECT customer_id, ` + fmt.Sprint(int(asOf)) + ` - MAX((paid_at + 28800000) / 86400000) AS r, COUNT(*) AS f, SUM(amount_minor - refunded_minor) AS m
		FROM orders WHERE status IN ('paid', 'partially_refunded')
		AND (paid_at + 28800000) / 86400000 BETWEEN ` + fmt.Sprint(int(asOf)-cfg.WindowDays+1) + ` AND ` + fmt.Sprint(int(asOf)) + `
		GROUP BY customer_id
	), ranked AS (
		SELECT customer_id, r, f, m, COUNT(*) OVER () AS n,
			RANK() OVER (ORDER BY r DESC) - 1 AS wr, RANK() OVER (ORDER BY f) - 1 AS wf, RANK() OVER (ORDER BY m) - 1 AS wm
		FROM agg
	), scored AS (
		SELECT customer_id, r, f, m, n, ` + scoreSQL("wr") + ` AS rs, ` + scoreSQL("wf") + ` AS fs, ` + scoreSQL("wm") + ` AS ms FROM ranked
	), summed AS (
		SELECT scored.*, SUM(rs) OVER () AS sr, SUM(fs) OVER () AS sf, SUM(ms) OVER () AS sm FROM scored
	), coded AS (
		SELECT summed.*, 100*(` + high("ms", "sm") + `) + 10*(` + high("rs", "sr") + `) + (` + high("fs", "sf") + `) AS code FROM summed
	)
	SELECT customer_id, r, f, m, rs, fs, ms, CASE code
		WHEN 111 THEN '重要价值客户' WHEN 110 THEN '重要发展客户' WHEN 101 THEN '重要保持客户' WHEN 100 THEN '重要挽留客户'
		WHEN 11 THEN '一般价值客户' WHEN 10 THEN '一般发展客户' WHEN 1 THEN '一般保持客户' ELSE '一般挽留客户' END
	FROM coded`
}

// RFMReference runs RFMReferenceSQL (as RFMAggregates runs its query: JIT off on PostgreSQL)
// and calls fn per buyer.
func (s *Store) RFMReference(ctx context.Context, cfg model.RFMConfig, asOf segment.Day, fn func(model.Score)) error {
	err := s.queryAggregate(ctx, RFMReferenceSQL(cfg, asOf), nil, func(rows *sql.Rows) error {
		sc, err := scanScore(rows)
		if err != nil {
			return err
		}
		fn(*sc)
		return nil
	})
	if err != nil {
		return fmt.Errorf("rfm reference: %w", err)
	}
	return nil
}

// insertRFMRows writes a run's rows: on PostgreSQL as arrays unnested, 100,000 rows a
// statement (a million rows in seconds, where multi-row VALUES took twenty), on SQLite in
// multi-row INSERTs, its fast path.
func (tx *Tx) insertRFMRows(runID int64, scores []model.Score) error {
	if tx.s.engine != Postgres {
		cols := []string{"run_id", "customer_id", "r", "f", "m_minor", "r_score", "f_score", "m_score", "class"}
		return tx.insertRows("customer_rfm", cols, len(scores), func(i int, args []any) ([]any, error) {
			sc := &scores[i]
			return append(args, runID, sc.CustomerID, sc.R, sc.F, sc.M, int64(sc.RScore), int64(sc.FScore), int64(sc.MScore), string(sc.Class)), nil
		})
	}
	const chunk = 100_000
	for start := 0; start < len(scores); start += chunk {
		part := scores[start:min(start+chunk, len(scores))]
		var cols [7][]int64
		for i := range cols {
			cols[i] = make([]int64, len(part))
		}
		classes := make([]string, len(part))
		for i, sc := range part {
			cols[0][i], cols[1][i], cols[2][i], cols[3][i] = sc.CustomerID, sc.R, sc.F, sc.M
			cols[4][i], cols[5][i], cols[6][i] = int64(sc.RScore), int64(sc.FScore), int64(sc.MScore)
			classes[i] = string(sc.Class)
		}
		if _, err := tx.exec(`INSERT INTO customer_rfm (run_id, customer_id, r, f, m_minor, r_score, f_score, m_score, class)
			SELECT CAST(? AS BIGINT), c, r, f, m, rs, fs, ms, cl FROM unnest(CAST(? AS BIGINT[]), CAST(? AS BIGINT[]), CAST(? AS BIGINT[]),
			CAST(? AS BIGINT[]), CAST(? AS BIGINT[]), CAST(? AS BIGINT[]), CAST(? AS BIGINT[]), CAST(? AS TEXT[])) AS v(c, r, f, m, rs, fs, ms, cl)`,
			runID, cols[0], cols[1], cols[2], cols[3], cols[4], cols[5], cols[6], classes); err != nil {
			return fmt.Errorf("insert rfm rows: %w", err)
		}
	}
	return nil
}

// queryAggregate runs a big read-only aggregate (RFM over millions of orders) and calls fn per
// row. On PostgreSQL it runs in a read-only transaction with JIT off: compiling its expressions
// took 1.7 s of a 6.9 s GROUP BY over ten million orders, more than it saved.
func (s *Store) queryAggregate(ctx context.Context, query string, args []any, fn func(*sql.Rows) error) error {
	each := func(rows *sql.Rows) error {
		defer rows.Close()
		for rows.Next() {
			if err := fn(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	if s.engine != Postgres {
		rows, err := s.db.QueryContext(ctx, s.q(query), args...)
		if err != nil {
			return err
		}
		return each(rows)
	}
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SET LOCAL jit = off`); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return err
	}
	if err := each(rows); err != nil {
		return err
	}
	return tx.Commit()
}

// rfmAggregatesSQLite is RFMAggregates on SQLite: SQLite runs a query on one core, so the
// customers are split into id ranges that GOMAXPROCS workers aggregate at once on separate
// connections (WAL readers do not block each other), each range a seek into the covering
// orders_customer_paid and a streaming GROUP BY. There are four ranges per worker, taken from
// a queue, because buyers are not spread evenly over ids; the ranges' rows are joined in
// customer order.
func (s *Store) rfmAggregatesSQLite(ctx context.Context, from, to time.Time, loc *time.Location) ([]model.Aggregate, error) {
	var lo, hi int64
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MIN(customer_id), 0), COALESCE(MAX(customer_id), -1) FROM orders INDEXED BY orders_customer_paid`).Scan(&lo, &hi); err != nil {
		return nil, err
	}
	workers := max(1, min(runtime.GOMAXPROCS(0), 8))
	parts := int64(4 * workers)
	if hi-lo < 100 { // tiny: one range (the store tests use a few hundred customers, so several)
		parts = 1
	}
	out := make([][]model.Aggregate, parts)
	errs := make([]error, parts)
	queue := make(chan int64, parts)
	for p := range parts {
		queue <- p
	}
	close(queue)
	width := (hi - lo + parts) / parts
	one := func(p int64) error {
		a, b := lo+p*width, min(lo+(p+1)*width-1, hi)
		rows, err := s.db.QueryContext(ctx, `SELECT customer_id, MAX(paid_at), COUNT(*), SUM(amount_minor - refunded_minor)
			FROM orders INDEXED BY orders_customer_paid WHERE customer_id BETWEEN ? AND ? AND paid_at >= ? AND paid_at < ? AND status <> 'refunded'
			GROUP BY customer_id`, a, b, ms(from), ms(to))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var g model.Aggregate
			var last int64
			if err := rows.Scan(&g.CustomerID, &last, &g.Orders, &g.NetMinor); err != nil {
				return err
			}
			g.LastPaid = segment.DayOf(time.UnixMilli(last), loc)
			out[p] = append(out[p], g)
		}
		return rows.Err()
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range queue {
				errs[p] = one(p)
			}
		}()
	}
	wg.Wait()
	n := 0
	for p := range parts {
		if errs[p] != nil {
			return nil, fmt.Errorf("rfm aggregate: %w", errs[p])
		}
		n += len(out[p])
	}
	all := make([]model.Aggregate, 0, n)
	for _, part := range out {
		all = append(all, part...)
	}
	return all, nil
}
