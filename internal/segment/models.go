package segment

import (
	"fmt"
	"strings"
)

// Model fields: what the customer models (package model) computed for a customer, usable in
// conditions like any profile field. docs/segments.md gives their meaning.
//
//   - rfm.class: the customer's class in the newest RFM run (未消费 when the customer had no
//     paid order in its window); unset for everyone while RFM was never run.
//   - rfm.r_score, rfm.f_score, rfm.m_score (1–5), rfm.recency_days, rfm.frequency and
//     rfm.monetary (yuan, net of refunds): the newest run's values, set for its buyers only.
//   - lifecycle.stage, journey.stage, aipl.stage, tier: the stage a model placed the customer
//     in, and MODEL.entered_at (tier.entered_at) when the customer entered it.
//   - points: the points balance (0 for a customer who never had points).
var ModelFields = map[string]Type{
	"rfm.class":            String,
	"rfm.r_score":          Number,
	"rfm.f_score":          Number,
	"rfm.m_score":          Number,
	"rfm.recency_days":     Number,
	"rfm.frequency":        Number,
	"rfm.monetary":         Number,
	"lifecycle.stage":      String,
	"lifecycle.entered_at": DateTime,
	"journey.stage":        String,
	"journey.entered_at":   DateTime,
	"aipl.stage":           String,
	"aipl.entered_at":      DateTime,
	"tier":                 String,
	"tier.entered_at":      DateTime,
	"points":               Number,
}

// StageModels are the models whose output is one stage per customer (customer_stages), in the
// order the console lists them.
var StageModels = []string{"lifecycle", "journey", "aipl", "tier"}

// Parts of model fields, as ModelField names them.
const (
	PartClass     = "class"
	PartRScore    = "r_score"
	PartFScore    = "f_score"
	PartMScore    = "m_score"
	PartRecency   = "recency_days"
	PartFrequency = "frequency"
	PartMonetary  = "monetary"
	PartStage     = "stage"
	PartEnteredAt = "entered_at"
	PartPoints    = "balance"
)

// Models with fields of their own.
const (
	ModelRFM    = "rfm"
	ModelPoints = "points"
	ModelTier   = "tier"
)

// ModelField splits a model field into its model and part: "rfm.class" is (rfm, class),
// "lifecycle.stage" is (lifecycle, stage), "tier" is (tier, stage), "tier.entered_at" is (tier,
// entered_at) and "points" is (points, balance). ok is false for any other field.
func ModelField(field string) (model, part string, ok bool) {
	if _, known := ModelFields[field]; !known {
		return "", "", false
	}
	switch field {
	case ModelTier:
		return ModelTier, PartStage, true
	case ModelPoints:
		return ModelPoints, PartPoints, true
	}
	model, part, _ = strings.Cut(field, ".")
	return model, part, true
}

// IsScore reports whether a model field is one of the RFM scores (1–5).
func IsScore(part string) bool {
	return part == PartRScore || part == PartFScore || part == PartMScore
}

// ValueSchema is implemented by schemas that know every value a text field can take (the RFM
// classes, the default lifecycle stages). Validation then refuses eq, ne, in and not_in with a
// value outside them: it would match nobody (or everybody), which is always a typo.
type ValueSchema interface {
	FieldValues(field string) ([]string, bool)
}

// checkKnownValues refuses values a ValueSchema does not know.
func checkKnownValues(s Schema, field, cmp string, value any, path string) error {
	vs, ok := s.(ValueSchema)
	if !ok {
		return nil
	}
	known, ok := vs.FieldValues(field)
	if !ok {
		return nil
	}
	check := func(x any, p string) error {
		v, _ := x.(string)
		if !contains(known, v) {
			return errf(p, "%s has no value %q; want one of %s", field, v, strings.Join(known, ", "))
		}
		return nil
	}
	vp := join(path, "value")
	switch cmp {
	case "eq", "ne":
		return check(value, vp)
	case "in", "not_in":
		for i, x := range value.([]any) {
			if err := check(x, fmt.Sprintf("%s[%d]", vp, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkScoreValues refuses an RFM score condition on a number outside 1–5, which no customer
// can have.
func checkScoreValues(field string, value any, path string) error {
	vp := join(path, "value")
	one := func(x any, p string) error {
		if f, ok := x.(float64); ok && (f < 1 || f > 5) {
			return errf(p, "%s is a score from 1 to 5, got %v", field, f)
		}
		return nil
	}
	if list, ok := value.([]any); ok {
		for i, x := range list {
			if err := one(x, fmt.Sprintf("%s[%d]", vp, i)); err != nil {
				return err
			}
		}
		return nil
	}
	return one(value, vp)
}
