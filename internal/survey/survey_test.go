package survey

import (
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
)

// fakeRefs knows tags 1–3 (group 10, multi-choice), 4–5 (group 20, single-choice) and the
// attributes income (number), level (string), vip (bool), joined (date), tags (list).
type fakeRefs struct{}

func (fakeRefs) Tag(id int64) (TagInfo, bool) {
	switch {
	case id >= 1 && id <= 3:
		return TagInfo{Name: "t", GroupID: 10, GroupName: "兴趣"}, true
	case id == 4 || id == 5:
		return TagInfo{Name: "s", GroupID: 20, GroupName: "会员等级", Exclusive: true}, true
	}
	return TagInfo{}, false
}

func (fakeRefs) Attr(key string) (customer.AttrType, bool) {
	t, ok := map[string]customer.AttrType{"income": customer.AttrNumber, "level": customer.AttrString, "vip": customer.AttrBool,
		"joined": customer.AttrDate, "interests": customer.AttrList}[key]
	return t, ok
}

func attrTypeOf(key string) (customer.AttrType, bool) { return fakeRefs{}.Attr(key) }

func f(v float64) *float64 { return &v }

// sample is a survey using every type and mapping kind.
func sample() *Definition {
	d := &Definition{
		Title: "会员调研", Identify: ByPhone,
		Questions: []Question{
			{ID: "gender", Type: Single, Title: "性别", Required: true, Map: &Mapping{Target: TargetGender},
				Options: []Option{{ID: "f", Label: "女", TagIDs: []int64{1}}, {ID: "m", Label: "男"}}},
			{ID: "hobbies", Type: Multiple, Title: "爱好", MaxChoices: 2, Map: &Mapping{Target: TargetHobbies},
				Options: []Option{{ID: "run", Label: "跑步", TagIDs: []int64{2}}, {ID: "yoga", Label: "瑜伽", TagIDs: []int64{2, 3}}, {ID: "read", Label: "阅读"}}},
			{ID: "note", Type: Text, Title: "建议", MaxLength: 30},
			{ID: "height", Type: Number, Title: "身高", Min: f(50), Max: f(250), Map: &Mapping{Target: TargetHeight}},
			{ID: "bday", Type: Date, Title: "生日", Map: &Mapping{Target: TargetBirthday}},
			{ID: "nps", Type: Rating, Title: "推荐意愿", Scale: 10},
			{ID: "where", Type: Region, Title: "所在地", Map: &Mapping{Target: TargetRegion}},
			{ID: "tel", Type: Phone, Title: "手机", Map: &Mapping{Target: TargetPhone}},
			{ID: "inc", Type: Single, Title: "月收入", Map: &Mapping{Target: TargetCustom, Attr: "income"},
				Options: []Option{{ID: "lo", Label: "5千以下", Value: "3000"}, {ID: "hi", Label: "5千以上", Value: "8000"}}},
			{ID: "lvl", Type: Single, Title: "会员", Options: []Option{{ID: "a", Label: "是", TagIDs: []int64{4}}, {ID: "b", Label: "否", TagIDs: []int64{5}}}},
		},
	}
	d.Normalize()
	return d
}

func TestValidateAcceptsSample(t *testing.T) {
	if err := sample().Validate(fakeRefs{}); err != nil {
		t.Fatal(err)
	}
}

func TestValidateNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(d *Definition)
		field string
	}{
		{"no title", func(d *Definition) { d.Title = "" }, "title"},
		{"bad identify", func(d *Definition) { d.Identify = "wechat" }, "identify"},
		{"ends before start", func(d *Definition) {
			d.StartsAt = time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
			d.EndsAt = d.StartsAt.Add(-time.Hour)
		}, "ends_at"},
		{"no questions", func(d *Definition) { d.Questions = nil }, "questions"},
		{"unknown tag", func(d *Definition) { d.Questions[1].Options[1].TagIDs = []int64{2, 99} }, "questions[1].options[1].tag_ids[1]"},
		{"exclusive tag in a multiple choice", func(d *Definition) { d.Questions[1].Options[0].TagIDs = []int64{4} }, "questions[1].options[0].tag_ids[0]"},
		{"exclusive group in two questions", func(d *Definition) { d.Questions[0].Options[1].TagIDs = []int64{5} }, "questions[9].options[0].tag_ids[0]"},
		{"duplicate question id", func(d *Definition) { d.Questions[2].ID = "gender" }, "questions[2].id"},
		{"bad question id", func(d *Definition) { d.Questions[2].ID = "a b" }, "questions[2].id"},
		{"duplicate option id", func(d *Definition) { d.Questions[1].Options[2].ID = "run" }, "questions[1].options[2].id"},
		{"unknown type", func(d *Definition) { d.Questions[2].Type = "slider" }, "questions[2].type"},
		{"empty label", func(d *Definition) { d.Questions[1].Options[0].Label = "" }, "questions[1].options[0].label"},
		{"one option", func(d *Definition) { d.Questions[1].Options = d.Questions[1].Options[:1] }, "questions[1].options"},
		{"options on text", func(d *Definition) { d.Questions[2].Options = []Option{{ID: "x", Label: "x"}} }, "questions[2].options"},
		{"min over max", func(d *Definition) { d.Questions[3].Min = f(300) }, "questions[3].max"},
		{"max length too big", func(d *Definition) { d.Questions[2].MaxLength = MaxTextLength + 1 }, "questions[2].max_length"},
		{"max choices over options", func(d *Definition) { d.Questions[1].MaxChoices = 4 }, "questions[1].max_choices"},
		{"bad scale", func(d *Definition) { d.Questions[5].Scale = 7 }, "questions[5].scale"},
		{"gender by text", func(d *Definition) { d.Questions[2].Map = &Mapping{Target: TargetGender} }, "questions[2].map.target"},
		{"gender option not a gender", func(d *Definition) { d.Questions[0].Options[1].Label = "其他" }, "questions[0].options[1].value"},
		{"two questions write one field", func(d *Definition) { d.Questions[2].Map = &Mapping{Target: TargetRegion} }, "questions[6].map.target"},
		{"undefined custom attribute", func(d *Definition) { d.Questions[8].Map.Attr = "nope" }, "questions[8].map.attr"},
		{"number attribute, text value", func(d *Definition) { d.Questions[8].Options[1].Value = "很多" }, "questions[8].options[1].value"},
		{"list into a string attribute", func(d *Definition) { d.Questions[1].Map = &Mapping{Target: TargetCustom, Attr: "level"} }, "questions[1].map.target"},
		{"unknown target", func(d *Definition) { d.Questions[2].Map = &Mapping{Target: "shoe_size"} }, "questions[2].map.target"},
		{"text too long for title", func(d *Definition) { d.Title = strings.Repeat("问", MaxTitle+1) }, "title"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := sample()
			tc.edit(d)
			err := d.Validate(fakeRefs{})
			var fe *customer.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a field error on %s", err, tc.field)
			}
			if fe.Field != tc.field {
				t.Fatalf("field %q (%s), want %q", fe.Field, fe.Reason, tc.field)
			}
		})
	}
}

func TestNormalizeFillsIDs(t *testing.T) {
	d := &Definition{Title: "t", Questions: []Question{
		{Type: Single, Title: "a", Options: []Option{{Label: " x "}, {ID: "a", Label: "y"}, {Label: "z"}}},
		{ID: "q1", Type: Rating, Title: "b"},
		{Type: Text, Title: "c"},
	}}
	d.Normalize()
	if d.Questions[0].ID != "q2" || d.Questions[2].ID != "q3" {
		t.Fatalf("question ids %q %q", d.Questions[0].ID, d.Questions[2].ID)
	}
	if got := []string{d.Questions[0].Options[0].ID, d.Questions[0].Options[2].ID}; !reflect.DeepEqual(got, []string{"b", "c"}) {
		t.Fatalf("option ids %v", got)
	}
	if d.Questions[0].Options[0].Label != "x" || d.Questions[1].Scale != 5 || d.Identify != ByLink {
		t.Fatalf("not normalised: %+v", d)
	}
}

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func TestDecodeAndEffects(t *testing.T) {
	d := sample()
	form := url.Values{
		"q.gender":          {"f"},
		"q.hobbies":         {"yoga", "run"},
		"q.note":            {"  <script>alert(1)</script>\r\n "},
		"q.height":          {"168.5"},
		"q.bday":            {"1990/5/6"},
		"q.nps":             {"9"},
		"q.where.province":  {"广东省"},
		"q.where.city":      {"深圳市"},
		"q.tel":             {"+86 138-0013-8000"},
		"q.inc":             {"hi"},
		"q.lvl":             {"a"},
		"csrf":              {"ignored"},
		"q.nosuchquestion.": {"ignored"},
	}
	a, probs := d.Decode(form, now)
	if len(probs) != 0 {
		t.Fatalf("problems: %v", probs)
	}
	if got := a["hobbies"].Choices; !reflect.DeepEqual(got, []string{"run", "yoga"}) {
		t.Fatalf("choices %v (want the definition's order)", got)
	}
	if a["note"].Text != "<script>alert(1)</script>" || a["bday"].Text != "1990-05-06" || a["tel"].Text != "13800138000" {
		t.Fatalf("answers %+v", a)
	}
	e := d.Effects(a, attrTypeOf)
	p := e.Patch
	if *p.Gender != "female" || *p.Birthday != "1990-05-06" || *p.Region != "广东省深圳市" || *p.Phone != "13800138000" {
		t.Fatalf("patch %+v", p)
	}
	want := map[string]any{"hobbies": []string{"跑步", "瑜伽"}, "height": 168.5, "income": 8000.0}
	if !reflect.DeepEqual(p.Attrs, want) {
		t.Fatalf("attrs %v, want %v", p.Attrs, want)
	}
	if !reflect.DeepEqual(e.TagIDs, []int64{1, 2, 3, 4}) {
		t.Fatalf("tags %v", e.TagIDs)
	}
	if e.Values["gender"] != "女" || e.Values["nps"] != 9.0 || e.Values["where"] != "广东省深圳市" {
		t.Fatalf("values %v", e.Values)
	}
	props := d.EventProperties(a)
	for k, v := range map[string]any{"answer.gender": "女", "choice.gender": "f", "answer.hobbies": "跑步、瑜伽", "choice.hobbies.run": true,
		"choice.hobbies.yoga": true, "answer.height": 168.5, "answer.where": "广东省深圳市", "choice.inc": "hi", "answer.tel": "13800138000"} {
		if props[k] != v {
			t.Errorf("event property %s = %v, want %v", k, props[k], v)
		}
	}
	if _, ok := props["choice.hobbies.read"]; ok {
		t.Error("an option not chosen is in the event")
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		form  url.Values
		field string
		key   string
	}{
		{"required missing", url.Values{}, "gender", "survey.err.required"},
		{"invalid option", url.Values{"q.gender": {"x"}}, "gender", "survey.err.option"},
		{"two values for a single choice", url.Values{"q.gender": {"f", "m"}}, "gender", "survey.err.one_value"},
		{"invalid option in a multiple choice", url.Values{"q.hobbies": {"run", "swim"}}, "hobbies", "survey.err.option"},
		{"too many choices", url.Values{"q.hobbies": {"run", "yoga", "read"}}, "hobbies", "survey.err.too_many"},
		{"oversized text", url.Values{"q.note": {strings.Repeat("长", 31)}}, "note", "survey.err.too_long"},
		{"bad encoding", url.Values{"q.note": {"\xff\xfe"}}, "note", "survey.err.encoding"},
		{"number out of range", url.Values{"q.height": {"251"}}, "height", "survey.err.max"},
		{"NaN", url.Values{"q.height": {"NaN"}}, "height", "survey.err.number"},
		{"infinity", url.Values{"q.height": {"1e999"}}, "height", "survey.err.number"},
		{"rating out of scale", url.Values{"q.nps": {"11"}}, "nps", "survey.err.rating"},
		{"rating not whole", url.Values{"q.nps": {"2.5"}}, "nps", "survey.err.rating"},
		{"bad date", url.Values{"q.bday": {"yesterday"}}, "bday", "survey.err.date"},
		{"birthday in the future", url.Values{"q.bday": {"2030-01-01"}}, "bday", "survey.err.future"},
		{"unknown province", url.Values{"q.where.province": {"火星"}}, "where", "survey.err.province"},
		{"city of another province", url.Values{"q.where.province": {"广东省"}, "q.where.city": {"杭州市"}}, "where", "survey.err.city"},
		{"bad phone", url.Values{"q.tel": {"12345"}}, "tel", "survey.err.phone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"q.gender": {"m"}}
			for k, v := range tc.form {
				form[k] = v
			}
			if tc.name == "required missing" {
				delete(form, "q.gender")
			}
			_, probs := sample().Decode(form, now)
			p := probs[tc.field]
			if p == nil || p.Key != tc.key {
				t.Fatalf("problems %v, want %s on %s", probs, tc.key, tc.field)
			}
		})
	}
}

func TestNormalizePhone(t *testing.T) {
	for in, want := range map[string]string{"13800138000": "13800138000", "+8613800138000": "13800138000", "138 0013 8000": "13800138000", "8613800138000": "13800138000"} {
		if got, ok := NormalizePhone(in); !ok || got != want {
			t.Errorf("%q → %q %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "12800138000", "1380013800", "138001380001", "phone"} {
		if _, ok := NormalizePhone(in); ok {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestSignedLinks(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	exp := now.Add(24 * time.Hour)
	q := Sign(secret, 7, 42, exp)
	if c, err := Verify(secret, 7, q, now); err != nil || c != 42 {
		t.Fatalf("genuine link: %d %v", c, err)
	}
	alter := func(k, v string) url.Values {
		out := url.Values{}
		for kk, vv := range q {
			out[kk] = append([]string(nil), vv...)
		}
		out.Set(k, v)
		return out
	}
	for name, tc := range map[string]struct {
		q      url.Values
		survey int64
		secret []byte
	}{
		"other customer":    {alter("c", "43"), 7, secret},
		"later expiry":      {alter("e", "9999999999"), 7, secret},
		"other survey":      {q, 8, secret},
		"other secret":      {q, 7, []byte("another secret")},
		"no signature":      {alter("sig", ""), 7, secret},
		"garbage signature": {alter("sig", "!!!"), 7, secret},
		"no customer":       {url.Values{"e": q["e"], "sig": q["sig"]}, 7, secret},
		"empty secret":      {q, 7, nil},
	} {
		if _, err := Verify(tc.secret, tc.survey, tc.q, now); !errors.Is(err, ErrForged) {
			t.Errorf("%s: %v, want ErrForged", name, err)
		}
	}
	if _, err := Verify(secret, 7, q, exp); !errors.Is(err, ErrExpired) {
		t.Errorf("at expiry: %v, want ErrExpired", err)
	}
}

func TestAccepting(t *testing.T) {
	s := &Survey{Status: Open, Definition: Definition{StartsAt: now, EndsAt: now.Add(time.Hour)}}
	for _, tc := range []struct {
		at     time.Time
		status Status
		why    string
	}{
		{now.Add(-time.Second), Open, "not_started"},
		{now, Open, ""},
		{now.Add(time.Hour), Open, "ended"},
		{now, Closed, "closed"},
		{now, Draft, "draft"},
	} {
		s.Status = tc.status
		if ok, why := s.Accepting(tc.at); why != tc.why || ok != (why == "") {
			t.Errorf("%v at %v: %v %q, want %q", tc.status, tc.at, ok, why, tc.why)
		}
	}
}
