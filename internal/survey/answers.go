package survey

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/siyu-scrm/siyu/internal/customer"
)

// Answer is one question's answer as stored: option ids for choices, Number for numbers and
// ratings, Province and City for a region, Text for the rest (text, date as YYYY-MM-DD, phone).
type Answer struct {
	Choices  []string `json:"choices,omitempty"`
	Text     string   `json:"text,omitempty"`
	Number   *float64 `json:"number,omitempty"`
	Province string   `json:"province,omitempty"`
	City     string   `json:"city,omitempty"`
}

// Answers are a response's answers by question id; unanswered questions are absent.
type Answers map[string]Answer

// Problem is why one answer was refused, as a message key of the public page
// ("survey.err.required") with its arguments.
type Problem struct {
	Key  string
	Args []any
}

func problem(key string, args ...any) *Problem { return &Problem{Key: key, Args: args} }

// Field names of the public form: "q.<question id>" carries the answer (repeated for a
// multiple choice); a region sends "q.<id>.province" and "q.<id>.city".
const fieldPrefix = "q."

// FormField is the form field of question id.
func FormField(id string) string { return fieldPrefix + id }

var phoneRe = regexp.MustCompile(`^1[3-9][0-9]{9}$`)

// NormalizePhone accepts a mainland mobile number written with spaces, dashes or a +86/86
// prefix and returns its 11 digits; ok is false when it is not one.
func NormalizePhone(s string) (string, bool) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\u00a0' || r == '\u3000' {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "+")
	if len(s) == 13 && strings.HasPrefix(s, "86") {
		s = s[2:]
	}
	return s, phoneRe.MatchString(s)
}

// cleanText removes control characters other than newline and tab (PostgreSQL refuses NUL in
// text and JSON) and normalises line ends.
func cleanText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if unicode.IsControl(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// Decode reads and checks the answers of a submitted form against the definition. Every
// question is checked, so the page can show all problems at once; problems are keyed by
// question id. Fields that name no question are ignored. now bounds dates (a birthday is not
// in the future).
func (d *Definition) Decode(form url.Values, now time.Time) (Answers, map[string]*Problem) {
	answers := Answers{}
	problems := map[string]*Problem{}
	for i := range d.Questions {
		q := &d.Questions[i]
		a, p := q.decode(form, now)
		switch {
		case p != nil:
			problems[q.ID] = p
		case a != nil:
			answers[q.ID] = *a
		case q.Required:
			problems[q.ID] = problem("survey.err.required")
		}
	}
	return answers, problems
}

// decode reads one question: nil, nil when it is unanswered.
func (q *Question) decode(form url.Values, now time.Time) (*Answer, *Problem) {
	key := FormField(q.ID)
	if q.Type == Region {
		prov := cleanText(form.Get(key + ".province"))
		city := cleanText(form.Get(key + ".city"))
		if prov == "" && city == "" {
			return nil, nil
		}
		p := province(prov)
		if p == nil {
			return nil, problem("survey.err.province")
		}
		if city != "" && !p.hasCity(city) {
			return nil, problem("survey.err.city")
		}
		return &Answer{Province: prov, City: city}, nil
	}
	vals := form[key]
	if q.Type == Multiple {
		var choices []string
		seen := map[string]bool{}
		for _, v := range vals {
			if v == "" {
				continue
			}
			if q.Option(v) == nil {
				return nil, problem("survey.err.option")
			}
			if !seen[v] {
				seen[v] = true
				choices = append(choices, v)
			}
		}
		if len(choices) == 0 {
			return nil, nil
		}
		if q.MaxChoices > 0 && len(choices) > q.MaxChoices {
			return nil, problem("survey.err.too_many", q.MaxChoices)
		}
		if q.Min != nil && len(choices) < int(*q.Min) {
			return nil, problem("survey.err.too_few", int(*q.Min))
		}
		// Keep the definition's order, whatever order the browser sent.
		sort.SliceStable(choices, func(i, j int) bool { return q.optionIndex(choices[i]) < q.optionIndex(choices[j]) })
		return &Answer{Choices: choices}, nil
	}
	var v string
	n := 0
	for _, x := range vals {
		if strings.TrimSpace(x) != "" {
			v = x
			n++
		}
	}
	if n == 0 {
		return nil, nil
	}
	if n > 1 {
		return nil, problem("survey.err.one_value")
	}
	switch q.Type {
	case Single:
		if q.Option(v) == nil {
			return nil, problem("survey.err.option")
		}
		return &Answer{Choices: []string{v}}, nil
	case Text:
		if !utf8.ValidString(v) {
			return nil, problem("survey.err.encoding")
		}
		t := cleanText(v)
		if t == "" {
			return nil, nil
		}
		max := q.MaxLength
		if max == 0 {
			max = DefaultMaxLength
		}
		if utf8.RuneCountInString(t) > max {
			return nil, problem("survey.err.too_long", max)
		}
		return &Answer{Text: t}, nil
	case Number:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, problem("survey.err.number")
		}
		if q.Min != nil && f < *q.Min {
			return nil, problem("survey.err.min", formatNumber(*q.Min))
		}
		if q.Max != nil && f > *q.Max {
			return nil, problem("survey.err.max", formatNumber(*q.Max))
		}
		return &Answer{Number: &f}, nil
	case Rating:
		r, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || r < 1 || r > q.Scale {
			return nil, problem("survey.err.rating", q.Scale)
		}
		f := float64(r)
		return &Answer{Number: &f}, nil
	case Date:
		if len(v) > 40 {
			return nil, problem("survey.err.date")
		}
		s, err := customer.NormalizeDate(v)
		if err != nil || s == "" || s < "1900-01-01" || s > "2100-12-31" {
			return nil, problem("survey.err.date")
		}
		if q.Map != nil && q.Map.Target == TargetBirthday && s > now.Format("2006-01-02") {
			return nil, problem("survey.err.future")
		}
		return &Answer{Text: s}, nil
	case Phone:
		if len(v) > 40 {
			return nil, problem("survey.err.phone")
		}
		p, ok := NormalizePhone(v)
		if !ok {
			return nil, problem("survey.err.phone")
		}
		return &Answer{Text: p}, nil
	}
	return nil, problem("survey.err.option")
}

func (q *Question) optionIndex(id string) int {
	for i := range q.Options {
		if q.Options[i].ID == id {
			return i
		}
	}
	return len(q.Options)
}

func formatNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// Display is an answer as people read it: the label of a single choice, the labels of a
// multiple choice ([]string), the number (float64), the region as "广东省深圳市", the text.
// Events, exports and the results page use it.
func (q *Question) Display(a Answer) any {
	switch q.Type {
	case Single:
		if len(a.Choices) == 1 {
			if o := q.Option(a.Choices[0]); o != nil {
				return o.Label
			}
		}
		return ""
	case Multiple:
		out := make([]string, 0, len(a.Choices))
		for _, id := range a.Choices {
			if o := q.Option(id); o != nil {
				out = append(out, o.Label)
			}
		}
		return out
	case Number, Rating:
		if a.Number != nil {
			return *a.Number
		}
		return nil
	case Region:
		return RegionText(a.Province, a.City)
	}
	return a.Text
}

// DisplayText is Display as one line of text ("跑步、瑜伽"), for CSV and Excel cells.
func (q *Question) DisplayText(a Answer) string {
	switch v := q.Display(a).(type) {
	case []string:
		return strings.Join(v, "、")
	case float64:
		return formatNumber(v)
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// Effects is what a response does to its customer.
type Effects struct {
	// Patch sets the mapped profile fields and attributes (not yet checked: the store's
	// CheckPatch coerces and checks it against the attribute definitions).
	Patch customer.Patch
	// TagIDs are the tags of the chosen options, each once.
	TagIDs []int64
	// Values are the answers by question id as Display shows them, for the event.
	Values map[string]any
	// Skipped names mapped fields left alone because the answer no longer fits the attribute
	// (its type was changed after the survey was saved); the response is stored anyway.
	Skipped []string
}

// Effects works out what answers do: mapped fields, tags and the event's values. attrType
// tells the type of a defined attribute.
func (d *Definition) Effects(a Answers, attrType func(key string) (customer.AttrType, bool)) Effects {
	e := Effects{Values: map[string]any{}}
	seenTag := map[int64]bool{}
	for i := range d.Questions {
		q := &d.Questions[i]
		ans, ok := a[q.ID]
		if !ok {
			continue
		}
		e.Values[q.ID] = q.Display(ans)
		for _, id := range ans.Choices {
			if o := q.Option(id); o != nil {
				for _, t := range o.TagIDs {
					if !seenTag[t] {
						seenTag[t] = true
						e.TagIDs = append(e.TagIDs, t)
					}
				}
			}
		}
		if q.Map != nil {
			if err := q.mapInto(&e.Patch, ans, attrType); err != nil {
				e.Skipped = append(e.Skipped, q.ID+": "+err.Error())
			}
		}
	}
	return e
}

// mapInto writes one answer to the patch.
func (q *Question) mapInto(p *customer.Patch, a Answer, attrType func(string) (customer.AttrType, bool)) error {
	str := func(s string) *string { return &s }
	chosen := func() []string {
		out := make([]string, 0, len(a.Choices))
		for _, id := range a.Choices {
			if o := q.Option(id); o != nil {
				out = append(out, o.valueOrLabel())
			}
		}
		return out
	}
	switch q.Map.Target {
	case TargetGender:
		c := chosen()
		if len(c) != 1 {
			return fmt.Errorf("no option")
		}
		g, err := customer.NormalizeGender(c[0])
		if err != nil {
			return err
		}
		p.Gender = &g
		return nil
	case TargetBirthday:
		p.Birthday = str(a.Text)
		return nil
	case TargetRegion:
		if q.Type == Region {
			p.Region = str(RegionText(a.Province, a.City))
		} else {
			p.Region = str(a.Text)
		}
		return nil
	case TargetPhone:
		p.Phone = str(a.Text)
		return nil
	}
	key := q.Map.Attr
	want, ok := attrTargets[q.Map.Target]
	if q.Map.Target != TargetCustom {
		key = string(q.Map.Target)
	}
	if t, defined := attrType(key); defined {
		want, ok = t, true
	}
	if !ok {
		return fmt.Errorf("attribute %s is not defined", key)
	}
	var raw any
	switch q.Type {
	case Single:
		c := chosen()
		if len(c) != 1 {
			return fmt.Errorf("no option")
		}
		raw = c[0]
		if want == customer.AttrList {
			raw = c
		}
	case Multiple:
		raw = chosen()
	case Number, Rating:
		if a.Number == nil {
			return fmt.Errorf("no number")
		}
		raw = *a.Number
	case Region:
		raw = RegionText(a.Province, a.City)
	default:
		raw = a.Text
	}
	v, err := customer.CoerceAttr(want, raw)
	if err != nil {
		return err
	}
	if p.Attrs == nil {
		p.Attrs = map[string]any{}
	}
	p.Attrs[key] = v
	return nil
}

// EventProperties are the answers as top-level event properties, which tag rules and segment
// event conditions compare (they read top-level keys): "answer.<question id>" holds what
// Display shows (a multiple choice's labels joined with 、, so `contains` finds one), and for
// choice questions "choice.<question id>" holds the chosen option's id (single) or
// "choice.<question id>.<option id>" is true for each chosen option (multiple). Option ids
// stay put when labels are reworded, so rules on them keep working.
func (d *Definition) EventProperties(a Answers) map[string]any {
	out := map[string]any{}
	for i := range d.Questions {
		q := &d.Questions[i]
		ans, ok := a[q.ID]
		if !ok {
			continue
		}
		switch v := q.Display(ans).(type) {
		case []string:
			out["answer."+q.ID] = strings.Join(v, "、")
		default:
			out["answer."+q.ID] = v
		}
		switch q.Type {
		case Single:
			if len(ans.Choices) == 1 {
				out["choice."+q.ID] = ans.Choices[0]
			}
		case Multiple:
			for _, c := range ans.Choices {
				out["choice."+q.ID+"."+c] = true
			}
		}
	}
	return out
}
