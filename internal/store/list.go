package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/staff"
)

// CustomerFilter selects and orders customers for lists.
type CustomerFilter struct {
	// Q searches by name (contains), phone, email or any identity value (exact).
	Q string
	// OwnerID keeps one owner's customers; -1 keeps the unowned ones.
	OwnerID int64
	// ScopeOwnerID, when not 0, limits the result to one owner whatever else is asked: the
	// data scope of a sales role.
	ScopeOwnerID int64
	// Scope limits the result to the customers of a data scope (the zero value: all), on top
	// of ScopeOwnerID: a department's or one person's customers.
	Scope  staff.CustomerScope
	Source string
	// Attrs keeps customers whose attribute equals the value (compared as text; a list
	// attribute matches when it contains the value).
	Attrs map[string]string
	// Sort is "id" (default), "created_at", "last_seen_at" or "name"; Desc reverses it.
	Sort string
	Desc bool
	// Cursor continues after the last row of a previous page (keyset paging: as fast on page
	// 10,000 as on page 1).
	Cursor string
	Limit  int
}

// CustomerPage is one page of customers.
type CustomerPage struct {
	Customers  []*customer.Customer `json:"customers"`
	NextCursor string               `json:"next_cursor,omitempty"`
}

var sortCols = map[string]string{"id": "id", "created_at": "created_at", "last_seen_at": "last_seen_at", "name": "name"}

// ValidSort reports whether s can order customer lists.
func ValidSort(s string) bool { _, ok := sortCols[s]; return ok || s == "" }

type cursor struct {
	V  any   `json:"v"`
	ID int64 `json:"id"`
}

func (s *Store) customerWhere(f *CustomerFilter) (string, []any, error) {
	conds := []string{"merged_into IS NULL"}
	args := []any{}
	if f.ScopeOwnerID != 0 {
		conds = append(conds, "owner_id = ?")
		args = append(args, f.ScopeOwnerID)
	}
	if cond, in := ownersIn("owner_id", f.Scope); cond != "" {
		conds = append(conds, strings.TrimPrefix(cond, " AND "))
		args = append(args, in...)
	}
	switch {
	case f.OwnerID == -1:
		conds = append(conds, "owner_id IS NULL")
	case f.OwnerID > 0:
		conds = append(conds, "owner_id = ?")
		args = append(args, f.OwnerID)
	}
	if f.Source != "" {
		conds = append(conds, "source = ?")
		args = append(args, f.Source)
	}
	if q := strings.TrimSpace(f.Q); q != "" {
		like := "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(q) + "%"
		conds = append(conds, `(name LIKE ? ESCAPE '\' OR phone = ? OR email = ? OR id IN (SELECT customer_id FROM identities WHERE value = ?))`)
		args = append(args, like, q, q, q)
	}
	for k, v := range f.Attrs {
		if !customer.ValidAttrKey(k) {
			return "", nil, &customer.FieldError{Field: "attr." + k, Reason: "invalid attribute name"}
		}
		if s.engine == Postgres {
			conds = append(conds, `(attrs->>? = ? OR (jsonb_typeof(attrs->?) = 'array' AND jsonb_exists(attrs->?, ?)))`)
			args = append(args, k, v, k, k, v)
		} else {
			// json_extract gives 1/0 for a JSON boolean: compare its JSON type instead, so
			// attr.x=true matches as it does on PostgreSQL (and attr.x=1 does not).
			conds = append(conds, `(CASE json_type(attrs, ?) WHEN 'true' THEN ? = 'true' WHEN 'false' THEN ? = 'false' WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each(attrs, ?) WHERE json_each.value = ?) ELSE CAST(json_extract(attrs, ?) AS TEXT) = ? END)`)
			p := `$."` + k + `"`
			args = append(args, p, v, v, p, v, p, v)
		}
	}
	return strings.Join(conds, " AND "), args, nil
}

// ListCustomers returns one page of customers matching f.
func (s *Store) ListCustomers(ctx context.Context, f CustomerFilter) (*CustomerPage, error) {
	col, ok := sortCols[f.Sort]
	if !ok && f.Sort != "" {
		return nil, &customer.FieldError{Field: "sort", Reason: "want id, created_at, last_seen_at or name"}
	}
	if col == "" {
		col = "id"
	}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	if f.Limit > 1000 {
		return nil, &customer.FieldError{Field: "limit", Reason: "at most 1000"}
	}
	where, args, err := s.customerWhere(&f)
	if err != nil {
		return nil, err
	}
	cmp, dir := ">", "ASC"
	if f.Desc {
		cmp, dir = "<", "DESC"
	}
	if f.Cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(f.Cursor)
		var c cursor
		if err == nil {
			err = json.Unmarshal(raw, &c)
		}
		if err != nil {
			return nil, &customer.FieldError{Field: "cursor", Reason: "not a cursor from a previous page"}
		}
		if col == "id" {
			where += " AND id " + cmp + " ?"
			args = append(args, c.ID)
		} else {
			v := c.V
			if f, ok := v.(float64); ok {
				v = int64(f)
			}
			where += fmt.Sprintf(" AND (%s %s ? OR (%s = ? AND id %s ?))", col, cmp, col, cmp)
			args = append(args, v, v, c.ID)
		}
	}
	order := col + " " + dir
	if col != "id" {
		order += ", id " + dir
	}
	args = append(args, f.Limit+1)
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+customerCols+` FROM customers WHERE `+where+` ORDER BY `+order+` LIMIT ?`), args...)
	if err != nil {
		return nil, fmt.Errorf("list customers: %w", err)
	}
	defer rows.Close()
	page := &CustomerPage{Customers: []*customer.Customer{}}
	for rows.Next() {
		c, err := scanCustomer(rows)
		if err != nil {
			return nil, err
		}
		page.Customers = append(page.Customers, c)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(page.Customers) > f.Limit {
		page.Customers = page.Customers[:f.Limit]
		last := page.Customers[f.Limit-1]
		c := cursor{ID: last.ID}
		switch col {
		case "created_at":
			c.V = ms(last.CreatedAt)
		case "last_seen_at":
			c.V = ms(last.LastSeenAt)
		case "name":
			c.V = last.Name
		}
		b, _ := json.Marshal(c)
		page.NextCursor = base64.RawURLEncoding.EncodeToString(b)
	}
	return page, nil
}

// CountCustomers counts the customers matching f (cursor, sort and limit are ignored).
func (s *Store) CountCustomers(ctx context.Context, f CustomerFilter) (int64, error) {
	where, args, err := s.customerWhere(&f)
	if err != nil {
		return 0, err
	}
	var n int64
	err = s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM customers WHERE `+where), args...).Scan(&n)
	return n, err
}
