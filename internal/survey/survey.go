// Package survey holds surveys (问卷): their definition (questions, options, settings), the
// rules a definition must follow, the decoding and checking of a respondent's answers, the
// mapping of answers to customer attributes and tags, and the signed per-customer links that
// identify a respondent without a sign-in. It knows nothing of HTTP or SQL: the store keeps
// surveys and responses, the web package serves the public page and the operators' API.
package survey

import (
	"time"
)

// Type is the kind of a question.
type Type string

// The question types.
const (
	Single   Type = "single"   // one option
	Multiple Type = "multiple" // several options, up to MaxChoices
	Text     Type = "text"     // free text, up to MaxLength characters
	Number   Type = "number"   // a number between Min and Max
	Date     Type = "date"     // a date, YYYY-MM-DD
	Rating   Type = "rating"   // 1…Scale (5 or 10)
	Region   Type = "region"   // province and city (省/市)
	Phone    Type = "phone"    // a mainland mobile number
)

// Types lists every question type.
var Types = []Type{Single, Multiple, Text, Number, Date, Rating, Region, Phone}

// Valid reports whether t is a known type.
func (t Type) Valid() bool {
	for _, x := range Types {
		if x == t {
			return true
		}
	}
	return false
}

// HasOptions reports whether questions of type t are answered by choosing options.
func (t Type) HasOptions() bool { return t == Single || t == Multiple }

// Target is the customer field a question's answer is written to.
type Target string

// The mapping targets. Gender, birthday, region and phone are profile fields; job, education,
// income, hobbies, height and weight are attributes of those names; custom writes the
// attribute named by Mapping.Attr, which must be defined (POST /api/v1/attributes).
const (
	TargetGender    Target = "gender"
	TargetBirthday  Target = "birthday"
	TargetRegion    Target = "region"
	TargetPhone     Target = "phone"
	TargetJob       Target = "job"
	TargetEducation Target = "education"
	TargetIncome    Target = "income"
	TargetHobbies   Target = "hobbies"
	TargetHeight    Target = "height"
	TargetWeight    Target = "weight"
	TargetCustom    Target = "custom"
)

// Targets lists every mapping target.
var Targets = []Target{TargetGender, TargetBirthday, TargetRegion, TargetPhone, TargetJob, TargetEducation, TargetIncome, TargetHobbies, TargetHeight, TargetWeight, TargetCustom}

// Mapping writes a question's answer to a customer field.
type Mapping struct {
	Target Target `json:"target"`
	Attr   string `json:"attr,omitempty"` // the attribute key, with TargetCustom
}

// Option is one answer of a choice question.
type Option struct {
	// ID is stable across edits, so stored answers keep their meaning; at most 32 characters
	// of letters, digits, _ and -.
	ID    string `json:"id"`
	Label string `json:"label"`
	// Value is what a mapped attribute receives when this option is chosen ("female" for
	// 女士, 5000 for 5千-1万); empty means the label.
	Value string `json:"value,omitempty"`
	// TagIDs are added to the respondent who chooses this option (reason "survey").
	TagIDs []int64 `json:"tag_ids,omitempty"`
}

// Question is one question of a survey.
type Question struct {
	// ID names the question in answers, events and exports; stable across edits.
	ID       string   `json:"id"`
	Type     Type     `json:"type"`
	Title    string   `json:"title"`
	Help     string   `json:"help,omitempty"`
	Required bool     `json:"required"`
	Options  []Option `json:"options,omitempty"`
	// Min and Max bound a number answer (inclusive); for a multiple choice, Min is the fewest
	// choices. Nil is unbounded.
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
	// MaxLength caps a text answer in characters (default DefaultMaxLength).
	MaxLength int `json:"max_length,omitempty"`
	// MaxChoices caps a multiple choice (0: every option).
	MaxChoices int `json:"max_choices,omitempty"`
	// Scale is the top of a rating: 5 or 10.
	Scale int      `json:"scale,omitempty"`
	Map   *Mapping `json:"map,omitempty"`
}

// Identify says how the public page knows who answers.
type Identify string

// The ways to identify a respondent.
const (
	// ByLink accepts only signed per-customer links (from a welcome message or an SOP step).
	ByLink Identify = "link"
	// ByPhone also accepts anyone who gives a mobile number: the customer with that phone
	// identity, or a new customer with it.
	ByPhone Identify = "phone"
)

// Status is the life of a survey.
type Status string

// The statuses.
const (
	Draft  Status = "draft"  // being built; the public page says it is not open yet
	Open   Status = "open"   // answers accepted between StartsAt and EndsAt
	Closed Status = "closed" // no more answers
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool { return s == Draft || s == Open || s == Closed }

// Definition is what an operator builds: settings and questions.
type Definition struct {
	Title  string `json:"title"`
	Intro  string `json:"intro,omitempty"`
	Thanks string `json:"thanks,omitempty"`
	// StartsAt and EndsAt bound when answers are accepted (zero: unbounded).
	StartsAt    time.Time  `json:"starts_at,omitzero"`
	EndsAt      time.Time  `json:"ends_at,omitzero"`
	AllowRepeat bool       `json:"allow_repeat"`
	Identify    Identify   `json:"identify"`
	Questions   []Question `json:"questions"`
}

// Survey is a stored survey.
type Survey struct {
	ID     int64  `json:"id"`
	Token  string `json:"token"` // the public page is /s/{token}
	Status Status `json:"status"`
	Definition
	Responses   int64     `json:"responses"`   // stored answers
	Respondents int64     `json:"respondents"` // distinct customers
	CreatedBy   int64     `json:"created_by,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	ClosedAt    time.Time `json:"closed_at,omitzero"`
}

// Question returns the question with id, or nil.
func (d *Definition) Question(id string) *Question {
	for i := range d.Questions {
		if d.Questions[i].ID == id {
			return &d.Questions[i]
		}
	}
	return nil
}

// Option returns the option with id, or nil.
func (q *Question) Option(id string) *Option {
	for i := range q.Options {
		if q.Options[i].ID == id {
			return &q.Options[i]
		}
	}
	return nil
}

// Accepting says whether a survey takes answers at now, and if not, why: "draft", "closed",
// "not_started" or "ended".
func (s *Survey) Accepting(now time.Time) (bool, string) {
	switch {
	case s.Status == Draft:
		return false, "draft"
	case s.Status == Closed:
		return false, "closed"
	case !s.StartsAt.IsZero() && now.Before(s.StartsAt):
		return false, "not_started"
	case !s.EndsAt.IsZero() && !now.Before(s.EndsAt):
		return false, "ended"
	}
	return true, ""
}

// EventName is the event recorded for every stored response, with properties survey_id,
// survey_title, response_id, via (link or phone), answers (question id → answer: the label of a
// single choice, the labels of a multiple choice, the number, date, text, region or phone) and
// the flat keys of EventProperties ("answer.skin", "choice.skin", "choice.hobbies.yoga") that
// tag rules and segments compare.
const EventName = "Survey Answered"
