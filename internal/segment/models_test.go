package segment

import (
	"strings"
	"testing"
)

// classSchema knows the RFM classes, as store.SegmentSchema does.
type classSchema struct{ fakeSchema }

func (classSchema) FieldValues(field string) ([]string, bool) {
	if field == "rfm.class" {
		return []string{"重要价值客户", "一般挽留客户", "未消费"}, true
	}
	return nil, false
}

func TestModelFields(t *testing.T) {
	sch := classSchema{schema}
	for _, src := range []string{
		`{"field":"rfm.class","cmp":"in","value":["重要价值客户","未消费"]}`,
		`{"field":"rfm.class","cmp":"contains","value":"重要"}`,
		`{"field":"rfm.r_score","cmp":"gte","value":4}`,
		`{"field":"rfm.m_score","cmp":"between","value":[2,5]}`,
		`{"field":"rfm.monetary","cmp":"gt","value":1999.5}`,
		`{"field":"rfm.recency_days","cmp":"lte","value":30}`,
		`{"field":"rfm.frequency","cmp":"is_not_set"}`,
		`{"field":"lifecycle.stage","cmp":"eq","value":"老客复购"}`,
		`{"field":"aipl.stage","cmp":"ne","value":"忠诚"}`,
		`{"field":"journey.entered_at","cmp":"in_last_days","value":7}`,
		`{"field":"tier","cmp":"in","value":["高级会员","中级会员"]}`,
		`{"field":"tier.entered_at","cmp":"before","value":"2026-11-01"}`,
		`{"field":"points","cmp":"gte","value":500}`,
	} {
		n, err := Parse([]byte(src))
		if err == nil {
			err = Validate(n, sch, 0)
		}
		if err != nil {
			t.Errorf("%s: %v", src, err)
		}
	}
	for _, c := range []struct{ src, path, msg string }{
		{`{"field":"rfm.class","cmp":"eq","value":"重要价值"}`, "value", `rfm.class has no value "重要价值"`},
		{`{"op":"and","children":[{"field":"rfm.class","cmp":"not_in","value":["未消费","VIP"]}]}`, "children[0].value[1]", `no value "VIP"`},
		{`{"field":"rfm.r_score","cmp":"eq","value":6}`, "value", "score from 1 to 5"},
		{`{"field":"rfm.f_score","cmp":"in","value":[1,0]}`, "value[1]", "score from 1 to 5"},
		{`{"field":"rfm.class","cmp":"gt","value":3}`, "cmp", "does not apply"},
		{`{"field":"tier","cmp":"eq","value":3}`, "value", "want text"},
		{`{"field":"points","cmp":"contains","value":"1"}`, "cmp", "does not apply"},
		{`{"field":"rfm.score","cmp":"eq","value":3}`, "field", "unknown field"},
	} {
		n, err := Parse([]byte(c.src))
		if err == nil {
			err = Validate(n, sch, 0)
		}
		e, ok := err.(*Error)
		if !ok || e.Path != c.path || !strings.Contains(e.Msg, c.msg) {
			t.Errorf("%s: got %v, want %s: …%s…", c.src, err, c.path, c.msg)
		}
	}
	if mdl, part, ok := ModelField("tier"); !ok || mdl != "tier" || part != PartStage {
		t.Errorf("ModelField(tier) = %s, %s, %v", mdl, part, ok)
	}
	if _, _, ok := ModelField("gender"); ok {
		t.Error("gender is not a model field")
	}
}
