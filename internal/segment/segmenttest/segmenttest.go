// Package segmenttest builds data sets and condition trees for testing segment evaluation:
// a Data set written to a store with Load, its schema, and random data and random valid trees
// over it, so that the audience engine and store.SegmentSQL can be held to the same answers.
package segmenttest

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
)

// TagGroup is a tag group of a data set.
type TagGroup struct {
	ID   int64
	Name string
}

// Tag is a tag of a data set.
type Tag struct {
	ID    int64
	Group int64
	Name  string
}

// Segment is a saved segment of a data set.
type Segment struct {
	ID   int64
	Name string
	Tree *segment.Node
}

// Data is everything segment conditions read. Staff members get ids 1..Staff; customers,
// tags, groups and segments carry their ids. A customer with MergedInto set is merged away.
type Data struct {
	Staff        int
	AttrDefs     []customer.AttrDef
	Customers    []*customer.Customer
	TagGroups    []TagGroup
	Tags         []Tag
	CustomerTags map[int64][]int64 // customer id → tag ids
	Events       []*event.Event
	Orders       []*event.Order
	Segments     []Segment
	// Model outputs: the newest RFM run (nil: RFM never ran) and its rows, stage model runs
	// in order, points balances.
	RFMRun      *model.RFMRun
	RFM         []model.Score
	StageRounds []StageRound
	Points      map[int64]int64
}

// Schema returns the data set's schema, as store.SegmentSchema would read it once loaded.
func (d *Data) Schema() *store.SegmentSchema {
	sc := &store.SegmentSchema{Attrs: map[string]customer.AttrType{}, Tags: map[int64]int64{}, Groups: map[int64]bool{}, Trees: map[int64]*segment.Node{}}
	for _, a := range d.AttrDefs {
		sc.Attrs[a.Key] = a.Type
	}
	for _, g := range d.TagGroups {
		sc.Groups[g.ID] = true
	}
	for _, t := range d.Tags {
		sc.Tags[t.ID] = t.Group
	}
	for _, s := range d.Segments {
		sc.Trees[s.ID] = s.Tree
	}
	return sc
}

// Load writes a data set into a fresh, migrated store.
func Load(ctx context.Context, s *store.Store, d *Data) error {
	err := s.InTx(ctx, func(tx *store.Tx) error {
		members := make([]*staff.Staff, d.Staff)
		for i := range members {
			members[i] = &staff.Staff{Login: fmt.Sprintf("staff%d", i+1), Name: fmt.Sprintf("Staff %d", i+1), Role: staff.Sales, CreatedAt: time.Unix(1e9, 0)}
		}
		if err := tx.BulkInsertStaff(members, ""); err != nil {
			return err
		}
		for i, m := range members {
			if m.ID != int64(i+1) {
				return fmt.Errorf("staff member %d got id %d: load into a fresh store", i+1, m.ID)
			}
		}
		if err := tx.BulkInsertAttrDefs(d.AttrDefs); err != nil {
			return err
		}
		if err := tx.BulkInsertCustomers(d.Customers); err != nil {
			return err
		}
		if err := tx.BulkInsertEvents(d.Events); err != nil {
			return err
		}
		return tx.BulkInsertOrders(d.Orders)
	})
	if err != nil {
		return err
	}
	if err := loadRest(ctx, s, d); err != nil {
		return err
	}
	return loadModels(ctx, s, d)
}

// loadRest writes what the store has no bulk loader for (merges, tags, saved segments) as
// plain rows.
func loadRest(ctx context.Context, s *store.Store, d *Data) error {
	db := s.DB()
	exec := func(query string, args ...any) error {
		if _, err := db.ExecContext(ctx, s.Rebind(query), args...); err != nil {
			return fmt.Errorf("segmenttest load: %w: %s", err, query)
		}
		return nil
	}
	for _, c := range d.Customers {
		if c.MergedInto != 0 {
			if err := exec(`UPDATE customers SET merged_into = ? WHERE id = ?`, c.MergedInto, c.ID); err != nil {
				return err
			}
		}
	}
	for _, g := range d.TagGroups {
		if err := exec(`INSERT INTO tag_groups (id, name, kind, created_at, updated_at) VALUES (?, ?, 'custom', 0, 0)`, g.ID, g.Name); err != nil {
			return err
		}
	}
	for _, t := range d.Tags {
		if err := exec(`INSERT INTO tags (id, group_id, name, created_at, updated_at) VALUES (?, ?, ?, 0, 0)`, t.ID, t.Group, t.Name); err != nil {
			return err
		}
	}
	for cid, tags := range d.CustomerTags {
		for _, t := range tags {
			if err := exec(`INSERT INTO customer_tags (customer_id, tag_id, assigned_at, reason) VALUES (?, ?, 0, 'test')`, cid, t); err != nil {
				return err
			}
		}
	}
	for _, sg := range d.Segments {
		tree, err := json.Marshal(sg.Tree)
		if err != nil {
			return err
		}
		if err := exec(`INSERT INTO segments (name, id, tree, created_at, updated_at) VALUES (?, ?, ?, 0, 0)`, sg.Name, sg.ID, string(tree)); err != nil {
			return err
		}
	}
	// Tell subscribers (an audience engine kept current incrementally) about the tags and
	// merges written above as plain rows.
	err := s.InTx(ctx, func(tx *store.Tx) error {
		for _, c := range d.Customers {
			if c.MergedInto != 0 {
				tx.NoteCustomers(c.ID, c.MergedInto)
			}
		}
		for cid := range d.CustomerTags {
			tx.NoteCustomers(cid)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if s.Engine() == store.Postgres { // rows went in with their ids: move the sequences past them
		for _, table := range []string{"tag_groups", "tags", "segments"} {
			if err := exec(`SELECT setval(pg_get_serial_sequence('` + table + `', 'id'), GREATEST((SELECT MAX(id) FROM ` + table + `), 1))`); err != nil {
				return err
			}
		}
	}
	return nil
}
