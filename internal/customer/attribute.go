package customer

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"time"
)

// AttrType is the type of a custom attribute. The first value an attribute receives fixes its
// type; later values of another type are refused, so segments can compare them safely.
type AttrType string

// The attribute types.
const (
	AttrString AttrType = "string"
	AttrNumber AttrType = "number"
	AttrBool   AttrType = "bool"
	AttrDate   AttrType = "date" // stored as "YYYY-MM-DD"
	AttrList   AttrType = "list" // a list of strings, e.g. hobbies
)

// AttrDef describes a custom attribute.
type AttrDef struct {
	Key       string    `json:"key"`
	Type      AttrType  `json:"type"`
	Label     string    `json:"label"`
	CreatedAt time.Time `json:"created_at"`
}

var attrKeyRe = regexp.MustCompile(`^[\p{L}_][\p{L}\p{N}_.\-]{0,63}$`)

// ValidAttrKey reports whether k can name an attribute.
func ValidAttrKey(k string) bool { return attrKeyRe.MatchString(k) }

// ValidAttrType reports whether t is a known attribute type.
func ValidAttrType(t AttrType) bool {
	switch t {
	case AttrString, AttrNumber, AttrBool, AttrDate, AttrList:
		return true
	}
	return false
}

var dateRe = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// InferAttrType guesses the type of a first value: JSON numbers are numbers, booleans bools,
// arrays lists, "YYYY-MM-DD" strings dates, anything else a string.
func InferAttrType(v any) (AttrType, error) {
	switch x := v.(type) {
	case bool:
		return AttrBool, nil
	case float64, int, int64:
		return AttrNumber, nil
	case []any, []string:
		return AttrList, nil
	case string:
		if dateRe.MatchString(x) {
			if _, err := time.Parse("2006-01-02", x); err == nil {
				return AttrDate, nil
			}
		}
		return AttrString, nil
	}
	return "", fmt.Errorf("unsupported value of type %T (want string, number, bool, date or list of strings)", v)
}

// CoerceAttr converts v to the canonical Go value of type t: string, float64, bool,
// "YYYY-MM-DD" string or []string. Strings are parsed where it is unambiguous (a CSV cell "42"
// for a number attribute), so that imports and the API agree.
func CoerceAttr(t AttrType, v any) (any, error) {
	switch t {
	case AttrString:
		switch x := v.(type) {
		case string:
			if len(x) > 4096 {
				return nil, fmt.Errorf("string longer than 4096 bytes")
			}
			return x, nil
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64), nil
		case bool:
			return strconv.FormatBool(x), nil
		}
	case AttrNumber:
		switch x := v.(type) {
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("not a finite number")
			}
			return x, nil
		case int:
			return float64(x), nil
		case int64:
			return float64(x), nil
		case string:
			f, err := strconv.ParseFloat(x, 64)
			if err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
				return f, nil
			}
		}
	case AttrBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			switch x {
			case "true", "1", "yes", "是", "TRUE", "True":
				return true, nil
			case "false", "0", "no", "否", "FALSE", "False":
				return false, nil
			}
		}
	case AttrDate:
		if s, ok := v.(string); ok {
			return NormalizeDate(s)
		}
	case AttrList:
		switch x := v.(type) {
		case []string:
			return x, nil
		case []any:
			out := make([]string, 0, len(x))
			for i, e := range x {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("list item %d is %T, want string", i, e)
				}
				out = append(out, s)
			}
			return out, nil
		case string:
			return splitList(x), nil
		}
	default:
		return nil, fmt.Errorf("unknown attribute type %q", t)
	}
	return nil, fmt.Errorf("value %v (%T) is not a %s", v, v, t)
}

// splitList splits a CSV cell such as "跑步,瑜伽；阅读" on ASCII and Chinese separators.
func splitList(s string) []string {
	var out []string
	cur := []rune{}
	flush := func() {
		if t := trimSpace(string(cur)); t != "" {
			out = append(out, t)
		}
		cur = cur[:0]
	}
	for _, r := range s {
		switch r {
		case ',', '，', ';', '；', '|', '、':
			flush()
		default:
			cur = append(cur, r)
		}
	}
	flush()
	return out
}

func trimSpace(s string) string {
	i, j := 0, len(s)
	for i < j && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	for j > i && (s[j-1] == ' ' || s[j-1] == '\t') {
		j--
	}
	return s[i:j]
}
