package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// Model tags (model.TagConfig): each model's "write as tags" option lives in settings under
// model.MODEL.tags, with the group and the tag of every value it made. After a run, in the
// run's transaction, syncModelTags makes every live customer hold exactly the tag of its current
// class or stage in that group (none when it has no stage), through ChangeTags, so every change
// is in the tag history with reason "model" and a no-op writes nothing.

func modelTagsKey(m string) string { return "model." + m + ".tags" }

// ModelTagCount is one tag of a model's group with how many customers hold it.
type ModelTagCount struct {
	Value     string `json:"value"` // the class or stage
	TagID     int64  `json:"tag_id"`
	TagName   string `json:"tag_name"`
	Customers int64  `json:"customers"`
}

// ModelTagState is a model's tag option as the API shows it.
type ModelTagState struct {
	Model     string          `json:"model"`
	Enabled   bool            `json:"enabled"`
	GroupID   int64           `json:"group_id,omitempty"`
	GroupName string          `json:"group_name,omitempty"`
	Tags      []ModelTagCount `json:"tags"`
}

// ModelTags reads a model's tag option and its tags with their customer counts.
func (s *Store) ModelTags(ctx context.Context, m string) (*ModelTagState, error) {
	if !model.ValidTaggedModel(m) {
		return nil, ErrNotFound
	}
	var cfg model.TagConfig
	if err := s.jsonSetting(ctx, modelTagsKey(m), &cfg); err != nil {
		return nil, err
	}
	st := &ModelTagState{Model: m, Enabled: cfg.Enabled, GroupID: cfg.GroupID, GroupName: cfg.GroupName, Tags: []ModelTagCount{}}
	if cfg.GroupID == 0 {
		return st, nil
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT t.id, t.name, (SELECT COUNT(*) FROM customer_tags ct WHERE ct.tag_id = t.id) FROM tags t WHERE t.group_id = ? ORDER BY t.position, t.id`), cfg.GroupID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	value := map[int64]string{}
	for v, id := range cfg.Tags {
		value[id] = v
	}
	for rows.Next() {
		var c ModelTagCount
		if err := rows.Scan(&c.TagID, &c.TagName, &c.Customers); err != nil {
			return nil, err
		}
		c.Value = value[c.TagID]
		st.Tags = append(st.Tags, c)
	}
	return st, rows.Err()
}

// SetModelTags turns a model's "write as tags" on or off, in one transaction: on, it makes the
// group (a single-choice 属性 group named cfg.GroupName) and tags and writes the model's current
// output as tags at once; off, it removes the group's tags from every customer (recorded in the
// history) and keeps the group and tags, so that rules naming them stay valid. It returns the
// tag changes made.
func (s *Store) SetModelTags(ctx context.Context, m string, cfg model.TagConfig) ([]tag.Change, error) {
	if err := model.CleanTagConfig(m, &cfg); err != nil {
		return nil, err
	}
	var changes []tag.Change
	err := s.InTx(ctx, func(tx *Tx) error {
		old, err := tx.modelTagConfig(m)
		if err != nil {
			return err
		}
		old.Enabled = cfg.Enabled
		if old.GroupID != 0 && old.GroupName != cfg.GroupName { // rename the group
			if err := tx.renameModelGroup(old.GroupID, cfg.GroupName); err != nil {
				return err
			}
		}
		old.GroupName = cfg.GroupName
		if !cfg.Enabled {
			if old.GroupID != 0 {
				ids, err := tx.int64s(`SELECT id FROM tags WHERE group_id = ?`, old.GroupID)
				if err != nil {
					return err
				}
				holders, err := tx.int64s(`SELECT DISTINCT ct.customer_id FROM customer_tags ct JOIN tags t ON t.id = ct.tag_id WHERE t.group_id = ?`, old.GroupID)
				if err != nil {
					return err
				}
				if changes, err = tx.ChangeTags(holders, nil, ids, tag.Cause{Reason: tag.ReasonModel, Ref: model.TagRef(m, 0)}); err != nil {
					return err
				}
			}
			return tx.saveModelTagConfig(m, old)
		}
		if err := tx.saveModelTagConfig(m, old); err != nil {
			return err
		}
		runID := int64(0)
		if m == model.RFMModel {
			if err := tx.row(`SELECT COALESCE(` + latestRFMRun + `, 0)`).Scan(&runID); err != nil {
				return err
			}
		}
		changes, err = tx.syncModelTags(m, runID)
		return err
	})
	return changes, err
}

func (tx *Tx) renameModelGroup(id int64, name string) error {
	var n int
	if err := tx.row(`SELECT COUNT(*) FROM tag_groups WHERE name = ? AND id <> ?`, name, id).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return groupNameTaken(name)
	}
	_, err := tx.exec(`UPDATE tag_groups SET name = ?, updated_at = ? WHERE id = ?`, name, ms(tx.Now()), id)
	return err
}

func (tx *Tx) modelTagConfig(m string) (model.TagConfig, error) {
	var cfg model.TagConfig
	var raw string
	err := tx.row(`SELECT value FROM settings WHERE key = ?`, modelTagsKey(m)).Scan(&raw)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return cfg, nil
	case err != nil:
		return cfg, err
	}
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		return cfg, fmt.Errorf("setting %s: %w", modelTagsKey(m), err)
	}
	return cfg, nil
}

func (tx *Tx) saveModelTagConfig(m string, cfg model.TagConfig) error {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	_, err = tx.exec(`INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, modelTagsKey(m), string(raw))
	return err
}

// syncModelTags writes model m's current output as tags when its option is on (runID: the RFM
// run written, for the history's reference) and returns the changes.
func (tx *Tx) syncModelTags(m string, runID int64) ([]tag.Change, error) {
	cfg, err := tx.modelTagConfig(m)
	if err != nil || !cfg.Enabled {
		return nil, err
	}
	// Every live customer's value.
	var rows *sql.Rows
	if m == model.RFMModel {
		if runID == 0 { // RFM never ran: nobody has a class
			return tx.applyModelTags(m, &cfg, runID, nil)
		}
		rows, err = tx.query(`SELECT c.id, COALESCE(r.class, ?) FROM customers c LEFT JOIN customer_rfm r ON r.run_id = ? AND r.customer_id = c.id
			WHERE c.merged_into IS NULL ORDER BY c.id`, string(model.NoPurchase), runID)
	} else {
		rows, err = tx.query(`SELECT s.customer_id, s.stage FROM customer_stages s JOIN customers c ON c.id = s.customer_id
			WHERE s.model = ? AND c.merged_into IS NULL ORDER BY s.customer_id`, m)
	}
	type want struct {
		id    int64
		value string
	}
	wants, err := collect(rows, err, func(sc interface{ Scan(...any) error }) (want, error) {
		var w want
		return w, sc.Scan(&w.id, &w.value)
	})
	if err != nil {
		return nil, fmt.Errorf("model tags %s: %w", m, err)
	}
	desired := make(map[int64]string, len(wants))
	for _, w := range wants {
		desired[w.id] = w.value
	}
	return tx.applyModelTags(m, &cfg, runID, desired)
}

// applyModelTags makes the group's tags follow desired (customer → value) and saves cfg.
func (tx *Tx) applyModelTags(m string, cfg *model.TagConfig, runID int64, desired map[int64]string) ([]tag.Change, error) {
	if err := tx.ensureModelGroup(m, cfg, desired); err != nil {
		return nil, err
	}
	// What customers hold now.
	rows, err := tx.query(`SELECT ct.customer_id, ct.tag_id FROM customer_tags ct JOIN tags t ON t.id = ct.tag_id WHERE t.group_id = ?`, cfg.GroupID)
	held, err := collect(rows, err, func(sc interface{ Scan(...any) error }) ([2]int64, error) {
		var p [2]int64
		return p, sc.Scan(&p[0], &p[1])
	})
	if err != nil {
		return nil, err
	}
	has := map[int64][]int64{}
	for _, p := range held {
		has[p[0]] = append(has[p[0]], p[1])
	}
	add := map[int64][]int64{}    // tag → customers to get it
	remove := map[int64][]int64{} // tag → customers to lose it
	for id, v := range desired {
		want := cfg.Tags[v]
		if !slices.Contains(has[id], want) {
			add[want] = append(add[want], id) // single-choice: the old tag goes with it
		}
	}
	for id, tags := range has {
		want, ok := cfg.Tags[desired[id]]
		for _, t := range tags {
			if !ok || t != want { // a no-op where adding want took it away already
				remove[t] = append(remove[t], id)
			}
		}
	}
	cause := tag.Cause{Reason: tag.ReasonModel, Ref: model.TagRef(m, runID)}
	var changes []tag.Change
	for _, t := range sortedKeys(add) {
		ch, err := tx.ChangeTags(add[t], []int64{t}, nil, cause)
		if err != nil {
			return nil, err
		}
		changes = append(changes, ch...)
	}
	for _, t := range sortedKeys(remove) {
		ch, err := tx.ChangeTags(remove[t], nil, []int64{t}, cause)
		if err != nil {
			return nil, err
		}
		changes = append(changes, ch...)
	}
	return changes, tx.saveModelTagConfig(m, *cfg)
}

func sortedKeys(m map[int64][]int64) []int64 {
	keys := make([]int64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ensureModelGroup makes the model's group (again, if an operator deleted it) and a tag for
// every value in desired and every class or default stage the model has.
func (tx *Tx) ensureModelGroup(m string, cfg *model.TagConfig, desired map[int64]string) error {
	if cfg.GroupName == "" {
		cfg.GroupName = model.DefaultTagGroups[m]
	}
	now := ms(tx.Now())
	if cfg.GroupID != 0 {
		var n int
		if err := tx.row(`SELECT COUNT(*) FROM tag_groups WHERE id = ?`, cfg.GroupID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			cfg.GroupID, cfg.Tags = 0, nil
		}
	}
	if cfg.GroupID == 0 {
		var taken int
		if err := tx.row(`SELECT COUNT(*) FROM tag_groups WHERE name = ?`, cfg.GroupName).Scan(&taken); err != nil {
			return err
		}
		if taken > 0 {
			return &customer.FieldError{Field: "group_name", Reason: fmt.Sprintf("a tag group named %q already exists: choose another name for the model's group", cfg.GroupName)}
		}
		if err := tx.row(`INSERT INTO tag_groups (name, kind, exclusive, position, created_at, updated_at)
			VALUES (?, ?, 1, (SELECT COALESCE(MAX(position), 0) + 1 FROM tag_groups), ?, ?) RETURNING id`,
			cfg.GroupName, string(tag.Attribute), now, now).Scan(&cfg.GroupID); err != nil {
			return fmt.Errorf("model tag group: %w", err)
		}
	}
	// The tags: every known value of the model in order, then any other value seen.
	var values []string
	switch m {
	case model.RFMModel:
		for _, c := range model.Classes {
			values = append(values, string(c))
		}
	case model.LifecycleModel:
		for _, st := range model.Stages {
			values = append(values, string(st))
		}
	}
	var seen []string
	for _, v := range desired {
		if !slices.Contains(values, v) && !slices.Contains(seen, v) {
			seen = append(seen, v)
		}
	}
	slices.Sort(seen)
	values = append(values, seen...)
	existing, err := tx.int64s(`SELECT id FROM tags WHERE group_id = ?`, cfg.GroupID)
	if err != nil {
		return err
	}
	if cfg.Tags == nil {
		cfg.Tags = map[string]int64{}
	}
	for v, id := range cfg.Tags {
		if !slices.Contains(existing, id) { // deleted by an operator: made again below
			delete(cfg.Tags, v)
		}
	}
	for _, v := range values {
		if _, ok := cfg.Tags[v]; ok {
			continue
		}
		name, err := tag.CleanName("name", v)
		if err != nil {
			return fmt.Errorf("model %s value %q: %w", m, v, err)
		}
		var id int64
		err = tx.row(`SELECT id FROM tags WHERE group_id = ? AND name = ?`, cfg.GroupID, name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			err = tx.row(`INSERT INTO tags (group_id, name, position, created_at, updated_at)
				VALUES (?, ?, (SELECT COALESCE(MAX(position), 0) + 1 FROM tags WHERE group_id = ?), ?, ?) RETURNING id`,
				cfg.GroupID, name, cfg.GroupID, now, now).Scan(&id)
		}
		if err != nil {
			return fmt.Errorf("model tag %q: %w", v, err)
		}
		cfg.Tags[v] = id
	}
	return nil
}
