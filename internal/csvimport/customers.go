package csvimport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/store"
)

// Customers imports customers from CSV. Each row names a customer by its identities (user id,
// phone, email, WeCom external id, unionid): a known customer is updated, an unknown one
// created, and rows that link identities of several customers merge them as ingestion does.
// Empty cells change nothing. The report counts created, updated, unchanged and invalid rows;
// with Strict any invalid row writes nothing and the error wraps ErrInvalidRows.
func Customers(ctx context.Context, st *store.Store, r io.Reader, opts Options) (*Report, error) {
	rep := &Report{}
	src, err := openSource(r, &opts, rep, customerAliases, true)
	if err != nil {
		return rep, fmt.Errorf("import customers: %w", err)
	}
	im := &customerImport{cols: src.cols, source: opts.Source, owners: map[string]bool{}}
	members, err := st.ListStaff(ctx)
	if err != nil {
		return rep, err
	}
	for _, m := range members {
		im.owners[m.Login] = true
		if m.Email != "" {
			im.owners[m.Email] = true
		}
	}
	if err := src.fill(1000); err != nil {
		return rep, fmt.Errorf("import customers: %w", err)
	}
	if err := im.attrTypes(ctx, st, src.buf); err != nil {
		return rep, fmt.Errorf("import customers: %w", err)
	}
	err = run(ctx, st, src, &opts, rep, im)
	if err != nil {
		return rep, fmt.Errorf("import customers: %w", err)
	}
	return rep, nil
}

type customerImport struct {
	cols   []column
	source string
	owners map[string]bool
}

type customerRow struct {
	line  int
	ids   []customer.Identity
	patch customer.Patch
}

// attrTypes settles the type of each attribute column: the stored definition, else the type
// named in the mapping, else what the first rows' values look like (numbers, 是/否, dates).
// CSV cells are all text, so without this every new attribute would be a string.
func (im *customerImport) attrTypes(ctx context.Context, st *store.Store, sample []record) error {
	defs, err := st.AttrDefs(ctx)
	if err != nil {
		return err
	}
	byKey := map[string]customer.AttrType{}
	for _, d := range defs {
		byKey[d.Key] = d.Type
	}
	for i := range im.cols {
		c := &im.cols[i]
		if c.ignored || c.field != "" {
			continue
		}
		if t, ok := byKey[c.attrKey]; ok {
			if c.attrType != "" && c.attrType != t {
				return fmt.Errorf("column %q: attribute %s is already of type %s, not %s", c.header, c.attrKey, t, c.attrType)
			}
			c.attrType = t
			continue
		}
		if c.attrType != "" {
			continue
		}
		var vals []string
		for _, rec := range sample {
			if v := cell(rec.cells, i); v != "" && rec.err == nil {
				vals = append(vals, v)
			}
		}
		c.attrType = inferType(vals)
	}
	return nil
}

// inferType picks the narrowest type all sample values fit. Numbers with leading zeros (codes,
// ids) and very long digit strings stay strings; lists are never guessed.
func inferType(vals []string) customer.AttrType {
	if len(vals) == 0 {
		return customer.AttrString
	}
	isNum, isBool, isDate := true, true, true
	for _, v := range vals {
		if _, err := toNumber(v); err != nil || (len(v) > 1 && v[0] == '0' && v[1] != '.') || len(v) > 15 {
			isNum = false
		}
		if _, err := toBool(v); err != nil {
			isBool = false
		}
		if _, err := customer.NormalizeDate(v); err != nil || len(v) < 8 {
			isDate = false
		}
	}
	switch {
	case isBool:
		return customer.AttrBool
	case isNum:
		return customer.AttrNumber
	case isDate:
		return customer.AttrDate
	}
	return customer.AttrString
}

func toNumber(s string) (float64, error) {
	return strconv.ParseFloat(strings.ReplaceAll(strings.TrimPrefix(strings.TrimPrefix(s, "¥"), "￥"), ",", ""), 64)
}

func toBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "true", "yes", "y", "是", "√", "✓", "对":
		return true, nil
	case "false", "no", "n", "否", "×", "✗", "不是":
		return false, nil
	}
	return false, fmt.Errorf("%q is not yes or no (是/否, true/false)", s)
}

// attrValue converts a cell to the Go value of an attribute type.
func attrValue(t customer.AttrType, v string) (any, error) {
	switch t {
	case customer.AttrNumber:
		f, err := toNumber(v)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", v)
		}
		return customer.CoerceAttr(t, f)
	case customer.AttrBool:
		return toBool(v)
	case customer.AttrDate:
		d, err := customer.NormalizeDate(v)
		if err != nil {
			if tm, terr := parseTime(v); terr == nil {
				return tm.In(shanghai).Format("2006-01-02"), nil
			}
		}
		return d, err
	}
	return customer.CoerceAttr(t, v)
}

func (im *customerImport) parse(rec record) (customerRow, *RowError) {
	row := customerRow{line: rec.line}
	ids, rerr := identities(im.cols, rec.cells, rec.line)
	if rerr != nil {
		return row, rerr
	}
	row.ids = ids
	p := &row.patch
	var region []string
	for i, c := range im.cols {
		v := cell(rec.cells, i)
		if c.ignored || v == "" {
			continue
		}
		bad := func(err error) *RowError { return &RowError{Line: rec.line, Column: c.header, Reason: err.Error()} }
		vv := v
		switch c.field {
		case "":
			val, err := attrValue(c.attrType, v)
			if err != nil {
				return row, bad(err)
			}
			if p.Attrs == nil {
				p.Attrs = map[string]any{}
			}
			p.Attrs[c.attrKey] = val
		case fName:
			p.Name = &vv
		case fGender:
			p.Gender = &vv
		case fBirthday:
			if _, err := customer.NormalizeDate(v); err != nil {
				t, terr := parseTime(v)
				if terr != nil {
					return row, bad(err)
				}
				vv = t.In(shanghai).Format("2006-01-02")
			}
			p.Birthday = &vv
		case fRegion:
			region = append(region, v)
		case fPhone:
			vv, _ = normalizePhone(v) // checked with the identities
			p.Phone = &vv
		case fEmail:
			vv, _ = normalizeEmail(v)
			p.Email = &vv
		case fSource:
			p.Source = &vv
		case fAvatarURL:
			if !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
				return row, bad(fmt.Errorf("%q is not an http(s) URL", v))
			}
			p.AvatarURL = &vv
		case fOwner:
			if !im.owners[v] {
				return row, bad(fmt.Errorf("no staff member with login %q", v))
			}
			p.Owner = &vv
		case fCreatedAt:
			t, err := parseTime(v)
			if err != nil {
				return row, bad(err)
			}
			t = t.Truncate(time.Millisecond)
			p.CreatedAt = &t
		}
	}
	if len(region) > 0 {
		r := joinRegion(region)
		p.Region = &r
	}
	return row, nil
}

// joinRegion joins province and city columns, dropping a repeat (北京市, 北京市).
func joinRegion(parts []string) string {
	out := parts[:0:0]
	for _, p := range parts {
		if len(out) == 0 || out[len(out)-1] != p {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

func (im *customerImport) write(tx *store.Tx, row customerRow, _ *Report) (outcome, error) {
	p := &row.patch
	if err := tx.CheckPatch(p); err != nil {
		return 0, err
	}
	known := make([]int64, len(row.ids))
	for i, id := range row.ids {
		cid, err := tx.CustomerByIdentity(id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return 0, err
		}
		known[i] = cid
	}
	res, err := tx.Resolve(row.ids, "import")
	if err != nil {
		return 0, err
	}
	if res.Created {
		if p.Source == nil && im.source != "" {
			p.Source = &im.source
		}
		return created, tx.ApplyPatch(res.CustomerID, p)
	}
	changed := len(res.Merged) > 0
	for i, id := range row.ids {
		if known[i] != 0 {
			continue
		}
		cid, err := tx.CustomerByIdentity(id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return 0, err
		}
		if cid == res.CustomerID {
			changed = true // a new identity was attached
		}
	}
	ch, err := tx.PatchChanges(res.CustomerID, p)
	if err != nil {
		return 0, err
	}
	if ch {
		if err := tx.ApplyPatch(res.CustomerID, p); err != nil {
			return 0, err
		}
	}
	if ch || changed {
		return updated, nil
	}
	return unchanged, nil
}
