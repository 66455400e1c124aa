// Package tag holds what operators mean by 标签: tag groups of a kind (跟进状态, 来源, 属性,
// 营销活动, custom), single-choice groups, tags, their assignment to customers with a history
// of who added or removed each tag, when and why, and tag rules ("define tag – define event –
// define trigger"). Storage is in package store; rules run in package tagrule.
package tag

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/siyu-scrm/siyu/internal/customer"
)

// Kind says what a tag group describes.
type Kind string

// The group kinds operators use.
const (
	FollowUp  Kind = "follow_up" // 跟进状态: where the relationship stands (待跟进, 已加微, 已成交 …)
	Source    Kind = "source"    // 来源: how the customer came (渠道活码, 门店, 直播 …)
	Attribute Kind = "attribute" // 属性: who the customer is (宝妈, 学生, 高消费 …)
	Campaign  Kind = "campaign"  // 营销活动: which campaigns the customer took part in
	Custom    Kind = "custom"    // anything else
)

// Kinds lists the kinds in the order the console shows them.
var Kinds = []Kind{FollowUp, Source, Attribute, Campaign, Custom}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool {
	for _, x := range Kinds {
		if x == k {
			return true
		}
	}
	return false
}

// Group is a tag group. In an Exclusive (single-choice) group a customer holds at most one
// tag: assigning one removes the others, as a follow-up status moves from 待跟进 to 已成交.
type Group struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Kind      Kind      `json:"kind"`
	Exclusive bool      `json:"exclusive"`
	Position  int       `json:"position"`
	Tags      []Tag     `json:"tags,omitempty"` // filled by reads that list groups with their tags
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Tag is one tag of a group. Names are unique within a group; IDs never change, so renaming
// a tag or moving it to another group keeps its assignments and the rules that name it.
type Tag struct {
	ID        int64     `json:"id"`
	GroupID   int64     `json:"group_id"`
	Name      string    `json:"name"`
	Color     string    `json:"color"` // "#rrggbb" or "" for the console's default
	Position  int       `json:"position"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Reason says why a tag was added or removed.
type Reason string

// The reasons recorded in the history.
const (
	ReasonManual Reason = "manual" // a staff member in the console or the API
	ReasonRule   Reason = "rule"   // a tag rule (Ref "rule:<id>")
	ReasonImport Reason = "import" // a CSV import
	ReasonSurvey Reason = "survey" // a survey answer
	ReasonWeCom  Reason = "wecom"  // synchronised from WeCom's own customer tags
	ReasonModel  Reason = "model"  // a model's output (RFM class, lifecycle stage, tier) written as a tag
	ReasonMerge  Reason = "merge"  // two customers merged and the survivor kept its own single-choice tag
)

// Reasons lists every reason.
var Reasons = []Reason{ReasonManual, ReasonRule, ReasonImport, ReasonSurvey, ReasonWeCom, ReasonModel, ReasonMerge}

// Valid reports whether r is a known reason.
func (r Reason) Valid() bool {
	for _, x := range Reasons {
		if x == r {
			return true
		}
	}
	return false
}

// Cause is who changed tags and why, written to every history row of the change.
type Cause struct {
	By     int64  `json:"by,omitempty"` // staff id; 0 for the system (rules, imports, models)
	Reason Reason `json:"reason"`
	Ref    string `json:"ref,omitempty"` // what caused it: "rule:12", "import:3", "survey:7" …
}

// Check validates a cause.
func (c Cause) Check() error {
	if !c.Reason.Valid() {
		return &customer.FieldError{Field: "reason", Reason: fmt.Sprintf("unknown reason %q", c.Reason)}
	}
	if len(c.Ref) > 200 {
		return &customer.FieldError{Field: "ref", Reason: "longer than 200 bytes"}
	}
	if c.By < 0 {
		return &customer.FieldError{Field: "by", Reason: "want a staff id"}
	}
	return nil
}

// Action is what a history row or a change did.
type Action string

// The actions.
const (
	Add    Action = "add"
	Remove Action = "remove"
)

// Assignment is a tag a customer holds, with its group and how it got there.
type Assignment struct {
	CustomerID int64     `json:"customer_id"`
	Tag        Tag       `json:"tag"`
	GroupName  string    `json:"group_name"`
	GroupKind  Kind      `json:"group_kind"`
	AssignedAt time.Time `json:"assigned_at"`
	By         int64     `json:"by,omitempty"`
	Reason     Reason    `json:"reason"`
	Ref        string    `json:"ref,omitempty"`
}

// HistoryEntry is one addition or removal of a tag. A tag deleted since keeps the name and
// group name it had when it was deleted, with TagDeleted set.
type HistoryEntry struct {
	ID         int64     `json:"id"`
	CustomerID int64     `json:"customer_id"`
	TagID      int64     `json:"tag_id"`
	TagName    string    `json:"tag_name"`
	GroupName  string    `json:"group_name"`
	TagDeleted bool      `json:"tag_deleted,omitempty"`
	Action     Action    `json:"action"`
	At         time.Time `json:"at"`
	By         int64     `json:"by,omitempty"`
	Reason     Reason    `json:"reason"`
	Ref        string    `json:"ref,omitempty"`
}

// Change is one applied change: a customer gained or lost a tag. Store methods return the
// changes they made (nothing for a no-op), so a caller that keeps derived state (the
// audience engine's tag bitmaps) can update it after the commit.
type Change struct {
	CustomerID int64  `json:"customer_id"`
	TagID      int64  `json:"tag_id"`
	Action     Action `json:"action"`
}

// Counts sums changes: how many tags were added and how many removed.
func Counts(changes []Change) (added, removed int) {
	for _, c := range changes {
		if c.Action == Add {
			added++
		} else {
			removed++
		}
	}
	return added, removed
}

// GroupDeletion says what becomes of a group's tags when the group is deleted: there is no
// default, because both choices are big.
type GroupDeletion struct {
	// Mode is DeleteTags (the tags and every assignment of them go, recorded in the history
	// as removals with Cause) or MoveTags (the tags move into group Into, keeping their ids
	// and assignments).
	Mode  string `json:"mode"`
	Into  int64  `json:"into,omitempty"`
	Cause Cause  `json:"cause"`
}

// The group deletion modes.
const (
	DeleteTags = "delete_tags"
	MoveTags   = "move_tags"
)

// ExclusiveConflictError refuses a change that would give customers two tags of a
// single-choice group: moving tags into it, or making a group single-choice.
type ExclusiveConflictError struct {
	Group     string // the single-choice group
	Customers int    // how many customers would hold two or more of its tags
}

func (e *ExclusiveConflictError) Error() string {
	return fmt.Sprintf("%d customers would hold more than one tag of the single-choice group %q: remove the extra tags first", e.Customers, e.Group)
}

// MaxNameLen is the longest group or tag name, in characters.
const MaxNameLen = 64

// CleanName trims a group or tag name and checks it, naming field in the error.
func CleanName(field, name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", &customer.FieldError{Field: field, Reason: "required"}
	case !utf8.ValidString(name):
		return "", &customer.FieldError{Field: field, Reason: "not valid UTF-8"}
	case utf8.RuneCountInString(name) > MaxNameLen:
		return "", &customer.FieldError{Field: field, Reason: fmt.Sprintf("longer than %d characters", MaxNameLen)}
	case strings.ContainsAny(name, "\r\n\t"):
		return "", &customer.FieldError{Field: field, Reason: "contains a line break or tab"}
	}
	return name, nil
}

var colorRe = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// CheckColor accepts "" or "#rrggbb".
func CheckColor(c string) error {
	if c != "" && !colorRe.MatchString(c) {
		return &customer.FieldError{Field: "color", Reason: fmt.Sprintf("want #rrggbb, got %q", c)}
	}
	return nil
}
