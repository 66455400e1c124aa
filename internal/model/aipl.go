package model

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
)

// AIPLModel is the AIPL funnel: 认知 (aware), 兴趣 (interest), 购买 (purchase), 忠诚 (loyal).
const AIPLModel = "aipl"

// The AIPL stages, and the stage of a customer none of their rules selects.
const (
	Aware     Stage = "认知"
	Interest  Stage = "兴趣"
	Purchase  Stage = "购买"
	Loyal     Stage = "忠诚"
	Unreached Stage = "未触达"
)

// AIPLStages lists the funnel from its top (认知) to its bottom (忠诚).
var AIPLStages = []Stage{Aware, Interest, Purchase, Loyal}

// Limits on the AIPL event lists.
const (
	MaxAIPLEvents    = 50
	MaxEventNameLen  = 200
	MaxActiveEvents  = 10000
	MaxLoyalMinOrder = 1000
)

// AIPLConfig configures AIPL. Each stage's rule is a condition tree: Rules holds the ones an
// operator wrote; a stage without one uses the default built from the parameters below.
type AIPLConfig struct {
	// WindowDays is the interest window: interactions in the last WindowDays days (default 30),
	// also the window of high activity.
	WindowDays int `json:"window_days"`
	// AwareEvents reach a customer (default 加企微, 关注公众号); any identify or event also
	// does (last_seen_at is set).
	AwareEvents []string `json:"aware_events"`
	// InterestEvents are interactions: opening content, joining a group, answering a survey,
	// consulting, watching a live stream, checking in, taking a coupon.
	InterestEvents []string `json:"interest_events"`
	// LoyalMinOrders paid orders make a customer loyal (default 2: a repurchase).
	LoyalMinOrders int `json:"loyal_min_orders"`
	// ReferralEvents make a buyer loyal (default 邀请好友).
	ReferralEvents []string `json:"referral_events"`
	// ActiveMinEvents of one interest event in the window make a buyer loyal (high activity,
	// default 8, e.g. eight check-ins in 30 days); 0 turns it off.
	ActiveMinEvents int `json:"active_min_events"`
	// Rules are the operators' own trees, replacing the defaults stage by stage.
	Rules AIPLRules `json:"rules"`
}

// AIPLRules holds a custom tree per stage; nil keeps the default.
type AIPLRules struct {
	Aware    *segment.Node `json:"aware,omitempty"`
	Interest *segment.Node `json:"interest,omitempty"`
	Purchase *segment.Node `json:"purchase,omitempty"`
	Loyal    *segment.Node `json:"loyal,omitempty"`
}

// aiplKeys are the JSON keys of the stages in AIPLRules, in funnel order.
var aiplKeys = []string{"aware", "interest", "purchase", "loyal"}

func (r *AIPLRules) slots() []**segment.Node {
	return []**segment.Node{&r.Aware, &r.Interest, &r.Purchase, &r.Loyal}
}

// DefaultAIPLConfig is AIPL as most private-domain teams define it.
func DefaultAIPLConfig() AIPLConfig {
	return AIPLConfig{
		WindowDays:      30,
		AwareEvents:     []string{"加企微", "关注公众号"},
		InterestEvents:  []string{"打开内容", "入群", "提交问卷", "咨询", "观看直播", "打卡", "领取优惠券"},
		LoyalMinOrders:  2,
		ReferralEvents:  []string{ReferralEvent},
		ActiveMinEvents: 8,
	}
}

// DefaultTree is the default rule of stage st built from the parameters:
//
//	认知: one of AwareEvents ever, or last_seen_at set (any identify, track or WeCom event)
//	兴趣: one of InterestEvents in the last WindowDays days
//	购买: at least one paid order
//	忠诚: LoyalMinOrders paid orders, or a buyer with a referral event ever or
//	      ActiveMinEvents of one interest event in the window
func (c *AIPLConfig) DefaultTree(st Stage) *segment.Node {
	switch st {
	case Aware:
		seen := &segment.Node{Field: "last_seen_at", Cmp: "is_set"}
		if len(c.AwareEvents) == 0 {
			return seen
		}
		return or(anyEvent(c.AwareEvents, 1, 0), seen)
	case Interest:
		return anyEvent(c.InterestEvents, 1, c.WindowDays)
	case Purchase:
		return orderCount("gte", 1)
	case Loyal:
		var engaged []*segment.Node
		if len(c.ReferralEvents) > 0 {
			engaged = append(engaged, anyEvent(c.ReferralEvents, 1, 0))
		}
		if c.ActiveMinEvents > 0 && len(c.InterestEvents) > 0 {
			engaged = append(engaged, anyEvent(c.InterestEvents, c.ActiveMinEvents, c.WindowDays))
		}
		repeat := orderCount("gte", c.LoyalMinOrders)
		if len(engaged) == 0 {
			return repeat
		}
		return or(repeat, and(orderCount("gte", 1), or(engaged...)))
	}
	return nil
}

// Tree is the rule of stage st in effect: the operators' own, or the default.
func (c *AIPLConfig) Tree(st Stage) *segment.Node {
	if i := aiplIndex(st); i >= 0 {
		if t := *c.Rules.slots()[i]; t != nil {
			return t
		}
	}
	return c.DefaultTree(st)
}

// Custom reports whether stage st has an operator's rule.
func (c *AIPLConfig) Custom(st Stage) bool {
	i := aiplIndex(st)
	return i >= 0 && *c.Rules.slots()[i] != nil
}

func aiplIndex(st Stage) int {
	for i, s := range AIPLStages {
		if s == st {
			return i
		}
	}
	return -1
}

// Plan evaluates the highest stage first (忠诚, 购买, 兴趣, 认知): a customer is in the highest
// stage whose rule holds, and 未触达 when none does.
func (c *AIPLConfig) Plan() StagePlan {
	p := StagePlan{Model: AIPLModel, Fallback: Unreached}
	for i := len(AIPLStages) - 1; i >= 0; i-- {
		p.Rules = append(p.Rules, StageRule{Name: AIPLStages[i], Tree: c.Tree(AIPLStages[i])})
	}
	return p
}

// aiplJSON is an AIPL body with its rules still raw.
type aiplJSON struct {
	WindowDays      int                        `json:"window_days"`
	AwareEvents     []string                   `json:"aware_events"`
	InterestEvents  []string                   `json:"interest_events"`
	LoyalMinOrders  int                        `json:"loyal_min_orders"`
	ReferralEvents  []string                   `json:"referral_events"`
	ActiveMinEvents int                        `json:"active_min_events"`
	Rules           map[string]json.RawMessage `json:"rules"`
	// Effective is what GET answers beside the configuration; a body read back and sent
	// again may carry it, and it is ignored.
	Effective json.RawMessage `json:"effective"`
}

// ParseAIPLConfig reads an AIPL configuration. Malformed JSON is a plain error; a bad rule a
// *customer.FieldError naming it (rules.interest.children[0].field). The result still needs
// Validate.
func ParseAIPLConfig(data []byte) (AIPLConfig, error) {
	var raw aiplJSON
	if err := strictJSON(data, &raw); err != nil {
		return AIPLConfig{}, err
	}
	cfg := AIPLConfig{WindowDays: raw.WindowDays, AwareEvents: raw.AwareEvents, InterestEvents: raw.InterestEvents,
		LoyalMinOrders: raw.LoyalMinOrders, ReferralEvents: raw.ReferralEvents, ActiveMinEvents: raw.ActiveMinEvents}
	for k, v := range raw.Rules {
		i := -1
		for j, key := range aiplKeys {
			if key == k {
				i = j
			}
		}
		if i < 0 {
			return AIPLConfig{}, &customer.FieldError{Field: "rules." + k, Reason: "unknown stage (want aware, interest, purchase or loyal)"}
		}
		if len(v) == 0 || string(v) == "null" {
			continue // the default
		}
		tree, err := parseTree("rules."+k, v)
		if err != nil {
			return AIPLConfig{}, err
		}
		*cfg.Rules.slots()[i] = tree
	}
	return cfg, nil
}

// Validate trims the event names and checks the configuration and every rule in effect
// against the schema. Errors name the field.
func (c *AIPLConfig) Validate(sch segment.Schema) error {
	if c.WindowDays < 1 || c.WindowDays > MaxWindowDays {
		return &customer.FieldError{Field: "window_days", Reason: fmt.Sprintf("must be between 1 and %d days, got %d", MaxWindowDays, c.WindowDays)}
	}
	for _, l := range []struct {
		field string
		list  *[]string
	}{{"aware_events", &c.AwareEvents}, {"interest_events", &c.InterestEvents}, {"referral_events", &c.ReferralEvents}} {
		if err := cleanEventNames(l.field, l.list); err != nil {
			return err
		}
	}
	if len(c.InterestEvents) == 0 && c.Rules.Interest == nil {
		return &customer.FieldError{Field: "interest_events", Reason: "name at least one interaction event, or write rules.interest"}
	}
	if c.LoyalMinOrders < 2 || c.LoyalMinOrders > MaxLoyalMinOrder {
		return &customer.FieldError{Field: "loyal_min_orders", Reason: fmt.Sprintf("must be between 2 (a repurchase) and %d, got %d", MaxLoyalMinOrder, c.LoyalMinOrders)}
	}
	if c.ActiveMinEvents < 0 || c.ActiveMinEvents > MaxActiveEvents {
		return &customer.FieldError{Field: "active_min_events", Reason: fmt.Sprintf("must be between 0 (off) and %d, got %d", MaxActiveEvents, c.ActiveMinEvents)}
	}
	for i, st := range AIPLStages {
		if err := segment.Validate(c.Tree(st), sch, 0); err != nil {
			return treeError("rules."+aiplKeys[i], err) // a default rule is built from valid parameters
		}
	}
	return nil
}

// cleanEventNames trims a list of event names, refusing empty, over-long, repeated or too
// many names.
func cleanEventNames(field string, list *[]string) error {
	if len(*list) > MaxAIPLEvents {
		return &customer.FieldError{Field: field, Reason: fmt.Sprintf("at most %d events", MaxAIPLEvents)}
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(*list))
	for i, name := range *list {
		name = strings.TrimSpace(name)
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case name == "":
			return &customer.FieldError{Field: f, Reason: "want an event name"}
		case len(name) > MaxEventNameLen:
			return &customer.FieldError{Field: f, Reason: fmt.Sprintf("longer than %d bytes", MaxEventNameLen)}
		case seen[name]:
			return &customer.FieldError{Field: f, Reason: fmt.Sprintf("%q is listed twice", name)}
		}
		seen[name] = true
		out = append(out, name)
	}
	*list = out
	return nil
}
