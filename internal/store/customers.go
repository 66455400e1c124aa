package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
)

const customerCols = `id, name, gender, birthday, region, phone, email, avatar_url, source, COALESCE(owner_id, 0), attrs, created_at, updated_at, last_seen_at, COALESCE(merged_into, 0)`

func scanCustomer(sc interface{ Scan(...any) error }) (*customer.Customer, error) {
	var (
		c                      customer.Customer
		attrs                  string
		created, updated, seen int64
	)
	if err := sc.Scan(&c.ID, &c.Name, &c.Gender, &c.Birthday, &c.Region, &c.Phone, &c.Email, &c.AvatarURL, &c.Source, &c.OwnerID, &attrs, &created, &updated, &seen, &c.MergedInto); err != nil {
		return nil, err
	}
	c.Attrs = map[string]any{}
	if attrs != "" {
		if err := json.Unmarshal([]byte(attrs), &c.Attrs); err != nil {
			return nil, fmt.Errorf("customer %d attrs: %w", c.ID, err)
		}
	}
	c.CreatedAt, c.UpdatedAt, c.LastSeenAt = fromMS(created), fromMS(updated), fromMS(seen)
	return &c, nil
}

// AttrDefRow is an attribute definition as stored.
type AttrDefRow = customer.AttrDef

// AttrDefs returns the attribute definitions, read once per transaction.
func (tx *Tx) AttrDefs() (map[string]AttrDefRow, error) {
	if tx.attrDefs != nil {
		return tx.attrDefs, nil
	}
	rows, err := tx.query(`SELECT key, type, label, created_at FROM attribute_defs`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	defs := map[string]AttrDefRow{}
	for rows.Next() {
		var d AttrDefRow
		var created int64
		if err := rows.Scan(&d.Key, &d.Type, &d.Label, &created); err != nil {
			return nil, err
		}
		d.CreatedAt = fromMS(created)
		defs[d.Key] = d
	}
	tx.attrDefs = defs
	return defs, rows.Err()
}

// CheckPatch validates a patch against the attribute definitions and normalises it in place:
// attribute values are coerced to their attribute's type (new attributes take the type of their
// first value), gender and birthday are normalised, channels checked. It writes nothing; a bad
// field comes back as a *customer.FieldError.
func (tx *Tx) CheckPatch(p *customer.Patch) error {
	if p.Gender != nil {
		g, err := customer.NormalizeGender(*p.Gender)
		if err != nil {
			return &customer.FieldError{Field: "gender", Reason: err.Error()}
		}
		p.Gender = &g
	}
	if p.Birthday != nil {
		d, err := customer.NormalizeDate(*p.Birthday)
		if err != nil {
			return &customer.FieldError{Field: "birthday", Reason: err.Error()}
		}
		p.Birthday = &d
	}
	for _, f := range []struct {
		name string
		v    *string
		max  int
	}{{"name", p.Name, 200}, {"region", p.Region, 200}, {"phone", p.Phone, 64}, {"email", p.Email, 320}, {"avatar_url", p.AvatarURL, 2048}, {"source", p.Source, 200}} {
		if f.v != nil && len(*f.v) > f.max {
			return &customer.FieldError{Field: f.name, Reason: fmt.Sprintf("longer than %d bytes", f.max)}
		}
	}
	for ch := range p.OptOut {
		if !customer.ValidChannel(ch) {
			return &customer.FieldError{Field: "opt_out." + ch, Reason: "unknown channel (want one of " + strings.Join(customer.Channels, ", ") + ")"}
		}
	}
	if len(p.Attrs) == 0 {
		return nil
	}
	defs, err := tx.AttrDefs()
	if err != nil {
		return err
	}
	if len(p.Attrs) > 200 {
		return &customer.FieldError{Field: "traits", Reason: "more than 200 attributes in one change"}
	}
	for k, v := range p.Attrs {
		field := "attrs." + k
		if !customer.ValidAttrKey(k) {
			return &customer.FieldError{Field: field, Reason: "invalid attribute name (letters, digits, _ . -; at most 64)"}
		}
		if v == nil {
			continue
		}
		var t customer.AttrType
		if d, ok := defs[k]; ok {
			t = d.Type
		} else {
			inferred, err := customer.InferAttrType(v)
			if err != nil {
				return &customer.FieldError{Field: field, Reason: err.Error()}
			}
			t = inferred
		}
		cv, err := customer.CoerceAttr(t, v)
		if err != nil {
			return &customer.FieldError{Field: field, Reason: fmt.Sprintf("%v (attribute is of type %s)", err, t)}
		}
		p.Attrs[k] = cv
	}
	return nil
}

// defineAttrs records the type of attributes seen for the first time.
func (tx *Tx) defineAttrs(attrs map[string]any) error {
	defs, err := tx.AttrDefs()
	if err != nil {
		return err
	}
	for k, v := range attrs {
		if v == nil {
			continue
		}
		if _, ok := defs[k]; ok {
			continue
		}
		t, err := customer.InferAttrType(v)
		if err != nil {
			return err
		}
		now := ms(tx.Now())
		if _, err := tx.exec(`INSERT INTO attribute_defs (key, type, label, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`, k, string(t), k, now); err != nil {
			return fmt.Errorf("define attribute %s: %w", k, err)
		}
		defs[k] = AttrDefRow{Key: k, Type: t, Label: k, CreatedAt: fromMS(now)}
	}
	return nil
}

// DefineAttr creates or changes the label of an attribute definition. Changing the type of an
// attribute that has values is refused.
func (s *Store) DefineAttr(ctx context.Context, d customer.AttrDef) error {
	if !customer.ValidAttrKey(d.Key) {
		return &customer.FieldError{Field: "key", Reason: "invalid attribute name"}
	}
	if !customer.ValidAttrType(d.Type) {
		return &customer.FieldError{Field: "type", Reason: "want string, number, bool, date or list"}
	}
	return s.InTx(ctx, func(tx *Tx) error {
		defs, err := tx.AttrDefs()
		if err != nil {
			return err
		}
		if old, ok := defs[d.Key]; ok {
			if old.Type != d.Type {
				return &customer.FieldError{Field: "type", Reason: fmt.Sprintf("attribute %s is already of type %s", d.Key, old.Type)}
			}
			_, err := tx.exec(`UPDATE attribute_defs SET label = ? WHERE key = ?`, d.Label, d.Key)
			return err
		}
		label := d.Label
		if label == "" {
			label = d.Key
		}
		_, err = tx.exec(`INSERT INTO attribute_defs (key, type, label, created_at) VALUES (?, ?, ?, ?)`, d.Key, string(d.Type), label, ms(tx.Now()))
		return err
	})
}

// AttrDefs lists the attribute definitions by key. It reads outside a transaction, so on
// SQLite it never waits for the write lock.
func (s *Store) AttrDefs(ctx context.Context) ([]customer.AttrDef, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT key, type, label, created_at FROM attribute_defs ORDER BY key`)
	return collect(rows, err, func(sc interface{ Scan(...any) error }) (customer.AttrDef, error) {
		var d customer.AttrDef
		var created int64
		err := sc.Scan(&d.Key, &d.Type, &d.Label, &created)
		d.CreatedAt = fromMS(created)
		return d, err
	})
}

// staffIDByLogin finds the owner named in a patch.
func (tx *Tx) staffIDByLogin(login string) (int64, error) {
	var id int64
	err := tx.row(`SELECT id FROM staff WHERE login = ? OR (email = ? AND email <> '')`, login, login).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, &customer.FieldError{Field: "owner", Reason: fmt.Sprintf("no staff member with login %q", login)}
	}
	return id, err
}

// patchDiff is what a checked patch would change on a customer: the column assignments and
// the opt-outs to set or clear. Values equal to the stored ones are left out, so that applying
// the same data twice (a re-import, a resent identify) writes nothing.
type patchDiff struct {
	sets    []string
	args    []any
	attrs   bool // attrs change: new attribute definitions may be needed
	optOuts map[string]bool
	// owner is the change of owner, recorded in the owner history (ownership.go).
	owner *OwnerChange
}

func (d *patchDiff) empty() bool { return len(d.sets) == 0 && len(d.optOuts) == 0 }

func (tx *Tx) diffPatch(id int64, p *customer.Patch) (*patchDiff, error) {
	var (
		cur     [8]string
		owner   int64
		attrs   string
		created int64
	)
	err := tx.row(`SELECT name, gender, birthday, region, phone, email, avatar_url, source, COALESCE(owner_id, 0), attrs, created_at FROM customers WHERE id = ?`, id).
		Scan(&cur[0], &cur[1], &cur[2], &cur[3], &cur[4], &cur[5], &cur[6], &cur[7], &owner, &attrs, &created)
	if err != nil {
		return nil, fmt.Errorf("customer %d: %w", id, err)
	}
	d := &patchDiff{}
	for i, f := range []struct {
		col string
		v   *string
	}{{"name", p.Name}, {"gender", p.Gender}, {"birthday", p.Birthday}, {"region", p.Region}, {"phone", p.Phone}, {"email", p.Email}, {"avatar_url", p.AvatarURL}, {"source", p.Source}} {
		if f.v != nil && *f.v != cur[i] {
			d.sets = append(d.sets, f.col+" = ?")
			d.args = append(d.args, *f.v)
		}
	}
	if p.Owner != nil {
		if *p.Owner == "" {
			if owner != 0 {
				d.sets = append(d.sets, "owner_id = NULL")
				d.owner = &OwnerChange{CustomerID: id, FromID: owner, Reason: OwnerProfile}
			}
		} else {
			sid, err := tx.staffIDByLogin(*p.Owner)
			if err != nil {
				return nil, err
			}
			if sid != owner {
				d.sets = append(d.sets, "owner_id = ?")
				d.args = append(d.args, sid)
				d.owner = &OwnerChange{CustomerID: id, FromID: owner, ToID: sid, Reason: OwnerProfile}
			}
		}
	}
	if p.CreatedAt != nil && !p.CreatedAt.IsZero() && ms(*p.CreatedAt) != created {
		d.sets = append(d.sets, "created_at = ?")
		d.args = append(d.args, ms(*p.CreatedAt))
	}
	if len(p.Attrs) > 0 {
		old := map[string]any{}
		if attrs != "" {
			if err := json.Unmarshal([]byte(attrs), &old); err != nil {
				return nil, err
			}
		}
		// Compare canonical JSON: the engines return stored JSON in their own spacing.
		before, err := json.Marshal(old)
		if err != nil {
			return nil, err
		}
		for k, v := range p.Attrs {
			if v == nil {
				delete(old, k)
			} else {
				old[k] = v
			}
		}
		after, err := json.Marshal(old)
		if err != nil {
			return nil, err
		}
		if string(before) != string(after) {
			d.sets = append(d.sets, "attrs = ?")
			d.args = append(d.args, string(after))
			d.attrs = true
		}
	}
	for ch, out := range p.OptOut {
		var n int
		if err := tx.row(`SELECT COUNT(*) FROM customer_optouts WHERE customer_id = ? AND channel = ?`, id, ch).Scan(&n); err != nil {
			return nil, err
		}
		if out != (n > 0) {
			if d.optOuts == nil {
				d.optOuts = map[string]bool{}
			}
			d.optOuts[ch] = out
		}
	}
	return d, nil
}

// PatchChanges reports whether applying a checked patch would change the customer, without
// writing: importers use it to tell updated rows from unchanged ones.
func (tx *Tx) PatchChanges(id int64, p *customer.Patch) (bool, error) {
	if p.Empty() {
		return false, nil
	}
	d, err := tx.diffPatch(id, p)
	if err != nil {
		return false, err
	}
	return !d.empty(), nil
}

// ApplyPatch writes a checked patch (see CheckPatch) to a customer. Fields that already hold
// the patch's values are not written, and a patch that changes nothing leaves the row, and its
// updated_at, alone.
func (tx *Tx) ApplyPatch(id int64, p *customer.Patch) error {
	if p.Empty() {
		return nil
	}
	d, err := tx.diffPatch(id, p)
	if err != nil {
		return err
	}
	if len(d.sets) > 0 || len(d.optOuts) > 0 {
		tx.noteCustomer(id)
	}
	now := ms(tx.Now())
	if len(d.sets) > 0 {
		if d.attrs {
			if err := tx.defineAttrs(p.Attrs); err != nil {
				return err
			}
		}
		sets := append(d.sets, "updated_at = ?")
		args := append(d.args, now, id)
		if _, err := tx.exec(`UPDATE customers SET `+strings.Join(sets, ", ")+` WHERE id = ?`, args...); err != nil {
			return fmt.Errorf("update customer %d: %w", id, err)
		}
		if d.owner != nil {
			if err := tx.recordOwnerChanges([]*OwnerChange{d.owner}); err != nil {
				return err
			}
		}
	}
	for ch, out := range d.optOuts {
		var err error
		if out {
			_, err = tx.exec(`INSERT INTO customer_optouts (customer_id, channel, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, id, ch, now)
		} else {
			_, err = tx.exec(`DELETE FROM customer_optouts WHERE customer_id = ? AND channel = ?`, id, ch)
		}
		if err != nil {
			return fmt.Errorf("opt-out %s: %w", ch, err)
		}
	}
	return nil
}

// CreateCustomer inserts a customer with the given identities and returns its id.
func (tx *Tx) CreateCustomer(ids []customer.Identity, createdAt time.Time) (int64, error) {
	now := ms(tx.Now())
	c := ms(createdAt)
	if c == 0 {
		c = now
	}
	var id int64
	if err := tx.row(`INSERT INTO customers (created_at, updated_at) VALUES (?, ?) RETURNING id`, c, now).Scan(&id); err != nil {
		return 0, fmt.Errorf("create customer: %w", err)
	}
	tx.noteCustomer(id)
	for _, ident := range ids {
		if _, err := tx.exec(`INSERT INTO identities (kind, value, customer_id, created_at) VALUES (?, ?, ?, ?)`, string(ident.Kind), ident.Value, id, now); err != nil {
			if isUniqueViolation(err) {
				return 0, ErrConflict
			}
			return 0, fmt.Errorf("add identity %s: %w", ident.Kind, err)
		}
	}
	return id, nil
}

// Resolution is the outcome of resolving a message's identities.
type Resolution struct {
	CustomerID int64
	Created    bool
	// Merged lists the customers merged into CustomerID by this resolution.
	Merged []int64
}

// Resolve finds the one customer that a message's identities name, creating it when none is
// known and merging customers when the identities link several (the customer of the strongest
// identity survives; see customer.IdentityKinds). A customer holds at most one user_id: a
// customer with a different user_id is never merged, and a new user_id that would collide gets
// a customer of its own. Identities not yet known are attached to the result.
func (tx *Tx) Resolve(ids []customer.Identity, reason string) (Resolution, error) {
	ids = dedupeIdentities(ids)
	if len(ids) == 0 {
		return Resolution{}, &customer.FieldError{Field: "userId", Reason: "userId or anonymousId is required"}
	}
	customer.SortIdentities(ids)
	owner := make([]int64, len(ids)) // customer per identity, 0 when unknown
	var found []int64                // distinct customers, strongest identity first
	for i, ident := range ids {
		err := tx.row(`SELECT customer_id FROM identities WHERE kind = ? AND value = ?`, string(ident.Kind), ident.Value).Scan(&owner[i])
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return Resolution{}, fmt.Errorf("resolve %s: %w", ident.Kind, err)
		}
		if owner[i] != 0 && !containsID(found, owner[i]) {
			found = append(found, owner[i])
		}
	}
	msgUser := ""
	if ids[0].Kind == customer.UserID {
		msgUser = ids[0].Value
	}
	userOf := map[int64]string{}
	for _, c := range found {
		u, err := tx.userIDOf(c)
		if err != nil {
			return Resolution{}, err
		}
		userOf[c] = u
	}
	var res Resolution
	switch {
	case msgUser != "" && owner[0] != 0:
		res.CustomerID = owner[0]
	case msgUser != "":
		for _, c := range found {
			if userOf[c] == "" {
				res.CustomerID = c
				break
			}
		}
	case len(found) > 0:
		res.CustomerID = found[0]
	}
	var unknown []customer.Identity
	for i, ident := range ids {
		if owner[i] == 0 {
			unknown = append(unknown, ident)
		}
	}
	if res.CustomerID == 0 {
		id, err := tx.CreateCustomer(unknown, time.Time{})
		if err != nil {
			return Resolution{}, err
		}
		return Resolution{CustomerID: id, Created: true}, nil
	}
	targetUser := userOf[res.CustomerID]
	if targetUser == "" {
		targetUser = msgUser
	}
	for _, c := range found {
		if c == res.CustomerID {
			continue
		}
		if u := userOf[c]; u != "" && targetUser != "" && u != targetUser {
			continue // two different user ids: two people who share a phone or an email
		}
		if err := tx.Merge(c, res.CustomerID, reason); err != nil {
			return Resolution{}, err
		}
		if userOf[c] != "" {
			targetUser = userOf[c]
		}
		res.Merged = append(res.Merged, c)
	}
	now := ms(tx.Now())
	for _, ident := range unknown {
		if ident.Kind == customer.UserID && targetUser != "" && targetUser != ident.Value {
			continue
		}
		if _, err := tx.exec(`INSERT INTO identities (kind, value, customer_id, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`, string(ident.Kind), ident.Value, res.CustomerID, now); err != nil {
			return Resolution{}, fmt.Errorf("add identity %s: %w", ident.Kind, err)
		}
	}
	return res, nil
}

func (tx *Tx) userIDOf(customerID int64) (string, error) {
	var u string
	err := tx.row(`SELECT value FROM identities WHERE customer_id = ? AND kind = ?`, customerID, string(customer.UserID)).Scan(&u)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return u, err
}

func dedupeIdentities(ids []customer.Identity) []customer.Identity {
	out := ids[:0:0]
	seen := map[customer.Identity]bool{}
	for _, id := range ids {
		id.Value = strings.TrimSpace(id.Value)
		if id.Value == "" || seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, id)
	}
	return out
}

func containsID(ids []int64, id int64) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// MergeHook moves a capability's own per-customer rows when customer from merges into into.
// Packages that add per-customer tables (tags, touches, …) register one in their store file.
type MergeHook func(tx *Tx, from, into int64) error

var mergeHooks []MergeHook

// Merge folds customer from into customer into: events, orders, identities, opt-outs and every
// registered capability's rows follow; empty profile fields and missing attributes of into are
// filled from from; the merge is recorded and from keeps a pointer to into.
func (tx *Tx) Merge(from, into int64, reason string) error {
	if from == into {
		return nil
	}
	a, err := scanCustomer(tx.row(`SELECT `+customerCols+` FROM customers WHERE id = ?`, from))
	if err != nil {
		return fmt.Errorf("merge: customer %d: %w", from, err)
	}
	b, err := scanCustomer(tx.row(`SELECT `+customerCols+` FROM customers WHERE id = ?`, into))
	if err != nil {
		return fmt.Errorf("merge: customer %d: %w", into, err)
	}
	for _, st := range []string{
		`UPDATE events SET customer_id = ? WHERE customer_id = ?`,
		`UPDATE orders SET customer_id = ? WHERE customer_id = ?`,
		`UPDATE identities SET customer_id = ? WHERE customer_id = ?`,
		`INSERT INTO customer_optouts (customer_id, channel, created_at) SELECT ?, channel, created_at FROM customer_optouts WHERE customer_id = ? ON CONFLICT DO NOTHING`,
		`UPDATE customers SET merged_into = ? WHERE merged_into = ?`,
	} {
		if _, err := tx.exec(st, into, from); err != nil {
			return fmt.Errorf("merge %d into %d: %w", from, into, err)
		}
	}
	if _, err := tx.exec(`DELETE FROM customer_optouts WHERE customer_id = ?`, from); err != nil {
		return err
	}
	for _, h := range mergeHooks {
		if err := h(tx, from, into); err != nil {
			return fmt.Errorf("merge %d into %d: %w", from, into, err)
		}
	}
	fill := func(dst *string, src string) {
		if *dst == "" {
			*dst = src
		}
	}
	fill(&b.Name, a.Name)
	fill(&b.Gender, a.Gender)
	fill(&b.Birthday, a.Birthday)
	fill(&b.Region, a.Region)
	fill(&b.Phone, a.Phone)
	fill(&b.Email, a.Email)
	fill(&b.AvatarURL, a.AvatarURL)
	fill(&b.Source, a.Source)
	if b.OwnerID == 0 {
		b.OwnerID = a.OwnerID
	}
	for k, v := range a.Attrs {
		if _, ok := b.Attrs[k]; !ok {
			b.Attrs[k] = v
		}
	}
	if a.CreatedAt.Before(b.CreatedAt) {
		b.CreatedAt = a.CreatedAt
	}
	if a.LastSeenAt.After(b.LastSeenAt) {
		b.LastSeenAt = a.LastSeenAt
	}
	attrs, _ := json.Marshal(b.Attrs)
	var owner any
	if b.OwnerID != 0 {
		owner = b.OwnerID
	}
	now := ms(tx.Now())
	if _, err := tx.exec(`UPDATE customers SET name=?, gender=?, birthday=?, region=?, phone=?, email=?, avatar_url=?, source=?, owner_id=?, attrs=?, created_at=?, last_seen_at=?, updated_at=? WHERE id = ?`,
		b.Name, b.Gender, b.Birthday, b.Region, b.Phone, b.Email, b.AvatarURL, b.Source, owner, string(attrs), ms(b.CreatedAt), ms(b.LastSeenAt), now, into); err != nil {
		return err
	}
	if _, err := tx.exec(`UPDATE customers SET merged_into = ?, updated_at = ? WHERE id = ?`, into, now, from); err != nil {
		return err
	}
	tx.changes.Merges = append(tx.changes.Merges, MergeChange{From: from, Into: into})
	tx.noteCustomer(into)
	_, err = tx.exec(`INSERT INTO customer_merges (from_id, into_id, reason, merged_at) VALUES (?, ?, ?, ?)`, from, into, reason, now)
	return err
}

// TouchLastSeen moves a customer's last-seen time forward to t.
func (tx *Tx) TouchLastSeen(id int64, t time.Time) error {
	_, err := tx.exec(`UPDATE customers SET last_seen_at = ? WHERE id = ? AND last_seen_at < ?`, ms(t), id, ms(t))
	return err
}

// Customer returns one customer (also one merged away: see MergedInto).
func (s *Store) Customer(ctx context.Context, id int64) (*customer.Customer, error) {
	c, err := scanCustomer(s.db.QueryRowContext(ctx, s.q(`SELECT `+customerCols+` FROM customers WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT channel FROM customer_optouts WHERE customer_id = ? ORDER BY channel`), id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	c.OptOuts = []string{}
	for rows.Next() {
		var ch string
		if err := rows.Scan(&ch); err != nil {
			return nil, err
		}
		c.OptOuts = append(c.OptOuts, ch)
	}
	return c, rows.Err()
}

// Identities lists a customer's identities, strongest first.
func (s *Store) Identities(ctx context.Context, customerID int64) ([]customer.Identity, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT kind, value FROM identities WHERE customer_id = ? ORDER BY kind, value`), customerID)
	out, err := collect(rows, err, func(sc interface{ Scan(...any) error }) (customer.Identity, error) {
		var i customer.Identity
		err := sc.Scan(&i.Kind, &i.Value)
		return i, err
	})
	if err != nil {
		return nil, err
	}
	customer.SortIdentities(out)
	return out, nil
}

// CustomerByIdentity finds the customer an identity belongs to.
func (s *Store) CustomerByIdentity(ctx context.Context, id customer.Identity) (int64, error) {
	var cid int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT customer_id FROM identities WHERE kind = ? AND value = ?`), string(id.Kind), id.Value).Scan(&cid)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, ErrNotFound
	}
	return cid, err
}

// Merge is a recorded merge.
type Merge struct {
	FromID   int64     `json:"from_id"`
	IntoID   int64     `json:"into_id"`
	Reason   string    `json:"reason"`
	MergedAt time.Time `json:"merged_at"`
}

// Merges lists the merges into a customer, newest first.
func (s *Store) Merges(ctx context.Context, into int64) ([]Merge, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT from_id, into_id, reason, merged_at FROM customer_merges WHERE into_id = ? ORDER BY id DESC`), into)
	return collect(rows, err, func(sc interface{ Scan(...any) error }) (Merge, error) {
		var m Merge
		var at int64
		err := sc.Scan(&m.FromID, &m.IntoID, &m.Reason, &at)
		m.MergedAt = fromMS(at)
		return m, err
	})
}

// UpdateCustomer checks and applies a patch to one customer in one transaction.
func (s *Store) UpdateCustomer(ctx context.Context, id int64, p *customer.Patch) error {
	return s.InTx(ctx, func(tx *Tx) error {
		var merged sql.NullInt64
		if err := tx.row(`SELECT merged_into FROM customers WHERE id = ?`, id).Scan(&merged); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		if merged.Valid {
			return ErrNotFound
		}
		if err := tx.CheckPatch(p); err != nil {
			return err
		}
		return tx.ApplyPatch(id, p)
	})
}
