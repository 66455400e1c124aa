package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/siyu-scrm/siyu/internal/analytics"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/goal"
)

// Objectives and their key results (internal/goal). A key result keeps its id across edits of
// its objective when the edit names it, so links to it stay good.

const objectiveCols = `id, name, description, from_day, to_day, COALESCE(owner_staff_id, 0), COALESCE(department_id, 0), COALESCE(created_by, 0), created_at, updated_at`

func scanObjective(sc interface{ Scan(...any) error }) (*goal.Objective, error) {
	o := &goal.Objective{KeyResults: []goal.KeyResult{}}
	var created, updated int64
	if err := sc.Scan(&o.ID, &o.Name, &o.Description, &o.From, &o.To, &o.OwnerStaffID, &o.DepartmentID, &o.CreatedBy, &created, &updated); err != nil {
		return nil, err
	}
	o.CreatedAt, o.UpdatedAt = fromMS(created), fromMS(updated)
	return o, nil
}

// checkGoalRefs makes sure the staff, departments and segments an objective names exist.
func (tx *Tx) checkGoalRefs(o *goal.Objective) error {
	exists := func(table string, id int64) (bool, error) {
		var n int
		err := tx.row(`SELECT COUNT(*) FROM `+table+` WHERE id = ?`, id).Scan(&n)
		return n > 0, err
	}
	check := func(field, table string, id int64) error {
		if id == 0 {
			return nil
		}
		ok, err := exists(table, id)
		if err != nil {
			return err
		}
		if !ok {
			return &customer.FieldError{Field: field, Reason: fmt.Sprintf("no %s %d", map[string]string{"staff": "staff member", "departments": "department", "segments": "segment"}[table], id)}
		}
		return nil
	}
	if err := check("owner_staff_id", "staff", o.OwnerStaffID); err != nil {
		return err
	}
	if err := check("department_id", "departments", o.DepartmentID); err != nil {
		return err
	}
	for i, k := range o.KeyResults {
		p := fmt.Sprintf("key_results[%d].", i)
		for _, c := range []struct {
			field, table string
			id           int64
		}{{p + "segment_id", "segments", k.SegmentID}, {p + "owner_staff_id", "staff", k.OwnerStaffID}, {p + "department_id", "departments", k.DepartmentID}} {
			if err := check(c.field, c.table, c.id); err != nil {
				return err
			}
		}
	}
	return nil
}

// CreateObjective validates and saves an objective with its key results, setting their ids.
func (s *Store) CreateObjective(ctx context.Context, o *goal.Objective) error {
	if err := o.Validate(); err != nil {
		return err
	}
	return s.InTx(ctx, func(tx *Tx) error {
		if err := tx.checkGoalRefs(o); err != nil {
			return err
		}
		now := tx.Now()
		err := tx.row(`INSERT INTO objectives (name, description, from_day, to_day, owner_staff_id, department_id, created_by, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			o.Name, o.Description, o.From, o.To, nullID(o.OwnerStaffID), nullID(o.DepartmentID), nullID(o.CreatedBy), ms(now), ms(now)).Scan(&o.ID)
		if err != nil {
			return fmt.Errorf("create objective: %w", err)
		}
		o.CreatedAt, o.UpdatedAt = now, now
		return tx.saveKeyResults(o)
	})
}

// UpdateObjective replaces an objective's fields and key results: key results with an id of
// this objective are updated, those without are added, and those no longer listed removed. An
// id that is not one of its key results is a field error.
func (s *Store) UpdateObjective(ctx context.Context, o *goal.Objective) error {
	if err := o.Validate(); err != nil {
		return err
	}
	return s.InTx(ctx, func(tx *Tx) error {
		cur, err := tx.objective(o.ID)
		if err != nil {
			return err
		}
		if err := tx.checkGoalRefs(o); err != nil {
			return err
		}
		now := tx.Now()
		if _, err := tx.exec(`UPDATE objectives SET name = ?, description = ?, from_day = ?, to_day = ?, owner_staff_id = ?, department_id = ?, updated_at = ? WHERE id = ?`,
			o.Name, o.Description, o.From, o.To, nullID(o.OwnerStaffID), nullID(o.DepartmentID), ms(now), o.ID); err != nil {
			return fmt.Errorf("update objective %d: %w", o.ID, err)
		}
		o.CreatedAt, o.UpdatedAt, o.CreatedBy = cur.CreatedAt, now, cur.CreatedBy
		return tx.saveKeyResults(o)
	})
}

func (tx *Tx) saveKeyResults(o *goal.Objective) error {
	existing, err := tx.int64s(`SELECT id FROM key_results WHERE objective_id = ?`, o.ID)
	if err != nil {
		return err
	}
	keep := map[int64]bool{}
	for _, id := range existing {
		keep[id] = false
	}
	for i := range o.KeyResults {
		k := &o.KeyResults[i]
		if k.ID != 0 {
			if _, ok := keep[k.ID]; !ok {
				return &customer.FieldError{Field: fmt.Sprintf("key_results[%d].id", i), Reason: fmt.Sprintf("key result %d is not one of this objective's", k.ID)}
			}
			keep[k.ID] = true
			if _, err := tx.exec(`UPDATE key_results SET position = ?, name = ?, metric = ?, segment_id = ?, target = ?, direction = ?, owner_staff_id = ?, department_id = ? WHERE id = ?`,
				i, k.Name, k.Metric, nullID(k.SegmentID), k.Target, k.Direction, nullID(k.OwnerStaffID), nullID(k.DepartmentID), k.ID); err != nil {
				return fmt.Errorf("update key result %d: %w", k.ID, err)
			}
			continue
		}
		if err := tx.row(`INSERT INTO key_results (objective_id, position, name, metric, segment_id, target, direction, owner_staff_id, department_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			o.ID, i, k.Name, k.Metric, nullID(k.SegmentID), k.Target, k.Direction, nullID(k.OwnerStaffID), nullID(k.DepartmentID)).Scan(&k.ID); err != nil {
			return fmt.Errorf("add key result: %w", err)
		}
	}
	for id, kept := range keep {
		if !kept {
			if _, err := tx.exec(`DELETE FROM key_results WHERE id = ?`, id); err != nil {
				return fmt.Errorf("remove key result %d: %w", id, err)
			}
		}
	}
	return nil
}

func (tx *Tx) objective(id int64) (*goal.Objective, error) {
	o, err := scanObjective(tx.row(`SELECT `+objectiveCols+` FROM objectives WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("objective %d: %w", id, ErrNotFound)
	}
	return o, err
}

// Objective returns one objective with its key results in order.
func (s *Store) Objective(ctx context.Context, id int64) (*goal.Objective, error) {
	o, err := scanObjective(s.db.QueryRowContext(ctx, s.q(`SELECT `+objectiveCols+` FROM objectives WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("objective %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if err := s.fillKeyResults(ctx, []*goal.Objective{o}); err != nil {
		return nil, err
	}
	return o, nil
}

// Objectives lists the objectives whose period overlaps [from, to) (dates YYYY-MM-DD; empty:
// unbounded), the newest period first.
func (s *Store) Objectives(ctx context.Context, from, to string) ([]*goal.Objective, error) {
	q, args := `SELECT `+objectiveCols+` FROM objectives WHERE 1 = 1`, []any{}
	if from != "" {
		q, args = q+` AND to_day > ?`, append(args, from)
	}
	if to != "" {
		q, args = q+` AND from_day < ?`, append(args, to)
	}
	rows, err := s.db.QueryContext(ctx, s.q(q+` ORDER BY from_day DESC, id DESC LIMIT 500`), args...)
	list, err := collect(rows, err, func(sc interface{ Scan(...any) error }) (*goal.Objective, error) { return scanObjective(sc) })
	if err != nil {
		return nil, err
	}
	return list, s.fillKeyResults(ctx, list)
}

func (s *Store) fillKeyResults(ctx context.Context, list []*goal.Objective) error {
	if len(list) == 0 {
		return nil
	}
	byID := map[int64]*goal.Objective{}
	for _, o := range list {
		byID[o.ID] = o
	}
	rows, err := s.db.QueryContext(ctx, `SELECT objective_id, id, name, metric, COALESCE(segment_id, 0), target, direction, COALESCE(owner_staff_id, 0), COALESCE(department_id, 0)
		FROM key_results ORDER BY objective_id, position, id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var oid int64
		var k goal.KeyResult
		if err := rows.Scan(&oid, &k.ID, &k.Name, &k.Metric, &k.SegmentID, &k.Target, &k.Direction, &k.OwnerStaffID, &k.DepartmentID); err != nil {
			return err
		}
		if o := byID[oid]; o != nil {
			o.KeyResults = append(o.KeyResults, k)
		}
	}
	return rows.Err()
}

// DeleteObjective removes an objective and its key results.
func (s *Store) DeleteObjective(ctx context.Context, id int64) error {
	return s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.objective(id); err != nil {
			return err
		}
		if _, err := tx.exec(`DELETE FROM key_results WHERE objective_id = ?`, id); err != nil {
			return err
		}
		_, err := tx.exec(`DELETE FROM objectives WHERE id = ?`, id)
		return err
	})
}

// BuyerSplit tallies the orders paid in [from, to) in scope by whether their buyer's first paid
// order ever falls in the period (a new buyer) or before it (returning). Buyers and orders
// count paid orders (not fully refunded); GMV is Σ(amount − refunded) over every order paid in
// the period, as in the metrics report, so the two parts add up to its GMV.
func (s *Store) BuyerSplit(ctx context.Context, sc analytics.Scope, from, to time.Time) (goal.BuyerSplit, error) {
	var out goal.BuyerSplit
	sc.By = ""
	os, err := s.scopeSQL(sc, "o.customer_id", false)
	if err != nil {
		return out, err
	}
	f, t := ms(from), ms(to)
	err = s.analyticsRows(ctx, `SELECT CASE WHEN (SELECT MIN(o2.paid_at) FROM orders o2 WHERE o2.customer_id = o.customer_id AND o2.`+paidOrderSQL+`) >= ? THEN 1 ELSE 0 END,
		COUNT(DISTINCT CASE WHEN o.`+paidOrderSQL+` THEN o.customer_id END),
		COUNT(CASE WHEN o.`+paidOrderSQL+` THEN 1 END),
		CAST(COALESCE(SUM(o.amount_minor - o.refunded_minor), 0) AS BIGINT)
		FROM orders o`+os.join+` WHERE o.paid_at >= ? AND o.paid_at < ?`+os.where+` GROUP BY 1`,
		append([]any{f, f, t}, os.args...), func(r rowScanner) error {
			var isNew int
			var buyers, orders, gmv int64
			if err := r.Scan(&isNew, &buyers, &orders, &gmv); err != nil {
				return err
			}
			if isNew == 1 {
				out.NewBuyers, out.NewOrders, out.NewGMV = buyers, orders, gmv
			} else {
				out.ReturningBuyers, out.ReturningOrders, out.ReturningGMV = buyers, orders, gmv
			}
			return nil
		})
	if err != nil {
		return out, fmt.Errorf("buyer split: %w", err)
	}
	return out, nil
}
