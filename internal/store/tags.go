package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// Tags: groups and tags, assignments with their history, and merges of customers' tags.
//
// Every change of a customer's tags writes one tag_history row (who, when, why, ref) and
// returns the applied []tag.Change; a no-op (assigning a held tag, removing one not held)
// writes nothing and returns nothing. Changed customers are also noted in the transaction's
// store.Changes (Customers), published to Subscribe'd functions after the commit. Bulk
// changes work a chunk of customers per statement, never a statement per customer.

func init() { mergeHooks = append(mergeHooks, mergeTags) }

// tagChunk is how many customers one assignment statement names: SQLite binds each id as a
// parameter (at most 32766 a statement), PostgreSQL takes them as one array.
func (s *Store) tagChunk() int {
	if s.engine == Postgres {
		return 50000
	}
	return 5000
}

// idSet writes "col IN (?,?,…)" on SQLite and "col = ANY(?)" with one array parameter on
// PostgreSQL, which plans and binds thousands of ids much faster that way.
func (s *Store) idSet(col string, ids []int64) (string, []any) {
	if s.engine == Postgres {
		return col + ` = ANY(CAST(? AS BIGINT[]))`, []any{ids}
	}
	return col + ` IN (` + inList(len(ids)) + `)`, idArgs(ids)
}

const (
	tagGroupCols = `id, name, kind, exclusive, position, created_at, updated_at`
	tagCols      = `id, group_id, name, color, position, created_at, updated_at`
)

func scanTagGroup(sc interface{ Scan(...any) error }) (*tag.Group, error) {
	var (
		g                tag.Group
		excl             int64
		created, updated int64
	)
	if err := sc.Scan(&g.ID, &g.Name, &g.Kind, &excl, &g.Position, &created, &updated); err != nil {
		return nil, err
	}
	g.Exclusive = excl != 0
	g.CreatedAt, g.UpdatedAt = fromMS(created), fromMS(updated)
	return &g, nil
}

func scanTag(sc interface{ Scan(...any) error }) (tag.Tag, error) {
	var (
		t                tag.Tag
		created, updated int64
	)
	err := sc.Scan(&t.ID, &t.GroupID, &t.Name, &t.Color, &t.Position, &created, &updated)
	t.CreatedAt, t.UpdatedAt = fromMS(created), fromMS(updated)
	return t, err
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// inList returns "?,?,…" for n parameters.
func inList(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

func idArgs(ids []int64) []any {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return args
}

// uniqueIDs returns ids sorted without duplicates or non-positive values.
func uniqueIDs(ids []int64) []int64 {
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if id > 0 {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// cleanTagGroup trims g's name and checks it and g's kind.
func cleanTagGroup(g *tag.Group) error {
	name, err := tag.CleanName("name", g.Name)
	if err != nil {
		return err
	}
	if !g.Kind.Valid() {
		return &customer.FieldError{Field: "kind", Reason: fmt.Sprintf("unknown kind %q (want follow_up, source, attribute, campaign or custom)", g.Kind)}
	}
	g.Name = name
	return nil
}

// groupNameTaken is the error of a second tag group with the same name.
func groupNameTaken(name string) error {
	return &customer.FieldError{Field: "name", Reason: fmt.Sprintf("a tag group named %q already exists", name)}
}

// cleanTag trims t's name and checks it and t's color.
func cleanTag(t *tag.Tag) error {
	name, err := tag.CleanName("name", t.Name)
	if err != nil {
		return err
	}
	if err := tag.CheckColor(t.Color); err != nil {
		return err
	}
	t.Name = name
	return nil
}

// CreateTagGroup adds a group at the end of the list (or at g.Position when set) and sets
// g.ID. Kind "" means custom.
func (s *Store) CreateTagGroup(ctx context.Context, g *tag.Group) error {
	if g.Kind == "" {
		g.Kind = tag.Custom
	}
	if err := cleanTagGroup(g); err != nil {
		return err
	}
	return s.InTx(ctx, func(tx *Tx) error {
		if g.Position == 0 {
			if err := tx.row(`SELECT COALESCE(MAX(position), 0) + 1 FROM tag_groups`).Scan(&g.Position); err != nil {
				return err
			}
		}
		now := tx.Now()
		err := tx.row(`INSERT INTO tag_groups (name, kind, exclusive, position, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			g.Name, string(g.Kind), boolInt(g.Exclusive), g.Position, ms(now), ms(now)).Scan(&g.ID)
		if isUniqueViolation(err) {
			return groupNameTaken(g.Name)
		}
		if err != nil {
			return fmt.Errorf("create tag group: %w", err)
		}
		g.CreatedAt, g.UpdatedAt = now, now
		return nil
	})
}

// UpdateTagGroup renames a group, changes its kind, or makes it single-choice or not.
// Making it single-choice is refused (ErrConflict and a *tag.ExclusiveConflictError) while
// customers hold more than one of its tags. Position is changed with ReorderTagGroups.
func (s *Store) UpdateTagGroup(ctx context.Context, g *tag.Group) error {
	if err := cleanTagGroup(g); err != nil {
		return err
	}
	return s.InTx(ctx, func(tx *Tx) error {
		old, err := tx.tagGroup(g.ID)
		if err != nil {
			return err
		}
		if g.Exclusive && !old.Exclusive {
			if err := tx.checkExclusive(g.Name, g.ID); err != nil {
				return err
			}
		}
		now := tx.Now()
		_, err = tx.exec(`UPDATE tag_groups SET name = ?, kind = ?, exclusive = ?, updated_at = ? WHERE id = ?`, g.Name, string(g.Kind), boolInt(g.Exclusive), ms(now), g.ID)
		if isUniqueViolation(err) {
			return groupNameTaken(g.Name)
		}
		if err != nil {
			return fmt.Errorf("update tag group %d: %w", g.ID, err)
		}
		g.Position, g.CreatedAt, g.UpdatedAt = old.Position, old.CreatedAt, now
		return nil
	})
}

// checkExclusive refuses when a customer holds more than one tag of the given groups taken
// together (the groups about to become one single-choice group).
func (tx *Tx) checkExclusive(name string, groupIDs ...int64) error {
	var n int
	err := tx.row(`SELECT COUNT(*) FROM (SELECT ct.customer_id FROM customer_tags ct JOIN tags t ON t.id = ct.tag_id
		WHERE t.group_id IN (`+inList(len(groupIDs))+`) GROUP BY ct.customer_id HAVING COUNT(*) > 1) x`, idArgs(groupIDs)...).Scan(&n)
	if err != nil {
		return fmt.Errorf("check single-choice group: %w", err)
	}
	if n > 0 {
		return fmt.Errorf("%w: %w", ErrConflict, &tag.ExclusiveConflictError{Group: name, Customers: n})
	}
	return nil
}

// ReorderTagGroups sets the order of the groups: ids lists every group once, first first.
func (s *Store) ReorderTagGroups(ctx context.Context, ids []int64) error {
	return s.InTx(ctx, func(tx *Tx) error {
		return tx.reorder("tag_groups", "group", `SELECT id FROM tag_groups`, nil, ids)
	})
}

// ReorderTags sets the order of a group's tags: ids lists every tag of the group once.
func (s *Store) ReorderTags(ctx context.Context, groupID int64, ids []int64) error {
	return s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.tagGroup(groupID); err != nil {
			return err
		}
		return tx.reorder("tags", "tag", `SELECT id FROM tags WHERE group_id = ?`, []any{groupID}, ids)
	})
}

func (tx *Tx) reorder(table, what, list string, args []any, ids []int64) error {
	have, err := tx.int64s(list, args...)
	if err != nil {
		return err
	}
	if len(ids) != len(uniqueIDs(ids)) {
		return &customer.FieldError{Field: "ids", Reason: "an id is listed twice"}
	}
	want := map[int64]bool{}
	for _, id := range have {
		want[id] = true
	}
	for i, id := range ids {
		if !want[id] {
			return &customer.FieldError{Field: fmt.Sprintf("ids[%d]", i), Reason: fmt.Sprintf("no %s %d here", what, id)}
		}
	}
	if len(ids) != len(have) {
		return &customer.FieldError{Field: "ids", Reason: fmt.Sprintf("list every %s once: got %d of %d", what, len(ids), len(have))}
	}
	now := ms(tx.Now())
	for i, id := range ids {
		if _, err := tx.exec(`UPDATE `+table+` SET position = ?, updated_at = ? WHERE id = ?`, i+1, now, id); err != nil {
			return fmt.Errorf("reorder %s: %w", table, err)
		}
	}
	return nil
}

func (tx *Tx) int64s(query string, args ...any) ([]int64, error) {
	rows, err := tx.query(query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

func (tx *Tx) tagGroup(id int64) (*tag.Group, error) {
	g, err := scanTagGroup(tx.row(`SELECT `+tagGroupCols+` FROM tag_groups WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return g, err
}

func (tx *Tx) tag(id int64) (tag.Tag, error) {
	t, err := scanTag(tx.row(`SELECT `+tagCols+` FROM tags WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, ErrNotFound
	}
	return t, err
}

// DeleteTagGroup deletes a group, doing with its tags what d says: DeleteTags removes them
// from every customer (each removal recorded in the history with d.Cause) and deletes them;
// MoveTags moves them into group d.Into with their assignments, refused with ErrConflict and
// a *tag.ExclusiveConflictError when Into is single-choice and customers would end up with
// two of its tags, and with a *customer.FieldError when Into already has a tag of the same
// name. Tags that a tag rule adds or removes cannot be deleted (the rule must change first).
func (s *Store) DeleteTagGroup(ctx context.Context, id int64, d tag.GroupDeletion) ([]tag.Change, error) {
	var changes []tag.Change
	err := s.InTx(ctx, func(tx *Tx) error {
		g, err := tx.tagGroup(id)
		if err != nil {
			return err
		}
		switch d.Mode {
		case tag.DeleteTags:
			ids, err := tx.int64s(`SELECT id FROM tags WHERE group_id = ?`, id)
			if err != nil {
				return err
			}
			if changes, err = tx.deleteTags(ids, d.Cause); err != nil {
				return err
			}
		case tag.MoveTags:
			if err := tx.moveTags(g, d.Into); err != nil {
				return err
			}
		default:
			return &customer.FieldError{Field: "mode", Reason: "say what becomes of the group's tags: delete_tags or move_tags"}
		}
		_, err = tx.exec(`DELETE FROM tag_groups WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return changes, nil
}

func (tx *Tx) moveTags(g *tag.Group, into int64) error {
	if into == g.ID || into <= 0 {
		return &customer.FieldError{Field: "into", Reason: "want another group to move the tags into"}
	}
	target, err := tx.tagGroup(into)
	if errors.Is(err, ErrNotFound) {
		return &customer.FieldError{Field: "into", Reason: fmt.Sprintf("no tag group %d", into)}
	}
	if err != nil {
		return err
	}
	var clash string
	err = tx.row(`SELECT a.name FROM tags a JOIN tags b ON a.name = b.name WHERE a.group_id = ? AND b.group_id = ? ORDER BY a.name LIMIT 1`, g.ID, into).Scan(&clash)
	if err == nil {
		return &customer.FieldError{Field: "into", Reason: fmt.Sprintf("group %q already has a tag named %q: rename one first", target.Name, clash)}
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if target.Exclusive {
		if err := tx.checkExclusive(target.Name, g.ID, into); err != nil {
			return err
		}
	}
	var maxPos int
	if err := tx.row(`SELECT COALESCE(MAX(position), 0) FROM tags WHERE group_id = ?`, into).Scan(&maxPos); err != nil {
		return err
	}
	_, err = tx.exec(`UPDATE tags SET group_id = ?, position = position + ?, updated_at = ? WHERE group_id = ?`, into, maxPos, ms(tx.Now()), g.ID)
	return err
}

// CreateTag adds a tag to a group (at the end, or at t.Position when set) and sets t.ID.
func (s *Store) CreateTag(ctx context.Context, t *tag.Tag) error {
	if err := cleanTag(t); err != nil {
		return err
	}
	return s.InTx(ctx, func(tx *Tx) error {
		g, err := tx.tagGroup(t.GroupID)
		if errors.Is(err, ErrNotFound) {
			return &customer.FieldError{Field: "group_id", Reason: fmt.Sprintf("no tag group %d", t.GroupID)}
		}
		if err != nil {
			return err
		}
		if t.Position == 0 {
			if err := tx.row(`SELECT COALESCE(MAX(position), 0) + 1 FROM tags WHERE group_id = ?`, t.GroupID).Scan(&t.Position); err != nil {
				return err
			}
		}
		now := tx.Now()
		err = tx.row(`INSERT INTO tags (group_id, name, color, position, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			t.GroupID, t.Name, t.Color, t.Position, ms(now), ms(now)).Scan(&t.ID)
		if isUniqueViolation(err) {
			return &customer.FieldError{Field: "name", Reason: fmt.Sprintf("group %q already has a tag named %q", g.Name, t.Name)}
		}
		if err != nil {
			return fmt.Errorf("create tag: %w", err)
		}
		t.CreatedAt, t.UpdatedAt = now, now
		return nil
	})
}

// UpdateTag renames a tag and changes its color; assignments, history and the rules that
// name the tag keep working (they hold its id). The group does not change here: see
// DeleteTagGroup with MoveTags.
func (s *Store) UpdateTag(ctx context.Context, t *tag.Tag) error {
	if err := cleanTag(t); err != nil {
		return err
	}
	return s.InTx(ctx, func(tx *Tx) error {
		old, err := tx.tag(t.ID)
		if err != nil {
			return err
		}
		now := tx.Now()
		_, err = tx.exec(`UPDATE tags SET name = ?, color = ?, updated_at = ? WHERE id = ?`, t.Name, t.Color, ms(now), t.ID)
		if isUniqueViolation(err) {
			return &customer.FieldError{Field: "name", Reason: fmt.Sprintf("the group already has a tag named %q", t.Name)}
		}
		if err != nil {
			return fmt.Errorf("update tag %d: %w", t.ID, err)
		}
		t.GroupID, t.Position, t.CreatedAt, t.UpdatedAt = old.GroupID, old.Position, old.CreatedAt, now
		return nil
	})
}

// DeleteTag removes a tag from every customer (recorded in the history with c) and deletes
// it. A tag that a tag rule adds or removes cannot be deleted.
func (s *Store) DeleteTag(ctx context.Context, id int64, c tag.Cause) ([]tag.Change, error) {
	var changes []tag.Change
	err := s.InTx(ctx, func(tx *Tx) error {
		if _, err := tx.tag(id); err != nil {
			return err
		}
		var err error
		changes, err = tx.deleteTags([]int64{id}, c)
		return err
	})
	if err != nil {
		return nil, err
	}
	return changes, nil
}

// deleteTags unassigns and deletes tags, recording the removals.
func (tx *Tx) deleteTags(ids []int64, c tag.Cause) ([]tag.Change, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if err := c.Check(); err != nil {
		return nil, err
	}
	if err := tx.refuseRuleTags(ids); err != nil {
		return nil, err
	}
	var changes []tag.Change
	for _, id := range ids {
		holders, err := tx.int64s(`SELECT customer_id FROM customer_tags WHERE tag_id = ? ORDER BY customer_id`, id)
		if err != nil {
			return nil, err
		}
		_, err = tx.exec(`INSERT INTO tag_history (customer_id, tag_id, action, at, by_staff, reason, ref)
			SELECT customer_id, tag_id, CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT) FROM customer_tags WHERE tag_id = ?`,
			string(tag.Remove), ms(tx.Now()), nullID(c.By), string(c.Reason), c.Ref, id)
		if err != nil {
			return nil, fmt.Errorf("delete tag %d: history: %w", id, err)
		}
		if _, err := tx.exec(`DELETE FROM customer_tags WHERE tag_id = ?`, id); err != nil {
			return nil, fmt.Errorf("delete tag %d: %w", id, err)
		}
		if _, err := tx.exec(`INSERT INTO deleted_tags (id, name, group_name, deleted_at)
			SELECT t.id, t.name, COALESCE(g.name, ''), CAST(? AS BIGINT) FROM tags t LEFT JOIN tag_groups g ON g.id = t.group_id WHERE t.id = ?`,
			ms(tx.Now()), id); err != nil {
			return nil, fmt.Errorf("delete tag %d: keep its name: %w", id, err)
		}
		if _, err := tx.exec(`DELETE FROM tags WHERE id = ?`, id); err != nil {
			return nil, fmt.Errorf("delete tag %d: %w", id, err)
		}
		for _, cid := range holders {
			changes = append(changes, tag.Change{CustomerID: cid, TagID: id, Action: tag.Remove})
		}
		tx.noteCustomer(holders...)
	}
	return changes, nil
}

// tagMeta is what assignment needs to know of a tag.
type tagMeta struct {
	group     int64
	groupName string
	name      string
	exclusive bool
}

func (tx *Tx) tagMetas(ids []int64) (map[int64]tagMeta, error) {
	out := make(map[int64]tagMeta, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := tx.query(`SELECT t.id, t.group_id, g.name, t.name, g.exclusive FROM tags t JOIN tag_groups g ON g.id = t.group_id WHERE t.id IN (`+inList(len(ids))+`)`, idArgs(ids)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id   int64
			m    tagMeta
			excl int64
		)
		if err := rows.Scan(&id, &m.group, &m.groupName, &m.name, &excl); err != nil {
			return nil, err
		}
		m.exclusive = excl != 0
		out[id] = m
	}
	return out, rows.Err()
}

// checkTagSet validates tags to be added and removed together: every tag exists, none is
// both added and removed, and at most one added tag per single-choice group. field names the
// list in errors ("tag_ids", "actions.add").
func (tx *Tx) checkTagSet(add, remove []int64, addField, removeField string) (map[int64]tagMeta, error) {
	metas, err := tx.tagMetas(uniqueIDs(append(append([]int64{}, add...), remove...)))
	if err != nil {
		return nil, err
	}
	inAdd := map[int64]bool{}
	byGroup := map[int64]int64{}
	for i, id := range add {
		m, ok := metas[id]
		if !ok {
			return nil, &customer.FieldError{Field: fmt.Sprintf("%s[%d]", addField, i), Reason: fmt.Sprintf("no tag %d", id)}
		}
		inAdd[id] = true
		if prev, ok := byGroup[m.group]; ok && m.exclusive && prev != id {
			return nil, &customer.FieldError{Field: fmt.Sprintf("%s[%d]", addField, i), Reason: fmt.Sprintf("%q and %q are both in the single-choice group %q: add one", metas[prev].name, m.name, m.groupName)}
		}
		byGroup[m.group] = id
	}
	for i, id := range remove {
		if _, ok := metas[id]; !ok {
			return nil, &customer.FieldError{Field: fmt.Sprintf("%s[%d]", removeField, i), Reason: fmt.Sprintf("no tag %d", id)}
		}
		if inAdd[id] {
			return nil, &customer.FieldError{Field: fmt.Sprintf("%s[%d]", removeField, i), Reason: fmt.Sprintf("tag %d is both added and removed", id)}
		}
	}
	return metas, nil
}

// ChangeTags adds the add tags to every customer in customerIDs and removes the remove tags,
// recording each real change in the history with c. It is idempotent: a customer already
// holding a tag keeps its original assignment and no history is written. Adding a tag of a
// single-choice group removes the customer's other tags of that group (recorded as removals
// with the same cause). Customers that do not exist or were merged away are skipped. Work
// goes tagChunk customers per statement, in the caller's transaction.
func (tx *Tx) ChangeTags(customerIDs, add, remove []int64, c tag.Cause) ([]tag.Change, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	add, remove = uniqueIDs(add), uniqueIDs(remove)
	if len(add) == 0 && len(remove) == 0 {
		return nil, nil
	}
	metas, err := tx.checkTagSet(add, remove, "tag_ids", "tag_ids")
	if err != nil {
		return nil, err
	}
	customers := uniqueIDs(customerIDs)
	if len(customers) == 0 {
		return nil, nil
	}
	// Removals: the remove tags and, per added tag of a single-choice group, its siblings.
	drop := slices.Clone(remove)
	var exclGroups []int64
	for _, id := range add {
		if m := metas[id]; m.exclusive {
			exclGroups = append(exclGroups, m.group)
		}
	}
	if len(exclGroups) > 0 {
		sib, err := tx.int64s(`SELECT id FROM tags WHERE group_id IN (`+inList(len(exclGroups))+`)`, idArgs(exclGroups)...)
		if err != nil {
			return nil, err
		}
		for _, id := range sib {
			if !slices.Contains(add, id) {
				drop = append(drop, id)
			}
		}
		drop = uniqueIDs(drop)
	}
	now := ms(tx.Now())
	var changes []tag.Change
	chunk := tx.s.tagChunk()
	for start := 0; start < len(customers); start += chunk {
		part := customers[start:min(start+chunk, len(customers))]
		inPart, partArgs := tx.s.idSet("customer_id", part)
		n := len(changes)
		if len(drop) > 0 {
			rows, err := tx.query(`DELETE FROM customer_tags WHERE tag_id IN (`+inList(len(drop))+`) AND `+inPart+` RETURNING customer_id, tag_id`,
				append(idArgs(drop), partArgs...)...)
			if err != nil {
				return nil, fmt.Errorf("remove tags: %w", err)
			}
			for rows.Next() {
				ch := tag.Change{Action: tag.Remove}
				if err := rows.Scan(&ch.CustomerID, &ch.TagID); err != nil {
					rows.Close()
					return nil, err
				}
				changes = append(changes, ch)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, err
			}
		}
		inIDs, _ := tx.s.idSet("id", part)
		for _, id := range add {
			rows, err := tx.query(`INSERT INTO customer_tags (customer_id, tag_id, assigned_at, assigned_by, reason, ref)
				SELECT id, CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT) FROM customers
				WHERE `+inIDs+` AND merged_into IS NULL
				ON CONFLICT (customer_id, tag_id) DO NOTHING RETURNING customer_id`,
				append([]any{id, now, nullID(c.By), string(c.Reason), c.Ref}, partArgs...)...)
			if err != nil {
				return nil, fmt.Errorf("add tag %d: %w", id, err)
			}
			for rows.Next() {
				ch := tag.Change{TagID: id, Action: tag.Add}
				if err := rows.Scan(&ch.CustomerID); err != nil {
					rows.Close()
					return nil, err
				}
				changes = append(changes, ch)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, err
			}
		}
		if err := tx.recordTagHistory(changes[n:], now, c); err != nil {
			return nil, err
		}
	}
	tx.noteTagChanges(changes)
	return changes, nil
}

// noteTagChanges notes the changed customers for the commit's subscribers.
func (tx *Tx) noteTagChanges(changes []tag.Change) {
	if len(changes) == 0 {
		return
	}
	ids := make([]int64, len(changes))
	for i, ch := range changes {
		ids[i] = ch.CustomerID
	}
	tx.noteCustomer(uniqueIDs(ids)...)
}

// recordTagHistory writes one history row per change, in multi-row statements (PostgreSQL:
// three arrays unnested).
func (tx *Tx) recordTagHistory(changes []tag.Change, at int64, c tag.Cause) error {
	if len(changes) == 0 {
		return nil
	}
	if tx.s.engine == Postgres {
		cs, ts, as := make([]int64, len(changes)), make([]int64, len(changes)), make([]string, len(changes))
		for i, ch := range changes {
			cs[i], ts[i], as[i] = ch.CustomerID, ch.TagID, string(ch.Action)
		}
		if _, err := tx.exec(`INSERT INTO tag_history (customer_id, tag_id, action, at, by_staff, reason, ref)
			SELECT c, t, a, CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT)
			FROM unnest(CAST(? AS BIGINT[]), CAST(? AS BIGINT[]), CAST(? AS TEXT[])) AS v(c, t, a)`,
			at, nullID(c.By), string(c.Reason), c.Ref, cs, ts, as); err != nil {
			return fmt.Errorf("tag history: %w", err)
		}
		return nil
	}
	// SQLite: a plain multi-row INSERT is its fast path (a CTE over VALUES copies every row's
	// expressions, which showed in profiles).
	by := nullID(c.By)
	return tx.insertRows("tag_history", []string{"customer_id", "tag_id", "action", "at", "by_staff", "reason", "ref"}, len(changes), func(i int, args []any) ([]any, error) {
		ch := changes[i]
		return append(args, ch.CustomerID, ch.TagID, string(ch.Action), at, by, string(c.Reason), c.Ref), nil
	})
}

// AssignTags adds tags to customers in one transaction (see ChangeTags). The caller
// resolves a segment or a CSV list to customer ids.
func (s *Store) AssignTags(ctx context.Context, customerIDs, tagIDs []int64, c tag.Cause) ([]tag.Change, error) {
	return s.changeTags(ctx, customerIDs, tagIDs, nil, c)
}

// RemoveTags removes tags from customers in one transaction (see ChangeTags).
func (s *Store) RemoveTags(ctx context.Context, customerIDs, tagIDs []int64, c tag.Cause) ([]tag.Change, error) {
	return s.changeTags(ctx, customerIDs, nil, tagIDs, c)
}

// AssignTag adds one tag to one customer: ErrNotFound when the customer does not exist or
// was merged away, a *customer.FieldError when the tag does not exist.
func (s *Store) AssignTag(ctx context.Context, customerID, tagID int64, c tag.Cause) ([]tag.Change, error) {
	return s.changeOne(ctx, customerID, []int64{tagID}, nil, c)
}

// RemoveTag removes one tag from one customer (see AssignTag).
func (s *Store) RemoveTag(ctx context.Context, customerID, tagID int64, c tag.Cause) ([]tag.Change, error) {
	return s.changeOne(ctx, customerID, nil, []int64{tagID}, c)
}

func (s *Store) changeOne(ctx context.Context, customerID int64, add, remove []int64, c tag.Cause) ([]tag.Change, error) {
	var changes []tag.Change
	err := s.InTx(ctx, func(tx *Tx) error {
		var n int
		if err := tx.row(`SELECT COUNT(*) FROM customers WHERE id = ? AND merged_into IS NULL`, customerID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		var err error
		changes, err = tx.ChangeTags([]int64{customerID}, add, remove, c)
		return err
	})
	if err != nil {
		return nil, err
	}
	return changes, nil
}

func (s *Store) changeTags(ctx context.Context, customerIDs, add, remove []int64, c tag.Cause) ([]tag.Change, error) {
	var changes []tag.Change
	err := s.InTx(ctx, func(tx *Tx) error {
		var err error
		changes, err = tx.ChangeTags(customerIDs, add, remove, c)
		return err
	})
	if err != nil {
		return nil, err
	}
	return changes, nil
}

// mergeTags moves a merged customer's tags and tag history to the survivor. Where both hold
// a tag of one single-choice group the survivor's tag stays and the merged customer's is
// dropped, recorded as a removal with reason merge.
func mergeTags(tx *Tx, from, into int64) error {
	if _, err := tx.exec(`UPDATE tag_history SET customer_id = ? WHERE customer_id = ?`, into, from); err != nil {
		return fmt.Errorf("move tag history: %w", err)
	}
	dropped, err := tx.int64s(`SELECT ct.tag_id FROM customer_tags ct JOIN tags t ON t.id = ct.tag_id JOIN tag_groups g ON g.id = t.group_id
		WHERE ct.customer_id = ? AND g.exclusive <> 0
		AND EXISTS (SELECT 1 FROM customer_tags c2 JOIN tags t2 ON t2.id = c2.tag_id WHERE c2.customer_id = ? AND t2.group_id = t.group_id AND c2.tag_id <> ct.tag_id)`, from, into)
	if err != nil {
		return fmt.Errorf("move tags: %w", err)
	}
	skip := ""
	if len(dropped) > 0 {
		skip = ` AND tag_id NOT IN (` + inList(len(dropped)) + `)`
	}
	if _, err := tx.exec(`INSERT INTO customer_tags (customer_id, tag_id, assigned_at, assigned_by, reason, ref)
		SELECT CAST(? AS BIGINT), tag_id, assigned_at, assigned_by, reason, ref FROM customer_tags WHERE customer_id = ?`+skip+`
		ON CONFLICT (customer_id, tag_id) DO NOTHING`, append([]any{into, from}, idArgs(dropped)...)...); err != nil {
		return fmt.Errorf("move tags: %w", err)
	}
	if _, err := tx.exec(`DELETE FROM customer_tags WHERE customer_id = ?`, from); err != nil {
		return fmt.Errorf("move tags: %w", err)
	}
	changes := make([]tag.Change, len(dropped))
	for i, id := range dropped {
		changes[i] = tag.Change{CustomerID: into, TagID: id, Action: tag.Remove}
	}
	return tx.recordTagHistory(changes, ms(tx.Now()), tag.Cause{Reason: tag.ReasonMerge, Ref: fmt.Sprintf("merge:%d", from)})
}

// ListTagGroups lists the groups in order, each with its tags in order.
func (s *Store) ListTagGroups(ctx context.Context) ([]*tag.Group, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tagGroupCols+` FROM tag_groups ORDER BY position, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*tag.Group{}
	byID := map[int64]*tag.Group{}
	for rows.Next() {
		g, err := scanTagGroup(rows)
		if err != nil {
			return nil, err
		}
		g.Tags = []tag.Tag{}
		out = append(out, g)
		byID[g.ID] = g
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	trows, err := s.db.QueryContext(ctx, `SELECT `+tagCols+` FROM tags ORDER BY position, id`)
	if err != nil {
		return nil, err
	}
	defer trows.Close()
	for trows.Next() {
		t, err := scanTag(trows)
		if err != nil {
			return nil, err
		}
		if g := byID[t.GroupID]; g != nil {
			g.Tags = append(g.Tags, t)
		}
	}
	return out, trows.Err()
}

// TagGroup returns one group with its tags.
func (s *Store) TagGroup(ctx context.Context, id int64) (*tag.Group, error) {
	g, err := scanTagGroup(s.db.QueryRowContext(ctx, s.q(`SELECT `+tagGroupCols+` FROM tag_groups WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+tagCols+` FROM tags WHERE group_id = ? ORDER BY position, id`), id)
	if g.Tags, err = collect(rows, err, scanTag); err != nil {
		return nil, err
	}
	return g, nil
}

// Tag returns one tag.
func (s *Store) Tag(ctx context.Context, id int64) (*tag.Tag, error) {
	t, err := scanTag(s.db.QueryRowContext(ctx, s.q(`SELECT `+tagCols+` FROM tags WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// CustomerTags lists the tags a customer holds with their groups, in the console's order
// (groups, then tags, by position).
func (s *Store) CustomerTags(ctx context.Context, customerID int64) ([]tag.Assignment, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT t.id, t.group_id, t.name, t.color, t.position, t.created_at, t.updated_at,
		g.name, g.kind, ct.assigned_at, COALESCE(ct.assigned_by, 0), ct.reason, ct.ref
		FROM customer_tags ct JOIN tags t ON t.id = ct.tag_id JOIN tag_groups g ON g.id = t.group_id
		WHERE ct.customer_id = ? ORDER BY g.position, g.id, t.position, t.id`), customerID)
	return collect(rows, err, func(sc interface{ Scan(...any) error }) (tag.Assignment, error) {
		a := tag.Assignment{CustomerID: customerID}
		var created, updated, at int64
		err := sc.Scan(&a.Tag.ID, &a.Tag.GroupID, &a.Tag.Name, &a.Tag.Color, &a.Tag.Position, &created, &updated,
			&a.GroupName, &a.GroupKind, &at, &a.By, &a.Reason, &a.Ref)
		a.Tag.CreatedAt, a.Tag.UpdatedAt, a.AssignedAt = fromMS(created), fromMS(updated), fromMS(at)
		return a, err
	})
}

// TagHistory returns a customer's tag history newest first: entries with an id below
// beforeID (0: from the newest), at most limit (1 to 1000; 0: 100).
func (s *Store) TagHistory(ctx context.Context, customerID, beforeID int64, limit int) ([]tag.HistoryEntry, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	if beforeID <= 0 {
		beforeID = 1<<62 - 1
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT h.id, h.tag_id, COALESCE(t.name, d.name, ''), COALESCE(g.name, d.group_name, ''), CASE WHEN t.id IS NULL THEN 1 ELSE 0 END, h.action, h.at, COALESCE(h.by_staff, 0), h.reason, h.ref
		FROM tag_history h LEFT JOIN tags t ON t.id = h.tag_id LEFT JOIN tag_groups g ON g.id = t.group_id LEFT JOIN deleted_tags d ON d.id = h.tag_id
		WHERE h.customer_id = ? AND h.id < ? ORDER BY h.id DESC LIMIT ?`), customerID, beforeID, limit)
	return collect(rows, err, func(sc interface{ Scan(...any) error }) (tag.HistoryEntry, error) {
		h := tag.HistoryEntry{CustomerID: customerID}
		var at, deleted int64
		err := sc.Scan(&h.ID, &h.TagID, &h.TagName, &h.GroupName, &deleted, &h.Action, &at, &h.By, &h.Reason, &h.Ref)
		h.TagDeleted = deleted == 1
		h.At = fromMS(at)
		return h, err
	})
}

// TagCounts returns how many customers hold each tag; tags nobody holds are absent.
func (s *Store) TagCounts(ctx context.Context) (map[int64]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT tag_id, COUNT(*) FROM customer_tags GROUP BY tag_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]int64{}
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}
