package store_test

import (
	"errors"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
	"github.com/siyu-scrm/siyu/internal/survey"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// surveyFixture is a store with tags and a custom attribute, and an open survey that maps a
// question to each kind of field.
type surveyFixture struct {
	s              *store.Store
	sv             *survey.Survey
	yoga, run, vip int64
	clock          time.Time
}

func newSurveyFixture(t testing.TB, s *store.Store) *surveyFixture {
	t.Helper()
	fx := &surveyFixture{s: s, clock: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	s.SetClock(func() time.Time { return fx.clock })
	g := mkGroup(t, s, "兴趣", tag.Attribute, false)
	fx.yoga, fx.run = mkTag(t, s, g.ID, "瑜伽"), mkTag(t, s, g.ID, "跑步")
	lv := mkGroup(t, s, "会员意向", tag.Custom, true)
	fx.vip = mkTag(t, s, lv.ID, "想入会")
	mkTag(t, s, lv.ID, "不入会")
	if err := s.DefineAttr(ctx, customer.AttrDef{Key: "skin_type", Type: customer.AttrString, Label: "肤质"}); err != nil {
		t.Fatal(err)
	}
	fx.sv = &survey.Survey{Status: survey.Open, Definition: survey.Definition{
		Title: "会员调研", Identify: survey.ByPhone,
		Questions: []survey.Question{
			{ID: "gender", Type: survey.Single, Title: "性别", Required: true, Map: &survey.Mapping{Target: survey.TargetGender},
				Options: []survey.Option{{ID: "f", Label: "女"}, {ID: "m", Label: "男"}}},
			{ID: "hobbies", Type: survey.Multiple, Title: "爱好", Map: &survey.Mapping{Target: survey.TargetHobbies},
				Options: []survey.Option{{ID: "yoga", Label: "瑜伽", TagIDs: []int64{fx.yoga}}, {ID: "run", Label: "跑步", TagIDs: []int64{fx.run}}}},
			{ID: "bday", Type: survey.Date, Title: "生日", Map: &survey.Mapping{Target: survey.TargetBirthday}},
			{ID: "where", Type: survey.Region, Title: "所在地", Map: &survey.Mapping{Target: survey.TargetRegion}},
			{ID: "height", Type: survey.Number, Title: "身高(cm)", Map: &survey.Mapping{Target: survey.TargetHeight}},
			{ID: "skin", Type: survey.Single, Title: "肤质", Map: &survey.Mapping{Target: survey.TargetCustom, Attr: "skin_type"},
				Options: []survey.Option{{ID: "dry", Label: "干性"}, {ID: "oily", Label: "油性"}}},
			{ID: "join", Type: survey.Single, Title: "入会", Options: []survey.Option{{ID: "y", Label: "想", TagIDs: []int64{fx.vip}}, {ID: "n", Label: "不想"}}},
			{ID: "note", Type: survey.Text, Title: "建议"},
		},
	}}
	if err := s.CreateSurvey(ctx, fx.sv); err != nil {
		t.Fatal(err)
	}
	return fx
}

func (fx *surveyFixture) answers(t testing.TB, form url.Values) survey.Answers {
	t.Helper()
	a, probs := fx.sv.Decode(form, fx.clock)
	if len(probs) > 0 {
		t.Fatalf("problems: %v", probs)
	}
	return a
}

var fullForm = url.Values{
	"q.gender": {"f"}, "q.hobbies": {"yoga", "run"}, "q.bday": {"1992-03-04"},
	"q.where.province": {"浙江省"}, "q.where.city": {"杭州市"}, "q.height": {"163"},
	"q.skin": {"dry"}, "q.join": {"y"}, "q.note": {"<b>很好</b>"},
}

func surveyCount(t *testing.T, s *store.Store, id int64) (int64, int64) {
	t.Helper()
	sv, err := s.Survey(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return sv.Responses, sv.Respondents
}

func TestSurveyDefinitionCRUD(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		fx := newSurveyFixture(t, s)
		if fx.sv.ID == 0 || len(fx.sv.Token) < 16 {
			t.Fatalf("created %+v", fx.sv)
		}
		bad := &survey.Survey{Definition: survey.Definition{Title: "x", Questions: []survey.Question{
			{Type: survey.Single, Title: "a", Options: []survey.Option{{Label: "x"}, {Label: "y", TagIDs: []int64{fx.yoga, 9999}}}},
		}}}
		wantField(t, s.CreateSurvey(ctx, bad), "questions[0].options[1].tag_ids[1]")
		bad.Questions[0].Options[1].TagIDs = nil
		bad.Questions[0].Map = &survey.Mapping{Target: survey.TargetCustom, Attr: "undefined_attr"}
		wantField(t, s.CreateSurvey(ctx, bad), "questions[0].map.attr")

		got, err := s.SurveyByToken(ctx, fx.sv.Token)
		if err != nil || got.ID != fx.sv.ID || len(got.Questions) != 8 || got.Questions[1].Options[0].TagIDs[0] != fx.yoga {
			t.Fatalf("by token: %+v %v", got, err)
		}
		got.Title = "会员调研（第二期）"
		got.Status = survey.Draft
		if err := s.UpdateSurvey(ctx, got); err != nil {
			t.Fatal(err)
		}
		if got.Title != "会员调研（第二期）" || got.Status != survey.Draft {
			t.Fatalf("updated %+v", got)
		}
		for i := range 3 {
			sv := &survey.Survey{Definition: survey.Definition{Title: "问卷" + string(rune('A'+i)), Questions: []survey.Question{{Type: survey.Text, Title: "说说"}}}}
			if err := s.CreateSurvey(ctx, sv); err != nil {
				t.Fatal(err)
			}
		}
		p1, err := s.ListSurveys(ctx, store.SurveyFilter{Limit: 3})
		if err != nil || len(p1.Surveys) != 3 || p1.NextCursor == "" {
			t.Fatalf("page 1: %+v %v", p1, err)
		}
		p2, err := s.ListSurveys(ctx, store.SurveyFilter{Limit: 3, Cursor: p1.NextCursor})
		if err != nil || len(p2.Surveys) != 1 || p2.Surveys[0].ID != fx.sv.ID || p2.NextCursor != "" {
			t.Fatalf("page 2: %+v %v", p2, err)
		}
		if p, _ := s.ListSurveys(ctx, store.SurveyFilter{Q: "第二期"}); len(p.Surveys) != 1 {
			t.Fatalf("search: %d", len(p.Surveys))
		}
		if p, _ := s.ListSurveys(ctx, store.SurveyFilter{Status: survey.Draft}); len(p.Surveys) != 4 {
			t.Fatalf("drafts: %d", len(p.Surveys))
		}
		closed, err := s.CloseSurvey(ctx, fx.sv.ID)
		if err != nil || closed.Status != survey.Closed || closed.ClosedAt.IsZero() {
			t.Fatalf("close: %+v %v", closed, err)
		}
		if err := s.DeleteSurvey(ctx, fx.sv.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SurveyByToken(ctx, fx.sv.Token); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted survey by token: %v", err)
		}
		if err := s.DeleteSurvey(ctx, fx.sv.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("delete twice: %v", err)
		}
	})
}

func TestSurveySubmitWritesTheCustomer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		fx := newSurveyFixture(t, s)
		ids := bulkCustomers(t, s, 3)
		var mu sync.Mutex
		var changed []int64
		s.Subscribe(func(c *store.Changes) { mu.Lock(); changed = append(changed, c.Customers...); mu.Unlock() })
		hooked := 0
		res, err := s.SubmitSurvey(ctx, store.Submission{SurveyID: fx.sv.ID, CustomerID: ids[1], Answers: fx.answers(t, fullForm), IP: "10.0.0.1",
			AfterStore: func(tx *store.Tx, evts []*event.Event) error { hooked += len(evts); return nil }})
		if err != nil {
			t.Fatal(err)
		}
		if res.CustomerID != ids[1] || res.ResponseID == 0 || hooked != 1 {
			t.Fatalf("result %+v, hook saw %d events", res, hooked)
		}
		c, err := s.Customer(ctx, ids[1])
		if err != nil {
			t.Fatal(err)
		}
		if c.Gender != "female" || c.Birthday != "1992-03-04" || c.Region != "浙江省杭州市" {
			t.Fatalf("profile %+v", c)
		}
		if c.Attrs["skin_type"] != "干性" || c.Attrs["height"] != 163.0 || !slices.Equal(toStrings(c.Attrs["hobbies"]), []string{"瑜伽", "跑步"}) {
			t.Fatalf("attrs %v", c.Attrs)
		}
		if got := sorted(tagIDsOf(t, s, ids[1])...); !slices.Equal(got, sorted(fx.yoga, fx.run, fx.vip)) {
			t.Fatalf("tags %v", got)
		}
		hist, err := s.TagHistory(ctx, ids[1], 0, 10)
		if err != nil || len(hist) != 3 || hist[0].Reason != tag.ReasonSurvey || hist[0].Ref != "survey:"+strconv.FormatInt(fx.sv.ID, 10) {
			t.Fatalf("history %+v %v", hist, err)
		}
		if other := tagIDsOf(t, s, ids[0]); len(other) != 0 {
			t.Fatalf("another customer got tags %v", other)
		}
		evts, err := s.CustomerEvents(ctx, ids[1], time.Time{}, 10)
		if err != nil || len(evts) != 1 || evts[0].Name != survey.EventName {
			t.Fatalf("events %+v %v", evts, err)
		}
		p := evts[0].Properties
		ans, _ := p["answers"].(map[string]any)
		if p["survey_id"] != float64(fx.sv.ID) || ans["gender"] != "女" || ans["note"] != "<b>很好</b>" {
			t.Fatalf("event properties %v", p)
		}
		if n, r := surveyCount(t, s, fx.sv.ID); n != 1 || r != 1 {
			t.Fatalf("counts %d %d", n, r)
		}
		mu.Lock()
		if !slices.Contains(changed, ids[1]) {
			t.Fatalf("changes published for %v, not the respondent %d", changed, ids[1])
		}
		mu.Unlock()
		page, err := s.SurveyResponses(ctx, store.ResponseFilter{SurveyID: fx.sv.ID})
		if err != nil || len(page.Responses) != 1 || page.Responses[0].Answers["skin"].Choices[0] != "dry" || page.Responses[0].Via != "link" {
			t.Fatalf("responses %+v %v", page, err)
		}
	})
}

func TestSurveyRepeatAndClosed(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		fx := newSurveyFixture(t, s)
		ids := bulkCustomers(t, s, 2)
		submit := func(cid int64, form url.Values) error {
			_, err := s.SubmitSurvey(ctx, store.Submission{SurveyID: fx.sv.ID, CustomerID: cid, Answers: fx.answers(t, form)})
			return err
		}
		if err := submit(ids[0], url.Values{"q.gender": {"m"}}); err != nil {
			t.Fatal(err)
		}
		before, _ := s.Customer(ctx, ids[0])
		if err := submit(ids[0], fullForm); !errors.Is(err, store.ErrAlreadyAnswered) {
			t.Fatalf("second answer: %v", err)
		}
		after, _ := s.Customer(ctx, ids[0])
		if after.Gender != "male" || after.Region != before.Region || len(tagIDsOf(t, s, ids[0])) != 0 {
			t.Fatalf("a refused answer wrote: %+v", after)
		}
		evts, _ := s.CustomerEvents(ctx, ids[0], time.Time{}, 10)
		if n, r := surveyCount(t, s, fx.sv.ID); n != 1 || r != 1 || len(evts) != 1 {
			t.Fatalf("counts %d %d, events %d", n, r, len(evts))
		}
		// A question with answers keeps its type.
		fx.sv.Questions[7].Type = survey.Number
		wantField(t, s.UpdateSurvey(ctx, fx.sv), "questions[7].type")
		fx.sv.Questions[7].Type = survey.Text
		// Allowing repeats: the same customer answers again; one respondent, two responses.
		fx.sv.AllowRepeat = true
		if err := s.UpdateSurvey(ctx, fx.sv); err != nil {
			t.Fatal(err)
		}
		if err := submit(ids[0], fullForm); err != nil {
			t.Fatal(err)
		}
		if n, r := surveyCount(t, s, fx.sv.ID); n != 2 || r != 1 {
			t.Fatalf("with repeats: counts %d %d", n, r)
		}
		// Outside its window or closed, nothing is taken.
		fx.sv.EndsAt = fx.clock
		if err := s.UpdateSurvey(ctx, fx.sv); err != nil {
			t.Fatal(err)
		}
		var na *store.SurveyNotAcceptingError
		if err := submit(ids[1], fullForm); !errors.As(err, &na) || na.Why != "ended" {
			t.Fatalf("after the end: %v", err)
		}
		if _, err := s.CloseSurvey(ctx, fx.sv.ID); err != nil {
			t.Fatal(err)
		}
		if err := submit(ids[1], fullForm); !errors.As(err, &na) || na.Why != "closed" {
			t.Fatalf("closed: %v", err)
		}
		if err := submit(999, fullForm); err == nil {
			t.Fatal("an answer for no customer was taken")
		}
		if n, _ := surveyCount(t, s, fx.sv.ID); n != 2 {
			t.Fatalf("responses %d after refusals", n)
		}
	})
}

func TestSurveySubmitByPhone(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		fx := newSurveyFixture(t, s)
		a := fx.answers(t, url.Values{"q.gender": {"f"}, "q.join": {"y"}})
		res, err := s.SubmitSurvey(ctx, store.Submission{SurveyID: fx.sv.ID, Phone: "13800138000", Answers: a})
		if err != nil || !res.Created {
			t.Fatalf("%+v %v", res, err)
		}
		c, _ := s.Customer(ctx, res.CustomerID)
		if c.Phone != "13800138000" || c.Source != "问卷" || c.Gender != "female" {
			t.Fatalf("new customer %+v", c)
		}
		if id, err := s.CustomerByIdentity(ctx, customer.Identity{Kind: customer.PhoneID, Value: "13800138000"}); err != nil || id != res.CustomerID {
			t.Fatalf("phone identity → %d %v", id, err)
		}
		if _, err := s.SubmitSurvey(ctx, store.Submission{SurveyID: fx.sv.ID, Phone: "13800138000", Answers: a}); !errors.Is(err, store.ErrAlreadyAnswered) {
			t.Fatalf("same phone again: %v", err)
		}
		// Someone typing a known customer's phone fills the blanks of the profile but does not
		// overwrite it; tags are added.
		var known int64
		if err := s.InTx(ctx, func(tx *store.Tx) error {
			var err error
			known, err = tx.CreateCustomer([]customer.Identity{{Kind: customer.PhoneID, Value: "13900000000"}}, time.Time{})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		g, bday, skin := "male", "1980-01-01", "油性"
		if err := s.UpdateCustomer(ctx, known, &customer.Patch{Gender: &g, Attrs: map[string]any{"skin_type": skin}}); err != nil {
			t.Fatal(err)
		}
		res, err = s.SubmitSurvey(ctx, store.Submission{SurveyID: fx.sv.ID, Phone: "13900000000",
			Answers: fx.answers(t, url.Values{"q.gender": {"f"}, "q.bday": {bday}, "q.skin": {"dry"}, "q.join": {"y"}})})
		if err != nil || res.Created || !slices.Equal(res.Kept, []string{"attrs.skin_type", "gender"}) {
			t.Fatalf("%+v %v", res, err)
		}
		c, _ = s.Customer(ctx, res.CustomerID)
		if res.CustomerID != known || c.Gender != "male" || c.Birthday != bday || c.Attrs["skin_type"] != skin || !slices.Contains(tagIDsOf(t, s, known), fx.vip) {
			t.Fatalf("known customer after a phone answer: %+v", c)
		}
	})
}

func TestSurveyMergeMovesResponses(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		fx := newSurveyFixture(t, s)
		ids := bulkCustomers(t, s, 2)
		for _, id := range ids {
			if _, err := s.SubmitSurvey(ctx, store.Submission{SurveyID: fx.sv.ID, CustomerID: id, Answers: fx.answers(t, url.Values{"q.gender": {"f"}})}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.InTx(ctx, func(tx *store.Tx) error { return tx.Merge(ids[0], ids[1], "test") }); err != nil {
			t.Fatal(err)
		}
		if n, r := surveyCount(t, s, fx.sv.ID); n != 2 || r != 1 {
			t.Fatalf("after merge: %d responses, %d respondents", n, r)
		}
		page, _ := s.SurveyResponses(ctx, store.ResponseFilter{SurveyID: fx.sv.ID})
		for _, r := range page.Responses {
			if r.CustomerID != ids[1] {
				t.Fatalf("response %d still on %d", r.ID, r.CustomerID)
			}
		}
		// A link made for the merged-away customer answers as the survivor.
		fx.sv.AllowRepeat = true
		if err := s.UpdateSurvey(ctx, fx.sv); err != nil {
			t.Fatal(err)
		}
		res, err := s.SubmitSurvey(ctx, store.Submission{SurveyID: fx.sv.ID, CustomerID: ids[0], Answers: fx.answers(t, url.Values{"q.gender": {"f"}})})
		if err != nil || res.CustomerID != ids[1] {
			t.Fatalf("%+v %v", res, err)
		}
	})
}

func TestSurveyLinkSecretIsStable(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		a, err := s.SurveyLinkSecret(ctx)
		if err != nil || len(a) != 32 {
			t.Fatalf("%x %v", a, err)
		}
		b, _ := s.SurveyLinkSecret(ctx)
		if string(a) != string(b) {
			t.Fatal("the secret changed between calls")
		}
	})
}

func toStrings(v any) []string {
	var out []string
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			s, _ := e.(string)
			out = append(out, s)
		}
	case []string:
		out = x
	}
	return out
}

func sorted(ids ...int64) []int64 { slices.Sort(ids); return ids }

// BenchmarkSubmitSurvey stores full responses (nine answers: profile fields, attributes, three
// tags, the event) for distinct customers, one transaction each, as the public page does.
func BenchmarkSubmitSurvey(b *testing.B) {
	for _, eng := range storetest.Engines {
		b.Run(string(eng), func(b *testing.B) {
			s := storetest.Open(b, eng)
			fx := newSurveyFixture(b, s)
			ids := bulkCustomers(b, s, b.N)
			a := fx.answers(b, fullForm)
			b.ResetTimer()
			for i := range b.N {
				if _, err := s.SubmitSurvey(ctx, store.Submission{SurveyID: fx.sv.ID, CustomerID: ids[i], Answers: a, IP: "10.0.0.1"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Two taps on submit, or a script, may send one customer's answer several times at once:
// exactly one is stored, the others are told the survey was answered, on both engines.
func TestSurveyConcurrentSubmitsStoreOne(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		fx := newSurveyFixture(t, s)
		id := bulkCustomers(t, s, 1)[0]
		a := fx.answers(t, fullForm)
		const n = 8
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.SubmitSurvey(ctx, store.Submission{SurveyID: fx.sv.ID, CustomerID: id, Answers: a})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		ok, answered := 0, 0
		for err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrAlreadyAnswered):
				answered++
			default:
				t.Errorf("submit: %v", err)
			}
		}
		if ok != 1 || answered != n-1 {
			t.Fatalf("%d stored, %d already answered; want 1 and %d", ok, answered, n-1)
		}
		if r, p := surveyCount(t, s, fx.sv.ID); r != 1 || p != 1 {
			t.Fatalf("counts %d %d", r, p)
		}
		if evts, _ := s.CustomerEvents(ctx, id, time.Time{}, 20); len(evts) != 1 {
			t.Fatalf("%d events", len(evts))
		}
	})
}

// Responses follow a data scope of several owners (a department), not only one's own.
func TestSurveyResponsesFollowTheDataScope(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		fx := newSurveyFixture(t, s)
		ids := bulkCustomers(t, s, 3)
		var owners []int64
		for i, id := range ids {
			m := &staff.Staff{Login: "owner" + strconv.Itoa(i), Name: "owner", Role: staff.Sales}
			if err := s.CreateStaff(ctx, m, ""); err != nil {
				t.Fatal(err)
			}
			owners = append(owners, m.ID)
			if _, err := s.DB().ExecContext(ctx, s.Rebind(`UPDATE customers SET owner_id = ? WHERE id = ?`), m.ID, id); err != nil {
				t.Fatal(err)
			}
			if _, err := s.SubmitSurvey(ctx, store.Submission{SurveyID: fx.sv.ID, CustomerID: id, Answers: fx.answers(t, fullForm)}); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			scope staff.CustomerScope
			want  int
		}{{staff.CustomerScope{}, 3}, {staff.OwnersScope(owners[0], owners[2]), 2}, {staff.OwnersScope(owners[1]), 1}, {staff.OwnersScope(), 0}} {
			page, err := s.SurveyResponses(ctx, store.ResponseFilter{SurveyID: fx.sv.ID, Scope: tc.scope})
			if err != nil || len(page.Responses) != tc.want {
				t.Errorf("scope %+v: %d responses (%v), want %d", tc.scope, len(page.Responses), err, tc.want)
			}
		}
	})
}
