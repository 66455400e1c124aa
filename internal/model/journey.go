package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
)

// JourneyModel is the operators' own stage path (业务关键节点路径).
const JourneyModel = "journey"

// The default journey: 未付费客户 → 首单客户 → 多次复购客户 → KOC客户, listed most advanced
// first because the first matching stage wins.
const (
	JourneyKOC        Stage = "KOC客户"
	JourneyRepeat     Stage = "多次复购客户"
	JourneyFirstOrder Stage = "首单客户"
	JourneyUnpaid     Stage = "未付费客户"
	// JourneyUnmatched is the default catch-all: a customer no stage selects.
	JourneyUnmatched Stage = "未归类"
)

// MaxStageDescriptionRunes bounds a stage's description.
const MaxStageDescriptionRunes = 200

// JourneyConfig is the operators' journey: Stages in evaluation order (the first whose tree
// selects a customer is the customer's stage, so the most advanced stage comes first) and the
// Fallback stage of a customer none selects.
type JourneyConfig struct {
	Stages   []StageRule `json:"stages"`
	Fallback Stage       `json:"fallback"`
}

// Plan is the configuration as a stage plan.
func (c *JourneyConfig) Plan() StagePlan {
	return StagePlan{Model: JourneyModel, Rules: c.Stages, Fallback: c.Fallback}
}

// DefaultJourneyConfig is the key-node path every private-domain team starts from, over paid
// orders (paid or partially refunded, any time) and two events operators send: 邀请好友
// (referred a friend) and 分享 (shared content).
func DefaultJourneyConfig() JourneyConfig {
	return JourneyConfig{
		Stages: []StageRule{
			{Name: JourneyKOC, Description: "已购买，且邀请过好友或近90天分享3次以上：口碑传播者", Tree: and(
				orderCount("gte", 1),
				or(eventCount(ReferralEvent, "gte", 1, 0), eventCount(ShareEvent, "gte", 3, 90)))},
			{Name: JourneyRepeat, Description: "2笔及以上已支付订单", Tree: orderCount("gte", 2)},
			{Name: JourneyFirstOrder, Description: "恰好1笔已支付订单", Tree: orderCount("eq", 1)},
			{Name: JourneyUnpaid, Description: "尚无已支付订单（全额退款不算）", Tree: orderCount("eq", 0)},
		},
		Fallback: JourneyUnmatched,
	}
}

// Event names the default trees use.
const (
	ReferralEvent = "邀请好友"
	ShareEvent    = "分享"
)

// journeyJSON is a journey body with its trees still raw, so that each is parsed by
// segment.Parse and its errors name the stage.
type journeyJSON struct {
	Stages []struct {
		Name        Stage           `json:"name"`
		Description string          `json:"description"`
		Tree        json.RawMessage `json:"tree"`
	} `json:"stages"`
	Fallback Stage `json:"fallback"`
}

// ParseJourneyConfig reads a journey configuration. Malformed JSON is a plain error; a bad
// tree is a *customer.FieldError naming it (stages[2].tree.children[0].field). The result
// still needs Validate.
func ParseJourneyConfig(data []byte) (JourneyConfig, error) {
	var raw journeyJSON
	if err := strictJSON(data, &raw); err != nil {
		return JourneyConfig{}, err
	}
	cfg := JourneyConfig{Fallback: raw.Fallback}
	for i, st := range raw.Stages {
		tree, err := parseTree(fmt.Sprintf("stages[%d].tree", i), st.Tree)
		if err != nil {
			return JourneyConfig{}, err
		}
		cfg.Stages = append(cfg.Stages, StageRule{Name: st.Name, Description: st.Description, Tree: tree})
	}
	return cfg, nil
}

// Validate trims the names and checks the journey against the schema: 1 to MaxStages stages,
// names non-empty and unique (the fallback too), every tree valid. Errors name the field.
func (c *JourneyConfig) Validate(sch segment.Schema) error {
	if len(c.Stages) == 0 || len(c.Stages) > MaxStages {
		return &customer.FieldError{Field: "stages", Reason: fmt.Sprintf("want 1 to %d stages, got %d", MaxStages, len(c.Stages))}
	}
	seen := map[Stage]int{}
	for i := range c.Stages {
		st := &c.Stages[i]
		name, err := cleanStageName(fmt.Sprintf("stages[%d].name", i), st.Name)
		if err != nil {
			return err
		}
		if j, dup := seen[name]; dup {
			return &customer.FieldError{Field: fmt.Sprintf("stages[%d].name", i), Reason: fmt.Sprintf("%q is already the name of stages[%d]", name, j)}
		}
		seen[name], st.Name = i, name
		if !utf8.ValidString(st.Description) || utf8.RuneCountInString(st.Description) > MaxStageDescriptionRunes {
			return &customer.FieldError{Field: fmt.Sprintf("stages[%d].description", i), Reason: fmt.Sprintf("at most %d characters of UTF-8", MaxStageDescriptionRunes)}
		}
		field := fmt.Sprintf("stages[%d].tree", i)
		if st.Tree == nil {
			return &customer.FieldError{Field: field, Reason: "want a condition tree"}
		}
		if err := segment.Validate(st.Tree, sch, 0); err != nil {
			return treeError(field, err)
		}
	}
	fb, err := cleanStageName("fallback", c.Fallback)
	if err != nil {
		return err
	}
	if j, dup := seen[fb]; dup {
		return &customer.FieldError{Field: "fallback", Reason: fmt.Sprintf("%q is already the name of stages[%d]; the catch-all stage needs a name of its own", fb, j)}
	}
	c.Fallback = fb
	return nil
}

// strictJSON decodes one JSON value refusing unknown keys.
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return fmt.Errorf("invalid JSON: data after the value")
	}
	return nil
}

// Tree builders for the default rules.

func and(kids ...*segment.Node) *segment.Node { return &segment.Node{Op: "and", Children: kids} }
func or(kids ...*segment.Node) *segment.Node  { return &segment.Node{Op: "or", Children: kids} }

func orderCount(cmp string, n int) *segment.Node {
	return &segment.Node{Order: &segment.OrderCond{Metric: "count", Cmp: cmp, Value: float64(n)}}
}

// eventCount counts events named name, over the last days days (0: any time).
func eventCount(name, cmp string, n, days int) *segment.Node {
	ev := &segment.EventCond{Name: name, Count: &segment.Compare{Cmp: cmp, Value: float64(n)}}
	if days > 0 {
		ev.Window = &segment.Window{LastDays: days}
	}
	return &segment.Node{Event: ev}
}

// anyEvent holds when a customer has at least n of one of names (over the last days days, 0:
// any time).
func anyEvent(names []string, n, days int) *segment.Node {
	if len(names) == 1 {
		return eventCount(names[0], "gte", n, days)
	}
	kids := make([]*segment.Node, len(names))
	for i, name := range names {
		kids[i] = eventCount(name, "gte", n, days)
	}
	return or(kids...)
}
