package store

import (
	"context"
	"fmt"
	"strings"

	"github.com/siyu-scrm/siyu/internal/customer"
)

// The methods in this file feed the audience engine (package audience): streaming scans of
// everything it keeps in memory, for a rebuild, and look-ups of a few customers, for a refresh.

// ScanCustomers calls fn for every customer, merged ones included, in id order.
func (s *Store) ScanCustomers(ctx context.Context, fn func(*customer.Customer) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT `+customerCols+` FROM customers ORDER BY id`)
	if err != nil {
		return fmt.Errorf("scan customers: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		c, err := scanCustomer(rows)
		if err != nil {
			return err
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	return rows.Err()
}

// CustomersByID returns the customers with the given ids (missing ids are skipped).
func (s *Store) CustomersByID(ctx context.Context, ids []int64) ([]*customer.Customer, error) {
	var out []*customer.Customer
	for start := 0; start < len(ids); start += inChunk {
		part := ids[start:min(start+inChunk, len(ids))]
		rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+customerCols+` FROM customers WHERE id IN (`+strings.TrimSuffix(strings.Repeat("?,", len(part)), ",")+`)`), int64Args(part)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			c, err := scanCustomer(rows)
			if err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func int64Args(ids []int64) []any {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return args
}

// scanPairs runs a two-column query and calls fn per row; customers restricts it to some
// customers (nil: all).
func (s *Store) scanRows(ctx context.Context, query string, customers []int64, scan func(rows interface{ Scan(...any) error }) error) error {
	run := func(q string, args []any) error {
		rows, err := s.db.QueryContext(ctx, s.q(q), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			if err := scan(rows); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	if customers == nil {
		return run(strings.Replace(query, "{{where}}", "", 1), nil)
	}
	for start := 0; start < len(customers); start += inChunk {
		part := customers[start:min(start+inChunk, len(customers))]
		cond := "customer_id IN (" + strings.TrimSuffix(strings.Repeat("?,", len(part)), ",") + ") AND "
		if err := run(strings.Replace(query, "{{where}}", cond, 1), int64Args(part)); err != nil {
			return err
		}
	}
	return nil
}

// ScanOptOuts calls fn for every (customer, channel) opt-out.
func (s *Store) ScanOptOuts(ctx context.Context, customers []int64, fn func(customerID int64, channel string)) error {
	return s.scanRows(ctx, `SELECT customer_id, channel FROM customer_optouts WHERE {{where}} 1=1`, customers, func(r interface{ Scan(...any) error }) error {
		var id int64
		var ch string
		if err := r.Scan(&id, &ch); err != nil {
			return err
		}
		fn(id, ch)
		return nil
	})
}

// ScanCustomerTags calls fn for every (customer, tag) assignment.
func (s *Store) ScanCustomerTags(ctx context.Context, customers []int64, fn func(customerID, tagID int64)) error {
	return s.scanRows(ctx, `SELECT customer_id, tag_id FROM customer_tags WHERE {{where}} 1=1`, customers, func(r interface{ Scan(...any) error }) error {
		var c, t int64
		if err := r.Scan(&c, &t); err != nil {
			return err
		}
		fn(c, t)
		return nil
	})
}

// TagGroups maps every tag id to its group id.
func (s *Store) TagGroups(ctx context.Context) (map[int64]int64, error) {
	out := map[int64]int64{}
	err := s.scanRows(ctx, `SELECT id, group_id FROM tags WHERE {{where}} 1=1`, nil, func(r interface{ Scan(...any) error }) error {
		var t, g int64
		if err := r.Scan(&t, &g); err != nil {
			return err
		}
		out[t] = g
		return nil
	})
	return out, err
}

// ScanEventDays calls fn with the number of events of each name each customer did each day,
// days counted from 1970-01-01 in a zone offsetSeconds east of UTC.
// Only events with id ≤ maxID count (0: all).
func (s *Store) ScanEventDays(ctx context.Context, offsetSeconds int, maxID int64, fn func(customerID int64, name string, day int32, count int64)) error {
	if maxID <= 0 {
		maxID = 1<<62 - 1
	}
	// Reading the (customer_id, name, ts) index in order and counting runs of one customer,
	// name and day here is several times faster than a GROUP BY on a computed day, which makes
	// the database sort every event first.
	q := `SELECT customer_id, name, ts FROM events WHERE name <> '' AND id <= ? ORDER BY customer_id, name, ts`
	if s.engine == SQLite {
		q = `SELECT customer_id, name, ts FROM events INDEXED BY events_customer_name_ts WHERE name <> '' AND id <= ? ORDER BY customer_id, name, ts`
	}
	rows, err := s.db.QueryContext(ctx, s.q(q), maxID)
	if err != nil {
		return fmt.Errorf("scan event days: %w", err)
	}
	defer rows.Close()
	off := int64(offsetSeconds) * 1000
	var (
		curC, curD, n int64
		curName       string
		c, ts         int64
		name          string
	)
	for rows.Next() {
		if err := rows.Scan(&c, &name, &ts); err != nil {
			return err
		}
		d := (ts + off) / 86400000
		if n > 0 && (c != curC || d != curD || name != curName) {
			fn(curC, curName, int32(curD), n)
			n = 0
		}
		if n == 0 {
			curC, curD, curName = c, d, name
		}
		n++
	}
	if n > 0 {
		fn(curC, curName, int32(curD), n)
	}
	return rows.Err()
}

// ScanOrderDays calls fn with each customer's paid orders per day (count and net amount in
// minor units); fully refunded orders do not count.
func (s *Store) ScanOrderDays(ctx context.Context, offsetSeconds int, customers []int64, fn func(customerID int64, day int32, count, netMinor int64)) error {
	q := fmt.Sprintf(`SELECT customer_id, (paid_at + %d) / 86400000 AS day, COUNT(*), SUM(amount_minor - refunded_minor) FROM orders WHERE {{where}} status <> 'refunded' GROUP BY customer_id, (paid_at + %d) / 86400000`, offsetSeconds*1000, offsetSeconds*1000)
	return s.scanRows(ctx, q, customers, func(r interface{ Scan(...any) error }) error {
		var c, d, n, net int64
		if err := r.Scan(&c, &d, &n, &net); err != nil {
			return err
		}
		fn(c, int32(d), n, net)
		return nil
	})
}

// ScanHourCounts calls fn with how many events (orders=false) or paid orders (orders=true)
// each customer (customers: some; nil: all) had in each hour of the day and ISO weekday since
// sinceMS until untilMS (inclusive), in a zone offsetSeconds east of UTC. 1970-01-01 was a Thursday (ISO weekday 4).
func (s *Store) ScanHourCounts(ctx context.Context, orders bool, offsetSeconds int, sinceMS, untilMS int64, customers []int64, fn func(customerID int64, hour, weekday int, count int64)) error {
	if !orders && customers == nil {
		return s.scanEventHours(ctx, offsetSeconds, sinceMS, untilMS, fn)
	}
	table, ts, extra := "events", "ts", ""
	if orders {
		table, ts, extra = "orders", "paid_at", " AND status <> 'refunded'"
	}
	off := offsetSeconds * 1000
	q := fmt.Sprintf(`SELECT customer_id, ((%[1]s + %[2]d) / 3600000) %% 24 AS h, (((%[1]s + %[2]d) / 86400000 + 3) %% 7) + 1 AS wd, COUNT(*)
		FROM %[3]s WHERE {{where}} %[1]s BETWEEN %[4]d AND %[6]d%[5]s GROUP BY customer_id, ((%[1]s + %[2]d) / 3600000) %% 24, (((%[1]s + %[2]d) / 86400000 + 3) %% 7) + 1`, ts, off, table, sinceMS, extra, untilMS)
	return s.scanRows(ctx, q, customers, func(r interface{ Scan(...any) error }) error {
		var c, h, wd, n int64
		if err := r.Scan(&c, &h, &wd, &n); err != nil {
			return err
		}
		fn(c, int(h), int(wd), n)
		return nil
	})
}

// scanEventHours is ScanHourCounts over every customer's events: it reads the covering
// (customer_id, name, ts) index in customer order and counts each customer's hours here, which
// is many times faster than a GROUP BY on computed hours over millions of events.
func (s *Store) scanEventHours(ctx context.Context, offsetSeconds int, sinceMS, untilMS int64, fn func(customerID int64, hour, weekday int, count int64)) error {
	q := `SELECT customer_id, ts FROM events WHERE ts BETWEEN ? AND ? ORDER BY customer_id`
	if s.engine == SQLite {
		q = `SELECT customer_id, ts FROM events INDEXED BY events_customer_name_ts WHERE ts BETWEEN ? AND ? ORDER BY customer_id`
	}
	rows, err := s.db.QueryContext(ctx, s.q(q), sinceMS, untilMS)
	if err != nil {
		return fmt.Errorf("scan event hours: %w", err)
	}
	defer rows.Close()
	off := int64(offsetSeconds) * 1000
	var (
		counts [24][8]int64
		cur    int64 = -1
		c, ts  int64
	)
	flush := func() {
		for h := range counts {
			for wd := 1; wd <= 7; wd++ {
				if counts[h][wd] > 0 {
					fn(cur, h, wd, counts[h][wd])
					counts[h][wd] = 0
				}
			}
		}
	}
	for rows.Next() {
		if err := rows.Scan(&c, &ts); err != nil {
			return err
		}
		if c != cur {
			if cur >= 0 {
				flush()
			}
			cur = c
		}
		local := ts + off
		counts[(local/3600000)%24][(local/86400000+3)%7+1]++
	}
	if cur >= 0 {
		flush()
	}
	return rows.Err()
}

// MaxEventID is the highest event row id (0 when there are none).
func (s *Store) MaxEventID(ctx context.Context) (int64, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM events`).Scan(&id)
	return id, err
}

// BulkInsertTagVocabulary writes tag groups and tags with given ids (benchmarks and test data
// into a fresh database).
func (tx *Tx) BulkInsertTagVocabulary(groups map[int64]string, tags map[int64][2]any) error {
	now := ms(tx.Now())
	for id, name := range groups {
		if _, err := tx.exec(`INSERT INTO tag_groups (id, name, kind, created_at, updated_at) VALUES (?, ?, 'custom', ?, ?)`, id, name, now, now); err != nil {
			return err
		}
	}
	for id, t := range tags {
		if _, err := tx.exec(`INSERT INTO tags (id, group_id, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`, id, t[0], t[1], now, now); err != nil {
			return err
		}
	}
	if err := tx.syncSequence("tag_groups"); err != nil {
		return err
	}
	return tx.syncSequence("tags")
}

// BulkInsertCustomerTags assigns tags (pairs of customer id, tag id) with reason "import",
// without history: for loading test and benchmark data into a fresh database.
func (tx *Tx) BulkInsertCustomerTags(pairs [][2]int64) error {
	now := ms(tx.Now())
	err := tx.insertRows("customer_tags", []string{"customer_id", "tag_id", "assigned_at", "reason"}, len(pairs), func(i int, args []any) ([]any, error) {
		return append(args, pairs[i][0], pairs[i][1], now, "import"), nil
	})
	for _, p := range pairs {
		tx.noteCustomer(p[0])
	}
	return err
}
