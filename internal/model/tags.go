package model

import (
	"fmt"
	"slices"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// Model tags: a model's output written as tags, so that it reaches everything that works with
// tags (WeCom tag sync, tag rules, exports, the profile). Each model gets a single-choice tag
// group of its own with one tag per class or stage; after every run the store adds the new
// tag and removes the old one, in the run's transaction, recorded in the tag history with
// reason "model". Re-running over unchanged data changes nothing.

// TaggedModels are the models that can write tags, in the console's order.
var TaggedModels = []string{RFMModel, LifecycleModel, JourneyModel, AIPLModel, TierModel}

// DefaultTagGroups names each model's tag group unless operators choose another name.
var DefaultTagGroups = map[string]string{
	RFMModel:       "RFM 分类",
	LifecycleModel: "生命周期",
	JourneyModel:   "客户旅程",
	AIPLModel:      "AIPL",
	TierModel:      "会员等级",
}

// TagConfig is a model's "write as tags" option and what it made: the group and one tag per
// value (class or stage name → tag id; tags keep their id when operators rename them).
type TagConfig struct {
	Enabled   bool             `json:"enabled"`
	GroupName string           `json:"group_name,omitempty"`
	GroupID   int64            `json:"group_id,omitempty"`
	Tags      map[string]int64 `json:"tags,omitempty"`
}

// ValidTaggedModel reports whether m can write tags.
func ValidTaggedModel(m string) bool { return slices.Contains(TaggedModels, m) }

// CleanTagConfig checks a requested configuration: the group name, when given, must be a valid
// tag group name (field "group_name").
func CleanTagConfig(m string, c *TagConfig) error {
	if !ValidTaggedModel(m) {
		return &customer.FieldError{Field: "model", Reason: fmt.Sprintf("unknown model %q (want one of rfm, lifecycle, journey, aipl, tier)", m)}
	}
	if c.GroupName == "" {
		c.GroupName = DefaultTagGroups[m]
	}
	name, err := tag.CleanName("group_name", c.GroupName)
	if err != nil {
		return err
	}
	c.GroupName = name
	return nil
}

// TagRef is the reference a model's tag changes carry in the tag history: "model:rfm:run:12"
// for an RFM run, "model:tier" for a stage model.
func TagRef(m string, runID int64) string {
	if runID > 0 {
		return fmt.Sprintf("model:%s:run:%d", m, runID)
	}
	return "model:" + m
}
