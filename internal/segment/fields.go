package segment

import (
	"strings"

	"github.com/siyu-scrm/siyu/internal/customer"
)

// Type is the type of a field as conditions see it.
type Type string

// Field types.
const (
	String   Type = "string"
	Number   Type = "number"
	Bool     Type = "bool"
	Date     Type = "date"     // a calendar date (birthday, date attributes)
	DateTime Type = "datetime" // an instant, compared by its day in the workspace time zone
	List     Type = "list"     // a list of strings (list attributes, opted_out channels)
	StaffRef Type = "staff"    // a staff id (owner)
)

// ProfileFields are the built-in fields a condition can name, with their types.
var ProfileFields = map[string]Type{
	"name":         String,
	"gender":       String,
	"birthday":     Date,
	"region":       String,
	"phone":        String,
	"email":        String,
	"source":       String,
	"owner":        StaffRef,
	"created_at":   DateTime,
	"last_seen_at": DateTime,
	"opted_out":    List,
}

// Operators lists the comparisons each type accepts.
var Operators = map[Type][]string{
	String:   {"eq", "ne", "in", "not_in", "contains", "not_contains", "starts_with", "is_set", "is_not_set"},
	Number:   {"eq", "ne", "lt", "lte", "gt", "gte", "between", "in", "not_in", "is_set", "is_not_set"},
	Bool:     {"eq", "is_set", "is_not_set"},
	Date:     {"on", "before", "after", "between", "in_last_days", "more_than_days_ago", "in_next_days", "anniversary_in_next_days", "is_set", "is_not_set"},
	DateTime: {"on", "before", "after", "between", "in_last_days", "more_than_days_ago", "is_set", "is_not_set"},
	List:     {"contains", "not_contains", "contains_any", "contains_all", "is_set", "is_not_set"},
	StaffRef: {"eq", "ne", "in", "not_in", "is_set", "is_not_set"},
}

// PropOperators are the comparisons on event properties.
var PropOperators = []string{"eq", "ne", "in", "not_in", "contains", "gt", "gte", "lt", "lte", "is_set", "is_not_set"}

// AttrPrefix starts the name of a custom attribute field.
const AttrPrefix = "attrs."

// AttrTypeToType maps a custom attribute type to a condition type.
func AttrTypeToType(t customer.AttrType) Type {
	switch t {
	case customer.AttrNumber:
		return Number
	case customer.AttrBool:
		return Bool
	case customer.AttrDate:
		return Date
	case customer.AttrList:
		return List
	}
	return String
}

// Schema tells validation what exists: attribute types, tags, tag groups and saved segments.
type Schema interface {
	AttrType(key string) (customer.AttrType, bool)
	TagExists(id int64) bool
	TagGroupExists(id int64) bool
	// SegmentTree returns a saved segment's tree, for membership conditions and cycle checks.
	SegmentTree(id int64) (*Node, bool)
}

// FieldType resolves a field name to its type.
func FieldType(s Schema, field string) (Type, bool) {
	if key, ok := strings.CutPrefix(field, AttrPrefix); ok {
		t, ok := s.AttrType(key)
		if !ok {
			return "", false
		}
		return AttrTypeToType(t), true
	}
	if t, ok := ProfileFields[field]; ok {
		return t, true
	}
	t, ok := ModelFields[field]
	return t, ok
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// OrderMetrics and their value types.
var OrderMetrics = map[string]Type{"count": Number, "total": Number, "avg": Number, "first_at": DateTime, "last_at": DateTime}

// HabitKinds and their allowed ranges.
var HabitKinds = map[string][2]int{"active_hour": {0, 23}, "buy_hour": {0, 23}, "active_weekday": {1, 7}, "buy_weekday": {1, 7}}
