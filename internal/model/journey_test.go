package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
)

// schema knows tag 1 and nothing else.
type schema struct{}

func (schema) AttrType(string) (customer.AttrType, bool) { return "", false }
func (schema) TagExists(id int64) bool                   { return id == 1 }
func (schema) TagGroupExists(int64) bool                 { return false }
func (schema) SegmentTree(int64) (*segment.Node, bool)   { return nil, false }
func errField(err error) string {
	var fe *customer.FieldError
	if errors.As(err, &fe) {
		return fe.Field
	}
	return fmt.Sprintf("not a field error: %v", err)
}

func TestAssignStagesFirstMatchWins(t *testing.T) {
	ids := []int64{1, 2, 3, 4, 5, 6, 9}
	sets := [][]int64{
		{2, 9, 10},    // 10 is not a live customer: ignored
		{1, 2, 3},     // 2 is already in stage 0
		{3, 4, 5, 11}, // 3 already in stage 1
	}
	got := AssignStages(ids, sets)
	want := []uint8{1, 0, 1, 2, 2, 3, 0} // 6 matches none: the fallback (3)
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := AssignStages(ids, nil); !slices.Equal(got, []uint8{0, 0, 0, 0, 0, 0, 0}) {
		t.Fatalf("no stages: %v", got)
	}
}

// TestAssignStagesAgreesWithMaps checks the merge walk against the obvious map version on
// random sets.
func TestAssignStagesAgreesWithMaps(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 50; round++ {
		var ids []int64
		for id := int64(1); id < 500; id++ {
			if rng.IntN(3) > 0 {
				ids = append(ids, id)
			}
		}
		sets := make([][]int64, 1+rng.IntN(5))
		for i := range sets {
			for id := int64(1); id < 520; id++ {
				if rng.IntN(4) == 0 {
					sets[i] = append(sets[i], id)
				}
			}
		}
		got := AssignStages(ids, sets)
		for k, id := range ids {
			want := uint8(len(sets))
			for i := len(sets) - 1; i >= 0; i-- {
				if slices.Contains(sets[i], id) {
					want = uint8(i)
				}
			}
			if got[k] != want {
				t.Fatalf("round %d customer %d: stage %d, want %d", round, id, got[k], want)
			}
		}
	}
}

func TestDefaultJourneyIsValid(t *testing.T) {
	cfg := DefaultJourneyConfig()
	if err := cfg.Validate(schema{}); err != nil {
		t.Fatal(err)
	}
	got := cfg.Plan().Stages()
	want := []Stage{JourneyKOC, JourneyRepeat, JourneyFirstOrder, JourneyUnpaid, JourneyUnmatched}
	if !slices.Equal(got, want) {
		t.Fatalf("stages %v, want %v", got, want)
	}
	// The saved form reads back as the same configuration.
	data, _ := json.Marshal(cfg)
	back, err := ParseJourneyConfig(data)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(back)
	if string(again) != string(data) {
		t.Fatalf("round trip:\n%s\n%s", data, again)
	}
}

func TestJourneyConfigErrorsNameTheField(t *testing.T) {
	good := `{"name":"A","tree":{"order":{"metric":"count","cmp":"gte","value":1}}}`
	many := make([]string, MaxStages+1)
	for i := range many {
		many[i] = strings.Replace(good, `"A"`, fmt.Sprintf(`"S%d"`, i), 1)
	}
	for _, c := range []struct{ body, field string }{
		{`{"stages":[],"fallback":"其他"}`, "stages"},
		{`{"stages":[` + strings.Join(many, ",") + `],"fallback":"其他"}`, "stages"},
		{`{"stages":[{"name":"  ","tree":{"order":{"metric":"count","cmp":"gte","value":1}}}],"fallback":"其他"}`, "stages[0].name"},
		{`{"stages":[` + good + `,` + good + `],"fallback":"其他"}`, "stages[1].name"},
		{`{"stages":[` + good + `],"fallback":""}`, "fallback"},
		{`{"stages":[` + good + `],"fallback":"A"}`, "fallback"},
		{`{"stages":[` + good + `,{"name":"B"}],"fallback":"其他"}`, "stages[1].tree"},
		{`{"stages":[` + good + `,` + strings.Replace(good, `"A"`, `"B"`, 1) + `,{"name":"C","tree":{"op":"and","children":[{"field":"nope","cmp":"eq","value":1}]}}],"fallback":"其他"}`, "stages[2].tree.children[0].field"},
		{`{"stages":[{"name":"A","tree":{"op":"or","children":[{"tag":{"match":"any","ids":[7]}}]}}],"fallback":"其他"}`, "stages[0].tree.children[0].tag.ids[0]"},
		{`{"stages":[{"name":"A","tree":{"op":"and","children":[{"bogus":1}]}}],"fallback":"其他"}`, "stages[0].tree.children[0].bogus"},
		{`{"stages":[{"name":"A","description":"` + strings.Repeat("长", 201) + `","tree":{"order":{"metric":"count","cmp":"gte","value":1}}}],"fallback":"其他"}`, "stages[0].description"},
	} {
		cfg, err := ParseJourneyConfig([]byte(c.body))
		if err == nil {
			err = cfg.Validate(schema{})
		}
		if got := errField(err); got != c.field {
			t.Errorf("%.80s: field %q, want %q (%v)", c.body, got, c.field, err)
		}
	}
	if _, err := ParseJourneyConfig([]byte(`{"stages":[`)); err == nil || errField(err) != "not a field error: "+err.Error() {
		t.Errorf("malformed JSON: %v", err)
	}
	if _, err := ParseJourneyConfig([]byte(`{"stages":[],"extra":1}`)); err == nil {
		t.Error("an unknown key was accepted")
	}
}

func TestAIPLDefaultsAndPlan(t *testing.T) {
	cfg := DefaultAIPLConfig()
	if err := cfg.Validate(schema{}); err != nil {
		t.Fatal(err)
	}
	p := cfg.Plan()
	if got, want := p.Stages(), []Stage{Loyal, Purchase, Interest, Aware, Unreached}; !slices.Equal(got, want) {
		t.Fatalf("evaluation order %v, want %v", got, want)
	}
	// Interest counts each interaction event in the window.
	tree := cfg.Tree(Interest)
	if tree.Op != "or" || len(tree.Children) != len(cfg.InterestEvents) || tree.Children[0].Event.Window.LastDays != 30 {
		t.Fatalf("interest tree %+v", tree)
	}
	// A custom rule replaces one stage only.
	custom := &segment.Node{Tag: &segment.TagCond{Match: "any", IDs: []int64{1}}}
	cfg.Rules.Interest = custom
	if cfg.Tree(Interest) != custom || !cfg.Custom(Interest) || cfg.Custom(Aware) {
		t.Fatal("custom interest rule not in effect")
	}
	// Without loyalty extras, loyal is repurchase alone.
	cfg.ReferralEvents, cfg.ActiveMinEvents = nil, 0
	if l := cfg.Tree(Loyal); l.Order == nil || l.Order.Value != float64(2) {
		t.Fatalf("loyal tree %+v", l)
	}
}

func TestAIPLConfigErrorsNameTheField(t *testing.T) {
	def, _ := json.Marshal(DefaultAIPLConfig())
	with := func(patch string) string {
		var m map[string]any
		json.Unmarshal(def, &m)
		var p map[string]any
		if err := json.Unmarshal([]byte(patch), &p); err != nil {
			t.Fatal(err)
		}
		for k, v := range p {
			m[k] = v
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	for _, c := range []struct{ patch, field string }{
		{`{"window_days":0}`, "window_days"},
		{`{"window_days":3651}`, "window_days"},
		{`{"interest_events":["咨询"," "]}`, "interest_events[1]"},
		{`{"interest_events":["咨询","咨询"]}`, "interest_events[1]"},
		{`{"interest_events":[]}`, "interest_events"},
		{`{"aware_events":["` + strings.Repeat("x", 201) + `"]}`, "aware_events[0]"},
		{`{"loyal_min_orders":1}`, "loyal_min_orders"},
		{`{"active_min_events":-1}`, "active_min_events"},
		{`{"rules":{"interest":{"op":"and","children":[{"field":"nope","cmp":"eq","value":1}]}}}`, "rules.interest.children[0].field"},
		{`{"rules":{"loyal":{"tag":{"match":"any","ids":[9]}}}}`, "rules.loyal.tag.ids[0]"},
		{`{"rules":{"desire":{"tag":{"match":"any","ids":[1]}}}}`, "rules.desire"},
	} {
		cfg, err := ParseAIPLConfig([]byte(with(c.patch)))
		if err == nil {
			err = cfg.Validate(schema{})
		}
		if got := errField(err); got != c.field {
			t.Errorf("%s: field %q, want %q (%v)", c.patch, got, c.field, err)
		}
	}
	// No interest events is fine with a rule of one's own; null keeps a default.
	cfg, err := ParseAIPLConfig([]byte(with(`{"interest_events":[],"rules":{"interest":{"tag":{"match":"any","ids":[1]}},"aware":null}}`)))
	if err == nil {
		err = cfg.Validate(schema{})
	}
	if err != nil || !cfg.Custom(Interest) || cfg.Custom(Aware) {
		t.Fatalf("custom interest rule: %v", err)
	}
	// What GET answers (the configuration and the effective rules) may be sent back.
	if _, err := ParseAIPLConfig([]byte(with(`{"effective":[{"stage":"认知"}]}`))); err != nil {
		t.Fatalf("effective not ignored: %v", err)
	}
}

func BenchmarkAssignStages(b *testing.B) {
	const n = 1_000_000
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = int64(i + 1)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	sets := make([][]int64, 4)
	for i := range sets {
		for _, id := range ids {
			if rng.IntN(4) == 0 {
				sets[i] = append(sets[i], id)
			}
		}
	}
	b.ResetTimer()
	for b.Loop() {
		AssignStages(ids, sets)
	}
}
