package survey

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/siyu-scrm/siyu/internal/customer"
)

// Limits of a definition. They keep the public page short enough to answer on a phone and a
// response small enough to store and export without surprises.
const (
	MaxQuestions     = 100
	MaxOptions       = 50
	MaxTagsPerOption = 20
	MaxTitle         = 200  // characters: survey title, option label
	MaxQuestionTitle = 500  // characters
	MaxIntro         = 4000 // characters: intro, thanks text, help text
	DefaultMaxLength = 500  // characters of a text answer unless the question says otherwise
	MaxTextLength    = 5000 // the most a question may allow
)

var idRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// TagInfo is what validation needs to know of a tag.
type TagInfo struct {
	Name      string
	GroupID   int64
	GroupName string
	Exclusive bool // the tag's group is single-choice
}

// Refs answers the questions a definition asks of the rest of siyu: which tags exist, which
// attributes are defined with which type. The store implements it inside its transaction.
type Refs interface {
	Tag(id int64) (TagInfo, bool)
	Attr(key string) (customer.AttrType, bool)
}

func fieldErr(field, format string, args ...any) error {
	return &customer.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Normalize trims the texts of a definition and fills what an operator may leave out: the
// identification (link), question ids (q1, q2, …), option ids (a, b, …, then o27, …) and a
// rating's scale (5). It is applied before Validate.
func (d *Definition) Normalize() {
	d.Title = strings.TrimSpace(d.Title)
	d.Intro = strings.TrimSpace(d.Intro)
	d.Thanks = strings.TrimSpace(d.Thanks)
	if d.Identify == "" {
		d.Identify = ByLink
	}
	used := map[string]bool{}
	for _, q := range d.Questions {
		used[q.ID] = true
	}
	n := 0
	for i := range d.Questions {
		q := &d.Questions[i]
		q.Title = strings.TrimSpace(q.Title)
		q.Help = strings.TrimSpace(q.Help)
		if q.ID == "" {
			for {
				n++
				id := "q" + strconv.Itoa(n)
				if !used[id] {
					q.ID, used[id] = id, true
					break
				}
			}
		}
		if q.Type == Rating && q.Scale == 0 {
			q.Scale = 5
		}
		if q.Map != nil && q.Map.Target == "" && q.Map.Attr == "" {
			q.Map = nil
		}
		optUsed := map[string]bool{}
		for _, o := range q.Options {
			optUsed[o.ID] = true
		}
		k := 0
		for j := range q.Options {
			o := &q.Options[j]
			o.Label = strings.TrimSpace(o.Label)
			o.Value = strings.TrimSpace(o.Value)
			if o.ID != "" {
				continue
			}
			for {
				id := optionID(k)
				k++
				if !optUsed[id] {
					o.ID, optUsed[id] = id, true
					break
				}
			}
		}
	}
}

// optionID is a, b, …, z, then o27, o28, ….
func optionID(k int) string {
	if k < 26 {
		return string(rune('a' + k))
	}
	return "o" + strconv.Itoa(k+1)
}

// Validate checks a normalised definition. The first problem comes back as a
// *customer.FieldError naming its field the way the JSON is written:
// "questions[3].options[1].tag_ids[0]".
func (d *Definition) Validate(refs Refs) error {
	if d.Title == "" {
		return fieldErr("title", "a survey needs a title")
	}
	if n := utf8.RuneCountInString(d.Title); n > MaxTitle {
		return fieldErr("title", "%d characters; at most %d", n, MaxTitle)
	}
	for _, f := range []struct{ name, v string }{{"intro", d.Intro}, {"thanks", d.Thanks}} {
		if n := utf8.RuneCountInString(f.v); n > MaxIntro {
			return fieldErr(f.name, "%d characters; at most %d", n, MaxIntro)
		}
	}
	if d.Identify != ByLink && d.Identify != ByPhone {
		return fieldErr("identify", "unknown %q (want link or phone)", d.Identify)
	}
	if !d.StartsAt.IsZero() && !d.EndsAt.IsZero() && !d.EndsAt.After(d.StartsAt) {
		return fieldErr("ends_at", "must be after starts_at")
	}
	if len(d.Questions) == 0 {
		return fieldErr("questions", "a survey needs at least one question")
	}
	if len(d.Questions) > MaxQuestions {
		return fieldErr("questions", "%d questions; at most %d", len(d.Questions), MaxQuestions)
	}
	ids := map[string]int{}
	targets := map[string]int{} // mapped field → question index
	// exclusive[group] is the question whose options carry tags of that single-choice group.
	exclusive := map[int64]int{}
	for i := range d.Questions {
		q := &d.Questions[i]
		at := fmt.Sprintf("questions[%d]", i)
		if !idRe.MatchString(q.ID) {
			return fieldErr(at+".id", "want 1–32 letters, digits, _ or -")
		}
		if j, dup := ids[q.ID]; dup {
			return fieldErr(at+".id", "%q is also the id of questions[%d]", q.ID, j)
		}
		ids[q.ID] = i
		if !q.Type.Valid() {
			return fieldErr(at+".type", "unknown type %q (want one of %s)", q.Type, joinTypes())
		}
		if q.Title == "" {
			return fieldErr(at+".title", "a question needs a title")
		}
		if n := utf8.RuneCountInString(q.Title); n > MaxQuestionTitle {
			return fieldErr(at+".title", "%d characters; at most %d", n, MaxQuestionTitle)
		}
		if n := utf8.RuneCountInString(q.Help); n > MaxIntro {
			return fieldErr(at+".help", "%d characters; at most %d", n, MaxIntro)
		}
		if err := q.validateShape(at); err != nil {
			return err
		}
		if err := q.validateOptions(at, i, refs, exclusive); err != nil {
			return err
		}
		if q.Map != nil {
			key, err := q.validateMapping(at, refs)
			if err != nil {
				return err
			}
			if j, dup := targets[key]; dup {
				return fieldErr(at+".map.target", "questions[%d] already writes %s", j, key)
			}
			targets[key] = i
		}
	}
	return nil
}

func joinTypes() string {
	s := make([]string, len(Types))
	for i, t := range Types {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

func finite(f *float64) bool { return f == nil || (!math.IsNaN(*f) && !math.IsInf(*f, 0)) }

// validateShape checks the settings that depend on the type.
func (q *Question) validateShape(at string) error {
	if q.Type.HasOptions() {
		if len(q.Options) < 2 {
			return fieldErr(at+".options", "a choice question needs at least two options")
		}
		if len(q.Options) > MaxOptions {
			return fieldErr(at+".options", "%d options; at most %d", len(q.Options), MaxOptions)
		}
	} else if len(q.Options) > 0 {
		return fieldErr(at+".options", "a %s question has no options", q.Type)
	}
	if !finite(q.Min) {
		return fieldErr(at+".min", "not a finite number")
	}
	if !finite(q.Max) {
		return fieldErr(at+".max", "not a finite number")
	}
	if q.Min != nil && q.Max != nil && *q.Min > *q.Max {
		return fieldErr(at+".max", "smaller than min")
	}
	if q.MaxLength < 0 || q.MaxLength > MaxTextLength {
		return fieldErr(at+".max_length", "want 1–%d characters", MaxTextLength)
	}
	if q.MaxChoices < 0 {
		return fieldErr(at+".max_choices", "must not be negative")
	}
	if q.MaxLength != 0 && q.Type != Text {
		return fieldErr(at+".max_length", "only a text question has a maximum length")
	}
	if q.MaxChoices != 0 && q.Type != Multiple {
		return fieldErr(at+".max_choices", "only a multiple choice has a maximum of choices")
	}
	if (q.Min != nil || q.Max != nil) && q.Type != Number && q.Type != Multiple {
		field := at + ".min"
		if q.Min == nil {
			field = at + ".max"
		}
		return fieldErr(field, "only a number question (or the fewest choices of a multiple choice) has bounds")
	}
	if q.Type == Multiple {
		if q.Max != nil {
			return fieldErr(at+".max", "use max_choices for the most choices of a multiple choice")
		}
		if q.Min != nil && (*q.Min < 0 || *q.Min != math.Trunc(*q.Min) || int(*q.Min) > len(q.Options)) {
			return fieldErr(at+".min", "the fewest choices must be a whole number between 0 and the number of options")
		}
		if q.MaxChoices > len(q.Options) {
			return fieldErr(at+".max_choices", "%d is more than the %d options", q.MaxChoices, len(q.Options))
		}
		if q.Min != nil && q.MaxChoices != 0 && int(*q.Min) > q.MaxChoices {
			return fieldErr(at+".max_choices", "smaller than min")
		}
	}
	if q.Type == Rating {
		if q.Scale != 5 && q.Scale != 10 {
			return fieldErr(at+".scale", "want 5 or 10")
		}
	} else if q.Scale != 0 {
		return fieldErr(at+".scale", "only a rating has a scale")
	}
	return nil
}

// validateOptions checks ids, labels and tags of the options. Tags of one single-choice
// group may be carried only by the options of one single-choice question: otherwise one
// response could ask for two tags of a group that holds one.
func (q *Question) validateOptions(at string, qi int, refs Refs, exclusive map[int64]int) error {
	ids := map[string]int{}
	for j := range q.Options {
		o := &q.Options[j]
		oat := fmt.Sprintf("%s.options[%d]", at, j)
		if !idRe.MatchString(o.ID) {
			return fieldErr(oat+".id", "want 1–32 letters, digits, _ or -")
		}
		if k, dup := ids[o.ID]; dup {
			return fieldErr(oat+".id", "%q is also the id of options[%d]", o.ID, k)
		}
		ids[o.ID] = j
		if o.Label == "" {
			return fieldErr(oat+".label", "an option needs a label")
		}
		if n := utf8.RuneCountInString(o.Label); n > MaxTitle {
			return fieldErr(oat+".label", "%d characters; at most %d", n, MaxTitle)
		}
		if n := utf8.RuneCountInString(o.Value); n > MaxTitle {
			return fieldErr(oat+".value", "%d characters; at most %d", n, MaxTitle)
		}
		if len(o.TagIDs) > MaxTagsPerOption {
			return fieldErr(oat+".tag_ids", "%d tags; at most %d", len(o.TagIDs), MaxTagsPerOption)
		}
		for k, id := range o.TagIDs {
			tat := fmt.Sprintf("%s.tag_ids[%d]", oat, k)
			t, ok := refs.Tag(id)
			if !ok {
				return fieldErr(tat, "no tag %d", id)
			}
			if !t.Exclusive {
				continue
			}
			if q.Type != Single {
				return fieldErr(tat, "tag %q is in the single-choice group %q: a multiple choice could add two of its tags; use a single choice", t.Name, t.GroupName)
			}
			if prev, ok := exclusive[t.GroupID]; ok && prev != qi {
				return fieldErr(tat, "tag %q is in the single-choice group %q, which questions[%d] also uses: one response could add two of its tags", t.Name, t.GroupName, prev)
			}
			exclusive[t.GroupID] = qi
		}
	}
	return nil
}

// attrTarget is a target written to an attribute of its own name, with the type it takes.
var attrTargets = map[Target]customer.AttrType{
	TargetJob: customer.AttrString, TargetEducation: customer.AttrString,
	TargetIncome: customer.AttrNumber, TargetHeight: customer.AttrNumber, TargetWeight: customer.AttrNumber,
	TargetHobbies: customer.AttrList,
}

// validateMapping checks that the question's answers fit the target, and returns the field
// the mapping writes ("gender", "attrs.income"), so that two questions never write one field.
func (q *Question) validateMapping(at string, refs Refs) (string, error) {
	m := q.Map
	field := at + ".map.target"
	switch m.Target {
	case TargetGender:
		if q.Type != Single {
			return "", fieldErr(field, "gender is set by a single choice")
		}
		for j, o := range q.Options {
			if _, err := customer.NormalizeGender(o.valueOrLabel()); err != nil {
				f := fmt.Sprintf("%s.options[%d].value", at, j)
				return "", fieldErr(f, "the question sets gender: give this option the value male, female or unknown")
			}
		}
		return "gender", nil
	case TargetBirthday:
		if q.Type != Date {
			return "", fieldErr(field, "birthday is set by a date question")
		}
		return "birthday", nil
	case TargetRegion:
		if q.Type != Region && q.Type != Text {
			return "", fieldErr(field, "region is set by a region or text question")
		}
		return "region", nil
	case TargetPhone:
		if q.Type != Phone {
			return "", fieldErr(field, "phone is set by a phone question")
		}
		return "phone", nil
	case TargetCustom:
		if m.Attr == "" {
			return "", fieldErr(at+".map.attr", "name the custom attribute to write")
		}
		t, ok := refs.Attr(m.Attr)
		if !ok {
			return "", fieldErr(at+".map.attr", "no attribute %q: define it first (POST /api/v1/attributes)", m.Attr)
		}
		return "attrs." + m.Attr, q.fits(at, t, m.Attr)
	case "":
		return "", fieldErr(field, "name a target (one of %s)", joinTargets())
	}
	want, ok := attrTargets[m.Target]
	if !ok {
		return "", fieldErr(field, "unknown target %q (want one of %s)", m.Target, joinTargets())
	}
	if m.Attr != "" {
		return "", fieldErr(at+".map.attr", "only a custom target names an attribute")
	}
	key := string(m.Target)
	if t, ok := refs.Attr(key); ok && t != want {
		want = t // the attribute exists with its own type: answers must fit that
	}
	return "attrs." + key, q.fits(at, want, key)
}

func joinTargets() string {
	s := make([]string, len(Targets))
	for i, t := range Targets {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

func (o *Option) valueOrLabel() string {
	if o.Value != "" {
		return o.Value
	}
	return o.Label
}

// fits checks that every answer of q can be written to an attribute of type t.
func (q *Question) fits(at string, t customer.AttrType, key string) error {
	bad := func() error {
		return fieldErr(at+".map.target", "attribute %s is of type %s; a %s question cannot write it", key, t, q.Type)
	}
	switch t {
	case customer.AttrString:
		if q.Type == Multiple {
			return bad()
		}
	case customer.AttrNumber:
		switch q.Type {
		case Number, Rating:
		case Single:
			for j, o := range q.Options {
				if _, err := customer.CoerceAttr(customer.AttrNumber, o.valueOrLabel()); err != nil {
					return fieldErr(fmt.Sprintf("%s.options[%d].value", at, j), "attribute %s is a number: give this option a number value", key)
				}
			}
		default:
			return bad()
		}
	case customer.AttrBool:
		if q.Type != Single {
			return bad()
		}
		for j, o := range q.Options {
			if _, err := customer.CoerceAttr(customer.AttrBool, o.valueOrLabel()); err != nil {
				return fieldErr(fmt.Sprintf("%s.options[%d].value", at, j), "attribute %s is yes/no: give this option the value true or false", key)
			}
		}
	case customer.AttrDate:
		if q.Type != Date {
			return bad()
		}
	case customer.AttrList:
		if q.Type != Multiple && q.Type != Single {
			return bad()
		}
	default:
		return bad()
	}
	return nil
}
