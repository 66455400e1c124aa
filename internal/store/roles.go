package store

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/staff"
)

// Custom roles: a permission matrix and a data scope under a key that staff and API keys are
// assigned like a built-in role's. The matrix is stored as its cells ("customers.view
// tags.edit"), so a cell the code no longer knows is dropped on read rather than granted.

const roleCols = `r.id, r.key, r.name, r.description, r.template, r.permissions, r.data_scope,
	(SELECT COUNT(*) FROM staff s WHERE s.role = r.key) + (SELECT COUNT(*) FROM api_keys k WHERE k.role = r.key AND k.revoked_at IS NULL)`

func scanRole(sc interface{ Scan(...any) error }) (*staff.RoleDef, error) {
	var (
		d     staff.RoleDef
		perms string
	)
	if err := sc.Scan(&d.ID, &d.Key, &d.Name, &d.Description, &d.Template, &perms, &d.Scope, &d.Members); err != nil {
		return nil, err
	}
	d.Matrix = staff.Matrix{}
	for _, cell := range strings.Fields(perms) {
		a, x, _ := strings.Cut(cell, ".")
		if p := staff.Perm(staff.Area(a), staff.Action(x)); p.Valid() {
			d.Matrix[p.Area] = append(d.Matrix[p.Area], p.Action)
		}
	}
	return &d, nil
}

var roleKeyPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{1,39}$`)

// cleanRole checks a custom role and puts its matrix in canonical form.
func cleanRole(d *staff.RoleDef) error {
	d.Name = strings.TrimSpace(d.Name)
	d.Description = strings.TrimSpace(d.Description)
	switch {
	case d.Name == "" || utf8.RuneCountInString(d.Name) > 50 || strings.ContainsAny(d.Name, "\r\n\t"):
		return &customer.FieldError{Field: "name", Reason: "required, at most 50 characters on one line"}
	case utf8.RuneCountInString(d.Description) > 500:
		return &customer.FieldError{Field: "description", Reason: "at most 500 characters"}
	case !d.Scope.Valid():
		return &customer.FieldError{Field: "data_scope", Reason: "want all, department or own"}
	}
	m, err := d.Matrix.Normalize()
	if err != nil {
		return err
	}
	d.Matrix = m
	return nil
}

// ListRoles lists the built-in roles, then the custom ones by name, each with its member count.
func (s *Store) ListRoles(ctx context.Context) ([]*staff.RoleDef, error) {
	var out []*staff.RoleDef
	for _, p := range staff.Presets {
		d := staff.Preset(p.Key)
		if err := s.db.QueryRowContext(ctx, s.q(`SELECT (SELECT COUNT(*) FROM staff WHERE role = ?) + (SELECT COUNT(*) FROM api_keys WHERE role = ? AND revoked_at IS NULL)`), string(d.Key), string(d.Key)).Scan(&d.Members); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+roleCols+` FROM roles r ORDER BY r.name, r.id`)
	custom, err := collect(rows, err, scanRole)
	return append(out, custom...), err
}

// RoleByID returns a custom role, or ErrNotFound.
func (s *Store) RoleByID(ctx context.Context, id int64) (*staff.RoleDef, error) {
	d, err := scanRole(s.db.QueryRowContext(ctx, s.q(`SELECT `+roleCols+` FROM roles r WHERE r.id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return d, err
}

// RoleByKey resolves what staff and keys are assigned: a built-in preset or a custom role, or
// ErrNotFound.
func (s *Store) RoleByKey(ctx context.Context, key staff.Role) (*staff.RoleDef, error) {
	if d := staff.Preset(key); d != nil {
		return d, nil
	}
	d, err := scanRole(s.db.QueryRowContext(ctx, s.q(`SELECT `+roleCols+` FROM roles r WHERE r.key = ?`), string(key)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return d, err
}

// checkRoleKey reports a FieldError on field unless key is a built-in role or an existing
// custom role.
func (tx *Tx) checkRoleKey(key staff.Role, field string) error {
	if key.Valid() {
		return nil
	}
	var n int
	if err := tx.row(`SELECT COUNT(*) FROM roles WHERE key = ?`, string(key)).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return &customer.FieldError{Field: field, Reason: "want admin, operator, sales, content or the key of a custom role"}
	}
	return nil
}

func permissionsText(m staff.Matrix) string { return strings.Join(m.Permissions(), " ") }

// CreateRole adds a custom role. Template, when set, names a staff.Templates entry whose
// matrix, scope and description fill what d leaves empty. An empty key becomes role_ID.
func (s *Store) CreateRole(ctx context.Context, d *staff.RoleDef) error {
	if d.Template != "" {
		t := staff.Template(d.Template)
		if t == nil {
			return &customer.FieldError{Field: "template", Reason: "unknown template (want content_ops, copywriter, growth_ops, user_ops or community_sales)"}
		}
		if len(d.Matrix) == 0 {
			d.Matrix = t.Matrix
		}
		if d.Scope == "" {
			d.Scope = t.Scope
		}
		if d.Description == "" {
			d.Description = t.Description
		}
		if d.Name == "" {
			d.Name = t.Name
		}
	}
	if err := cleanRole(d); err != nil {
		return err
	}
	if d.Key != "" && (!roleKeyPattern.MatchString(string(d.Key)) || d.Key.Valid()) {
		return &customer.FieldError{Field: "key", Reason: "2–40 of a-z, 0-9 and _, starting with a letter, and not a built-in role"}
	}
	d.BuiltIn = false
	return s.InTx(ctx, func(tx *Tx) error {
		if err := tx.roleNameFree(d); err != nil {
			return err
		}
		key := string(d.Key)
		if key == "" {
			key = "new_" + staff.NewSecret("")
		}
		now := ms(tx.Now())
		err := tx.row(`INSERT INTO roles (key, name, description, template, permissions, data_scope, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			key, d.Name, d.Description, d.Template, permissionsText(d.Matrix), string(d.Scope), now, now).Scan(&d.ID)
		if isUniqueViolation(err) {
			return &customer.FieldError{Field: "key", Reason: "another role has this key"}
		}
		if err != nil {
			return err
		}
		if d.Key == "" {
			d.Key = staff.Role("role_" + strconv.FormatInt(d.ID, 10))
			_, err = tx.exec(`UPDATE roles SET key = ? WHERE id = ?`, string(d.Key), d.ID)
		}
		return err
	})
}

func (tx *Tx) roleNameFree(d *staff.RoleDef) error {
	for _, p := range staff.Presets {
		if p.Name == d.Name {
			return &customer.FieldError{Field: "name", Reason: "a built-in role has this name"}
		}
	}
	var n int
	if err := tx.row(`SELECT COUNT(*) FROM roles WHERE name = ? AND id <> ?`, d.Name, d.ID).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return &customer.FieldError{Field: "name", Reason: "another role has this name"}
	}
	return nil
}

// UpdateRole changes a custom role's name, description, matrix and scope; its key stays. The
// change applies to its staff and keys from their next request.
func (s *Store) UpdateRole(ctx context.Context, d *staff.RoleDef) error {
	if err := cleanRole(d); err != nil {
		return err
	}
	return s.InTx(ctx, func(tx *Tx) error {
		if err := tx.roleNameFree(d); err != nil {
			return err
		}
		res, err := tx.exec(`UPDATE roles SET name = ?, description = ?, permissions = ?, data_scope = ?, updated_at = ? WHERE id = ?`,
			d.Name, d.Description, permissionsText(d.Matrix), string(d.Scope), ms(tx.Now()), d.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// DeleteRole removes a custom role nobody holds; one still assigned to staff or live API keys
// is a FieldError on members.
func (s *Store) DeleteRole(ctx context.Context, id int64) error {
	return s.InTx(ctx, func(tx *Tx) error {
		var members int
		err := tx.row(`SELECT (SELECT COUNT(*) FROM staff s WHERE s.role = r.key) + (SELECT COUNT(*) FROM api_keys k WHERE k.role = r.key AND k.revoked_at IS NULL) FROM roles r WHERE r.id = ?`, id).Scan(&members)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if members > 0 {
			return &customer.FieldError{Field: "members", Reason: "the role is assigned to " + strconv.Itoa(members) + " staff members or API keys: assign them another role first"}
		}
		_, err = tx.exec(`DELETE FROM roles WHERE id = ?`, id)
		return err
	})
}
