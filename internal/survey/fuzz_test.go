package survey

import (
	"encoding/json"
	"math"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/siyu-scrm/siyu/internal/customer"
)

// FuzzSurveySubmit feeds arbitrary form bodies to the answer decoder of a survey that has
// every question type and mapping. It may not panic, and whatever it accepts must hold: each
// answer fits its question (known options, within the choice limits, text within its length
// and free of control characters, numbers finite and in range, ratings whole and on the
// scale, regions from the list, phones of 11 digits), the answers encode as JSON without NUL
// (which PostgreSQL refuses), and the mapped values fit their attributes. The seed corpus is
// in testdata/fuzz/FuzzSurveySubmit.
func FuzzSurveySubmit(f *testing.F) {
	for _, s := range []string{
		"q.gender=f&q.hobbies=run&q.hobbies=yoga&q.note=hi&q.height=170&q.bday=1990-01-02&q.nps=9&q.where.province=%E5%B9%BF%E4%B8%9C%E7%9C%81&q.tel=13800138000&q.inc=hi&q.lvl=a",
		"q.gender=m&q.note=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
		"q.gender=x&q.height=NaN&q.nps=0&q.bday=2999-01-01",
		"q.gender=f&q.note=%00%01%ff&q.height=-1e309",
		"q.gender=f&q.hobbies=run&q.hobbies=run&q.hobbies=read&q.hobbies=yoga",
		"q.gender=f&q.gender=m",
		"q.gender=f&q.where.city=%E6%B7%B1%E5%9C%B3%E5%B8%82",
		"%zz=1&q.gender",
	} {
		f.Add(s)
	}
	d := sample()
	if err := d.Validate(fakeRefs{}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		form, err := url.ParseQuery(body)
		if err != nil {
			return // the public page refuses a body that does not parse (400)
		}
		answers, problems := d.Decode(form, now)
		for id := range problems {
			if d.Question(id) == nil {
				t.Fatalf("a problem on %q, which is no question", id)
			}
			if _, ok := answers[id]; ok {
				t.Fatalf("question %q both answered and refused", id)
			}
		}
		for id, a := range answers {
			q := d.Question(id)
			if q == nil {
				t.Fatalf("an answer to %q, which is no question", id)
			}
			checkAnswer(t, q, a)
		}
		b, err := json.Marshal(answers)
		if err != nil {
			t.Fatalf("answers do not encode: %v", err)
		}
		if strings.Contains(string(b), `\u0000`) {
			t.Fatalf("answers carry NUL: %s", b)
		}
		e := d.Effects(answers, attrTypeOf)
		if len(e.Skipped) > 0 {
			t.Fatalf("accepted answers do not fit their mapping: %v", e.Skipped)
		}
		if e.Patch.Gender != nil {
			if g := *e.Patch.Gender; g != "male" && g != "female" && g != "" {
				t.Fatalf("gender %q", g)
			}
		}
		for k, v := range e.Patch.Attrs {
			want, ok := attrTypeOf(k)
			if !ok {
				want = attrTargets[Target(k)]
			}
			if _, err := customer.CoerceAttr(want, v); err != nil {
				t.Fatalf("attribute %s = %v does not fit %s: %v", k, v, want, err)
			}
		}
	})
}

func checkAnswer(t *testing.T, q *Question, a Answer) {
	t.Helper()
	switch q.Type {
	case Single, Multiple:
		if len(a.Choices) == 0 || (q.Type == Single && len(a.Choices) != 1) {
			t.Fatalf("%s: %d choices", q.ID, len(a.Choices))
		}
		if q.MaxChoices > 0 && len(a.Choices) > q.MaxChoices {
			t.Fatalf("%s: %d choices, at most %d", q.ID, len(a.Choices), q.MaxChoices)
		}
		seen := map[string]bool{}
		for _, c := range a.Choices {
			if q.Option(c) == nil || seen[c] {
				t.Fatalf("%s: choice %q unknown or repeated", q.ID, c)
			}
			seen[c] = true
		}
	case Text:
		max := q.MaxLength
		if max == 0 {
			max = DefaultMaxLength
		}
		if a.Text == "" || !utf8.ValidString(a.Text) || utf8.RuneCountInString(a.Text) > max {
			t.Fatalf("%s: text %q", q.ID, a.Text)
		}
		for _, r := range a.Text {
			if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
				t.Fatalf("%s: control character %U kept", q.ID, r)
			}
		}
	case Number, Rating:
		if a.Number == nil || math.IsNaN(*a.Number) || math.IsInf(*a.Number, 0) {
			t.Fatalf("%s: number %v", q.ID, a.Number)
		}
		n := *a.Number
		if q.Min != nil && n < *q.Min || q.Max != nil && n > *q.Max {
			t.Fatalf("%s: %v out of range", q.ID, n)
		}
		if q.Type == Rating && (n != math.Trunc(n) || n < 1 || n > float64(q.Scale)) {
			t.Fatalf("%s: rating %v", q.ID, n)
		}
	case Date:
		if _, err := customer.NormalizeDate(a.Text); err != nil || len(a.Text) != 10 {
			t.Fatalf("%s: date %q", q.ID, a.Text)
		}
	case Region:
		p := province(a.Province)
		if p == nil || (a.City != "" && !p.hasCity(a.City)) {
			t.Fatalf("%s: region %q %q", q.ID, a.Province, a.City)
		}
	case Phone:
		if !phoneRe.MatchString(a.Text) {
			t.Fatalf("%s: phone %q", q.ID, a.Text)
		}
	}
}

// BenchmarkDecode decodes and checks a full form of the sample survey and works out its
// effects, the CPU part of every submission.
func BenchmarkDecode(b *testing.B) {
	d := sample()
	form, err := url.ParseQuery("q.gender=f&q.hobbies=run&q.hobbies=yoga&q.note=%E5%BE%88%E5%A5%BD&q.height=170&q.bday=1990-01-02&q.nps=9&q.where.province=%E5%B9%BF%E4%B8%9C%E7%9C%81&q.where.city=%E6%B7%B1%E5%9C%B3%E5%B8%82&q.tel=13800138000&q.inc=hi&q.lvl=a")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		a, probs := d.Decode(form, now)
		if len(probs) > 0 {
			b.Fatal(probs)
		}
		d.Effects(a, attrTypeOf)
	}
}
