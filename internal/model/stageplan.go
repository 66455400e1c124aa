package model

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
)

// Stage models (the journey and AIPL) place every customer in one stage of an ordered list of
// condition trees: the first stage whose tree selects the customer, or the catch-all stage
// when none does, so nobody is dropped. The trees are the segment language (package segment),
// evaluated by whatever resolves a tree to customers (the audience engine, or SQL while it
// warms up), and the placements are stored through ApplyStages, which records every entry
// and exit.

// Limits on a stage list.
const (
	MaxStages         = 20
	MaxStageNameRunes = 30
)

// StageRule is one stage of a stage model: its name and the condition tree that selects it.
type StageRule struct {
	Name        Stage         `json:"name"`
	Description string        `json:"description,omitempty"`
	Tree        *segment.Node `json:"tree"`
}

// StagePlan is what a stage model computes: Rules in evaluation order (first match wins) and
// the Fallback stage of a customer no rule selects.
type StagePlan struct {
	Model    string
	Rules    []StageRule
	Fallback Stage
}

// Stages lists the plan's stages in evaluation order, the fallback last.
func (p StagePlan) Stages() []Stage {
	out := make([]Stage, 0, len(p.Rules)+1)
	for _, r := range p.Rules {
		out = append(out, r.Name)
	}
	return append(out, p.Fallback)
}

// Members resolves a condition tree to the customers (not merged away) it selects now, in
// ascending id order.
type Members func(ctx context.Context, tree *segment.Node) ([]int64, error)

// StageStore reads the customers and the segment schema and keeps stages.
type StageStore interface {
	// LiveCustomerIDs returns every customer not merged away, ascending.
	LiveCustomerIDs(ctx context.Context) ([]int64, error)
	// StageSchema is what condition trees are validated against.
	StageSchema(ctx context.Context) (segment.Schema, error)
	// ApplyStages: see LifecycleStore.
	ApplyStages(ctx context.Context, model string, stages []StageAssignment, at time.Time) (int, error)
}

// StageRun is the outcome of one run of a stage model.
type StageRun struct {
	Model     string       `json:"model"`
	At        time.Time    `json:"at"`
	Customers int          `json:"customers"`
	Changed   int          `json:"changed"` // customers placed, moved or removed; 0 over unchanged data
	Counts    []StageCount `json:"counts"`  // in evaluation order, the fallback last
	Seconds   float64      `json:"seconds"`
}

// StageCount is the number of customers in one stage.
type StageCount struct {
	Stage Stage `json:"stage"`
	Count int64 `json:"count"`
}

// RunStages validates the plan's trees against the current schema (a tree that names a tag
// deleted since it was saved fails the run, naming the stage), resolves each to its members,
// places every live customer and stores the changes at now.
func RunStages(ctx context.Context, st StageStore, members Members, plan StagePlan, now time.Time) (*StageRun, error) {
	start := time.Now()
	sch, err := st.StageSchema(ctx)
	if err != nil {
		return nil, err
	}
	for i, r := range plan.Rules {
		if err := segment.Validate(r.Tree, sch, 0); err != nil {
			return nil, treeError(fmt.Sprintf("stages[%d].tree", i), err)
		}
	}
	ids, err := st.LiveCustomerIDs(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: customers: %w", plan.Model, err)
	}
	sets := make([][]int64, len(plan.Rules))
	for i, r := range plan.Rules {
		if sets[i], err = members(ctx, r.Tree); err != nil {
			return nil, fmt.Errorf("%s: stage %q: %w", plan.Model, r.Name, err)
		}
		if !slices.IsSorted(sets[i]) {
			slices.Sort(sets[i])
		}
	}
	names := plan.Stages()
	idx := AssignStages(ids, sets)
	assigned := make([]StageAssignment, len(ids))
	counts := make([]int64, len(names))
	for k, id := range ids {
		assigned[k] = StageAssignment{CustomerID: id, Stage: names[idx[k]]}
		counts[idx[k]]++
	}
	changed, err := st.ApplyStages(ctx, plan.Model, assigned, now)
	if err != nil {
		return nil, fmt.Errorf("%s: apply stages: %w", plan.Model, err)
	}
	run := &StageRun{Model: plan.Model, At: now, Customers: len(ids), Changed: changed, Seconds: time.Since(start).Round(time.Millisecond).Seconds()}
	for i, n := range names {
		run.Counts = append(run.Counts, StageCount{Stage: n, Count: counts[i]})
	}
	return run, nil
}

// AssignStages returns, for each customer of ids (ascending), the index of the first member
// list (each ascending) that holds it, or len(sets) when none does. It walks every list once
// beside ids: O(customers × stages) with no map.
func AssignStages(ids []int64, sets [][]int64) []uint8 {
	out := make([]uint8, len(ids))
	none := uint8(len(sets))
	for k := range out {
		out[k] = none
	}
	for si, set := range sets {
		j := 0
		for k, id := range ids {
			if out[k] != none {
				continue
			}
			for j < len(set) && set[j] < id {
				j++
			}
			if j == len(set) {
				break
			}
			if set[j] == id {
				out[k] = uint8(si)
			}
		}
	}
	return out
}

// treeError names a tree's problem from the field that holds the tree: prefix
// "stages[2].tree" and node path "children[0].field" make "stages[2].tree.children[0].field".
func treeError(prefix string, err error) error {
	var se *segment.Error
	if !errors.As(err, &se) {
		return &customer.FieldError{Field: prefix, Reason: err.Error()}
	}
	field := prefix
	if se.Path != "" {
		field += "." + se.Path
	}
	return &customer.FieldError{Field: field, Reason: se.Msg}
}

// parseTree reads one condition tree held in field (segment.Parse: unknown keys and nesting
// are refused naming the node).
func parseTree(field string, raw json.RawMessage) (*segment.Node, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, &customer.FieldError{Field: field, Reason: "want a condition tree"}
	}
	n, err := segment.Parse(raw)
	if err != nil {
		return nil, treeError(field, err)
	}
	return n, nil
}

// cleanStageName trims a stage name and checks it.
func cleanStageName(field string, name Stage) (Stage, error) {
	s := strings.TrimSpace(string(name))
	switch {
	case s == "":
		return "", &customer.FieldError{Field: field, Reason: "a stage needs a name"}
	case !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxStageNameRunes:
		return "", &customer.FieldError{Field: field, Reason: fmt.Sprintf("at most %d characters of UTF-8", MaxStageNameRunes)}
	}
	return Stage(s), nil
}
