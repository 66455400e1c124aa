package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/staff"
)

// Departments: a tree in one table (parent_id), walked with WITH RECURSIVE on both engines.
// A staff member belongs to at most one department (staff.department_id); staff.department
// keeps that department's name so that older readers of the column still see it.

const departmentCols = `d.id, COALESCE(d.parent_id, 0), d.name, d.sort, d.created_at, d.updated_at,
	(SELECT COUNT(*) FROM staff s WHERE s.department_id = d.id)`

func scanDepartment(sc interface{ Scan(...any) error }) (*staff.Department, error) {
	var (
		d                staff.Department
		created, updated int64
	)
	if err := sc.Scan(&d.ID, &d.ParentID, &d.Name, &d.Sort, &created, &updated, &d.Staff); err != nil {
		return nil, err
	}
	d.CreatedAt, d.UpdatedAt = fromMS(created), fromMS(updated)
	return &d, nil
}

// ListDepartments lists every department with its direct staff count; staff.DepartmentTree
// arranges them.
func (s *Store) ListDepartments(ctx context.Context) ([]*staff.Department, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+departmentCols+` FROM departments d ORDER BY d.sort, d.name, d.id`)
	return collect(rows, err, scanDepartment)
}

// DepartmentByID returns one department, or ErrNotFound.
func (s *Store) DepartmentByID(ctx context.Context, id int64) (*staff.Department, error) {
	d, err := scanDepartment(s.db.QueryRowContext(ctx, s.q(`SELECT `+departmentCols+` FROM departments d WHERE d.id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return d, err
}

// departmentDepth is how many departments sit above id (0 for a top-level one); a missing id
// is a FieldError on field.
func (tx *Tx) departmentDepth(id int64, field string) (int, error) {
	var n int
	err := tx.row(`WITH RECURSIVE up(id, parent_id, n) AS (
		SELECT id, parent_id, 0 FROM departments WHERE id = ?
		UNION ALL SELECT d.id, d.parent_id, up.n + 1 FROM departments d JOIN up ON d.id = up.parent_id WHERE up.n < ?
	) SELECT COALESCE(MAX(n), -1) FROM up`, id, staff.MaxDepartmentDepth*2).Scan(&n)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, &customer.FieldError{Field: field, Reason: "no department with id " + strconv.FormatInt(id, 10)}
	}
	return n, nil
}

// checkDepartmentPlace checks that d may sit under its parent: the parent exists, the tree
// stays within MaxDepartmentDepth (height is how many levels d's subtree adds below d), and no
// sibling has the same name.
func (tx *Tx) checkDepartmentPlace(d *staff.Department, height int) error {
	depth := 0
	if d.ParentID != 0 {
		pd, err := tx.departmentDepth(d.ParentID, "parent_id")
		if err != nil {
			return err
		}
		depth = pd + 1
	}
	if depth+height >= staff.MaxDepartmentDepth {
		return &customer.FieldError{Field: "parent_id", Reason: fmt.Sprintf("the tree would be deeper than %d levels", staff.MaxDepartmentDepth)}
	}
	var n int
	if err := tx.row(`SELECT COUNT(*) FROM departments WHERE COALESCE(parent_id, 0) = ? AND name = ? AND id <> ?`, d.ParentID, d.Name, d.ID).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return &customer.FieldError{Field: "name", Reason: "another department under the same parent has this name"}
	}
	return nil
}

// CreateDepartment adds a department under d.ParentID (0: top level) and sets d.ID.
func (s *Store) CreateDepartment(ctx context.Context, d *staff.Department) error {
	if err := d.Clean(); err != nil {
		return err
	}
	return s.InTx(ctx, func(tx *Tx) error {
		if err := tx.checkDepartmentPlace(d, 0); err != nil {
			return err
		}
		now := tx.Now()
		d.CreatedAt, d.UpdatedAt = now, now
		return tx.row(`INSERT INTO departments (parent_id, name, sort, created_at, updated_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			nullID(d.ParentID), d.Name, d.Sort, ms(now), ms(now)).Scan(&d.ID)
	})
}

// departmentSubtree lists id and every department below it.
func (tx *Tx) departmentSubtree(id int64) ([]int64, error) {
	rows, err := tx.query(subtreeSQL+` SELECT id FROM sub`, id)
	return collect(rows, err, scanID)
}

// subtreeSQL names the department ? and all below it "sub". UNION (not UNION ALL) stops on a
// cycle, which the store never writes but a hand-edited database might hold.
const subtreeSQL = `WITH RECURSIVE sub(id) AS (
	SELECT id FROM departments WHERE id = ?
	UNION SELECT d.id FROM departments d JOIN sub ON d.parent_id = sub.id
)`

// UpdateDepartment renames, re-sorts or moves a department. Moving it under itself or under one
// of its own sub-departments is a FieldError on parent_id: the tree never holds a cycle.
func (s *Store) UpdateDepartment(ctx context.Context, d *staff.Department) error {
	if err := d.Clean(); err != nil {
		return err
	}
	return s.InTx(ctx, func(tx *Tx) error {
		var old staff.Department
		err := tx.row(`SELECT COALESCE(parent_id, 0), name FROM departments WHERE id = ?`, d.ID).Scan(&old.ParentID, &old.Name)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		sub, err := tx.departmentSubtree(d.ID)
		if err != nil {
			return err
		}
		for _, id := range sub {
			if id == d.ParentID {
				return &customer.FieldError{Field: "parent_id", Reason: "a department cannot move under itself or one of its sub-departments"}
			}
		}
		var height int
		if err := tx.row(`WITH RECURSIVE down(id, n) AS (
			SELECT id, 0 FROM departments WHERE id = ?
			UNION ALL SELECT d.id, down.n + 1 FROM departments d JOIN down ON d.parent_id = down.id WHERE down.n < ?
		) SELECT MAX(n) FROM down`, d.ID, staff.MaxDepartmentDepth*2).Scan(&height); err != nil {
			return err
		}
		if err := tx.checkDepartmentPlace(d, height); err != nil {
			return err
		}
		now := tx.Now()
		if _, err := tx.exec(`UPDATE departments SET parent_id = ?, name = ?, sort = ?, updated_at = ? WHERE id = ?`,
			nullID(d.ParentID), d.Name, d.Sort, ms(now), d.ID); err != nil {
			return err
		}
		if old.Name != d.Name {
			if _, err := tx.exec(`UPDATE staff SET department = ? WHERE department_id = ?`, d.Name, d.ID); err != nil {
				return err
			}
		}
		d.UpdatedAt = now
		return nil
	})
}

// DeleteDepartment removes an empty department. One with sub-departments is a FieldError on
// children, one with staff a FieldError on staff: move them first.
func (s *Store) DeleteDepartment(ctx context.Context, id int64) error {
	return s.InTx(ctx, func(tx *Tx) error {
		var children, members int
		err := tx.row(`SELECT (SELECT COUNT(*) FROM departments WHERE parent_id = ?), (SELECT COUNT(*) FROM staff WHERE department_id = ?) FROM departments WHERE id = ?`, id, id, id).Scan(&children, &members)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		switch {
		case err != nil:
			return err
		case children > 0:
			return &customer.FieldError{Field: "children", Reason: fmt.Sprintf("the department has %d sub-departments: move or delete them first", children)}
		case members > 0:
			return &customer.FieldError{Field: "staff", Reason: fmt.Sprintf("the department has %d staff members: move them first", members)}
		}
		_, err = tx.exec(`DELETE FROM departments WHERE id = ?`, id)
		return err
	})
}

// DepartmentStaffIDs lists the staff (disabled ones too: their customers stay theirs until
// transferred) of department id and every department below it.
func (s *Store) DepartmentStaffIDs(ctx context.Context, id int64) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, s.q(subtreeSQL+` SELECT s.id FROM staff s WHERE s.department_id IN (SELECT id FROM sub) ORDER BY s.id`), id)
	return collect(rows, err, scanID)
}

// placeDepartment settles m's department before m is written: a DepartmentID must exist (its
// name is copied into m.Department); without one, a department name (the older free-text
// field) finds the department of that name, or makes a top-level one. To take a member out
// of every department, clear both.
func (tx *Tx) placeDepartment(m *staff.Staff) error {
	m.Department = strings.TrimSpace(m.Department)
	if m.DepartmentID < 0 {
		return &customer.FieldError{Field: "department_id", Reason: "must be a department id or 0"}
	}
	if m.DepartmentID != 0 {
		err := tx.row(`SELECT name FROM departments WHERE id = ?`, m.DepartmentID).Scan(&m.Department)
		if errors.Is(err, sql.ErrNoRows) {
			return &customer.FieldError{Field: "department_id", Reason: "no department with id " + strconv.FormatInt(m.DepartmentID, 10)}
		}
		return err
	}
	if m.Department == "" {
		return nil
	}
	err := tx.row(`SELECT id FROM departments WHERE name = ? ORDER BY CASE WHEN parent_id IS NULL THEN 0 ELSE 1 END, id LIMIT 1`, m.Department).Scan(&m.DepartmentID)
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	d := &staff.Department{Name: m.Department}
	if err := d.Clean(); err != nil {
		return &customer.FieldError{Field: "department", Reason: err.(*customer.FieldError).Reason}
	}
	now := ms(tx.Now())
	return tx.row(`INSERT INTO departments (name, sort, created_at, updated_at) VALUES (?, 0, ?, ?) RETURNING id`, d.Name, now, now).Scan(&m.DepartmentID)
}
