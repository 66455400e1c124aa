package web

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
	"github.com/siyu-scrm/siyu/internal/survey"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// surveyEnv is a server over a store with two customers, tags, a custom attribute and an open
// survey, on a fake clock.
type surveyEnv struct {
	t        testing.TB
	st       *store.Store
	srv      *Server
	h        http.Handler
	sv       *survey.Survey
	now      time.Time
	alice    int64 // the customer links are made for
	bob      int64
	yoga     int64
	vip, non int64
}

func newSurveyEnv(t testing.TB, st *store.Store, identify survey.Identify) *surveyEnv {
	t.Helper()
	ctx := context.Background()
	e := &surveyEnv{t: t, st: st, now: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	st.SetClock(func() time.Time { return e.now })
	g := &tag.Group{Name: "兴趣", Kind: tag.Attribute}
	if err := st.CreateTagGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	yoga := &tag.Tag{GroupID: g.ID, Name: "瑜伽"}
	if err := st.CreateTag(ctx, yoga); err != nil {
		t.Fatal(err)
	}
	e.yoga = yoga.ID
	lv := &tag.Group{Name: "入会意向", Kind: tag.Custom, Exclusive: true}
	if err := st.CreateTagGroup(ctx, lv); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		name string
		id   *int64
	}{{"想入会", &e.vip}, {"暂不入会", &e.non}} {
		tg := &tag.Tag{GroupID: lv.ID, Name: p.name}
		if err := st.CreateTag(ctx, tg); err != nil {
			t.Fatal(err)
		}
		*p.id = tg.ID
	}
	if err := st.DefineAttr(ctx, customer.AttrDef{Key: "skin_type", Type: customer.AttrString, Label: "肤质"}); err != nil {
		t.Fatal(err)
	}
	err := st.InTx(ctx, func(tx *store.Tx) error {
		for _, id := range []*int64{&e.alice, &e.bob} {
			var err error
			if *id, err = tx.CreateCustomer(nil, time.Time{}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.sv = &survey.Survey{Status: survey.Open, Definition: survey.Definition{
		Title: "会员调研", Intro: "两分钟了解您", Thanks: "感谢填写！", Identify: identify,
		Questions: []survey.Question{
			{ID: "gender", Type: survey.Single, Title: "您的性别", Required: true, Map: &survey.Mapping{Target: survey.TargetGender},
				Options: []survey.Option{{ID: "f", Label: "女", Value: "female"}, {ID: "m", Label: "男", Value: "male"}}},
			{ID: "hobbies", Type: survey.Multiple, Title: "爱好", MaxChoices: 2, Map: &survey.Mapping{Target: survey.TargetHobbies},
				Options: []survey.Option{{ID: "yoga", Label: "瑜伽", TagIDs: []int64{e.yoga}}, {ID: "run", Label: "跑步"}, {ID: "read", Label: "阅读"}}},
			{ID: "height", Type: survey.Number, Title: "身高 (cm)", Min: ptr(100.0), Max: ptr(230.0), Map: &survey.Mapping{Target: survey.TargetHeight}},
			{ID: "bday", Type: survey.Date, Title: "生日", Map: &survey.Mapping{Target: survey.TargetBirthday}},
			{ID: "where", Type: survey.Region, Title: "所在城市", Map: &survey.Mapping{Target: survey.TargetRegion}},
			{ID: "skin", Type: survey.Single, Title: "肤质", Map: &survey.Mapping{Target: survey.TargetCustom, Attr: "skin_type"},
				Options: []survey.Option{{ID: "dry", Label: "干性"}, {ID: "oily", Label: "油性"}}},
			{ID: "join", Type: survey.Single, Title: "想加入会员吗", Options: []survey.Option{{ID: "y", Label: "想", TagIDs: []int64{e.vip}}, {ID: "n", Label: "暂不", TagIDs: []int64{e.non}}}},
			{ID: "nps", Type: survey.Rating, Title: "推荐意愿", Scale: 10},
			{ID: "note", Type: survey.Text, Title: "建议", MaxLength: 200},
		},
	}}
	if err := st.CreateSurvey(ctx, e.sv); err != nil {
		t.Fatal(err)
	}
	e.srv = &Server{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	e.h = e.srv.Handler()
	return e
}

func ptr[T any](v T) *T { return &v }

// link is the signed link path of a customer, valid for a day.
func (e *surveyEnv) link(customerID int64) string {
	e.t.Helper()
	secret, err := e.st.SurveyLinkSecret(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return "/s/" + e.sv.Token + "?" + survey.Sign(secret, e.sv.ID, customerID, e.now.Add(24*time.Hour)).Encode()
}

type pageResp struct {
	Code int
	Body string
	Loc  string
}

func (e *surveyEnv) do(method, path, ip string, form url.Values) pageResp {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if ip == "" {
		ip = "192.0.2.1"
	}
	req.RemoteAddr = ip + ":40000"
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return pageResp{Code: rec.Code, Body: rec.Body.String(), Loc: rec.Header().Get("Location")}
}

var goodForm = url.Values{
	"q.gender": {"f"}, "q.hobbies": {"yoga", "run"}, "q.height": {"165"}, "q.bday": {"1993-06-01"},
	"q.where.province": {"广东省"}, "q.where.city": {"深圳市"}, "q.skin": {"oily"}, "q.join": {"y"}, "q.nps": {"9"},
	"q.note": {`<script>alert("x")</script><img src=x onerror=alert(1)>`},
}

func (e *surveyEnv) responses() int64 {
	e.t.Helper()
	sv, err := e.st.Survey(context.Background(), e.sv.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	page, err := e.st.SurveyResponses(context.Background(), store.ResponseFilter{SurveyID: e.sv.ID, Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	if int64(len(page.Responses)) != sv.Responses {
		e.t.Fatalf("the survey counts %d responses, %d are stored", sv.Responses, len(page.Responses))
	}
	return sv.Responses
}

func (e *surveyEnv) tagsOf(id int64) []int64 {
	e.t.Helper()
	as, err := e.st.CustomerTags(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []int64
	for _, a := range as {
		out = append(out, a.Tag.ID)
	}
	slices.Sort(out)
	return out
}

func TestSurveyPublicLinkAnswer(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newSurveyEnv(t, st, survey.ByLink)
		link := e.link(e.alice)
		r := e.do("GET", link, "", nil)
		if r.Code != http.StatusOK || !strings.Contains(r.Body, "您的性别") || !strings.Contains(r.Body, `name="q.gender"`) || strings.Contains(r.Body, `name="phone"`) {
			t.Fatalf("form: %d\n%s", r.Code, r.Body)
		}
		// Bad answers: shown again with their problems, nothing written.
		bad := url.Values{"q.gender": {"x"}, "q.hobbies": {"yoga", "run", "read"}, "q.height": {"999"}, "q.note": {strings.Repeat("长", 201)}, "q.nps": {"11"}}
		r = e.do("POST", link, "", bad)
		if r.Code != http.StatusUnprocessableEntity {
			t.Fatalf("bad answers: %d", r.Code)
		}
		for _, msg := range []string{"请从给出的选项中选择", "最多只能选 2 项", "不能大于 230", "内容过长，最多 200 个字", "请选择 1 到 10 之间的分数"} {
			if !strings.Contains(r.Body, msg) {
				t.Errorf("the page does not say %q", msg)
			}
		}
		if n := e.responses(); n != 0 {
			t.Fatalf("%d responses after a refused submission", n)
		}
		// A good answer writes the profile, tags and event of the link's customer.
		r = e.do("POST", link, "", goodForm)
		if r.Code != http.StatusSeeOther || r.Loc != "/s/"+e.sv.Token+"/done" {
			t.Fatalf("submit: %d %q\n%s", r.Code, r.Loc, r.Body)
		}
		c, err := st.Customer(context.Background(), e.alice)
		if err != nil {
			t.Fatal(err)
		}
		if c.Gender != "female" || c.Birthday != "1993-06-01" || c.Region != "广东省深圳市" || c.Attrs["skin_type"] != "油性" || c.Attrs["height"] != 165.0 {
			t.Fatalf("alice: %+v", c)
		}
		if got, want := e.tagsOf(e.alice), []int64{e.yoga, e.vip}; !slices.Equal(got, want) {
			t.Fatalf("alice's tags %v, want %v", got, want)
		}
		if got := e.tagsOf(e.bob); len(got) != 0 {
			t.Fatalf("bob got tags %v", got)
		}
		evts, err := st.CustomerEvents(context.Background(), e.alice, time.Time{}, 10)
		if err != nil || len(evts) != 1 || evts[0].Name != survey.EventName {
			t.Fatalf("events %v %v", evts, err)
		}
		if d := e.do("GET", r.Loc, "", nil); d.Code != http.StatusOK || !strings.Contains(d.Body, "感谢填写！") {
			t.Fatalf("thanks page: %d", d.Code)
		}
		// Again: a friendly page, nothing written.
		if g := e.do("GET", link, "", nil); g.Code != http.StatusOK || !strings.Contains(g.Body, `data-state="answered"`) {
			t.Fatalf("page after answering: %d", g.Code)
		}
		r = e.do("POST", link, "", url.Values{"q.gender": {"m"}})
		if r.Code != http.StatusConflict || !strings.Contains(r.Body, "您已经填写过这份问卷") {
			t.Fatalf("second answer: %d", r.Code)
		}
		if c, _ := st.Customer(context.Background(), e.alice); c.Gender != "female" || e.responses() != 1 {
			t.Fatalf("the second answer wrote: %+v", c)
		}
	})
}

func TestSurveyPublicRefusesBadLinks(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	e := newSurveyEnv(t, st, survey.ByLink)
	good := e.link(e.alice)
	u, _ := url.Parse(good)
	q := u.Query()
	alter := func(k, v string) string {
		q2 := url.Values{}
		for kk, vv := range q {
			q2[kk] = vv
		}
		q2.Set(k, v)
		return u.Path + "?" + q2.Encode()
	}
	for name, path := range map[string]string{
		"another customer":  alter("c", strconv.FormatInt(e.bob, 10)),
		"a later expiry":    alter("e", strconv.FormatInt(e.now.Add(1000*time.Hour).Unix(), 10)),
		"a forged sig":      alter("sig", "AAAAAAAAAAAAAAAAAAAAAA"),
		"no signature":      u.Path + "?c=" + q.Get("c") + "&e=" + q.Get("e"),
		"another survey's":  "/s/" + e.sv.Token + "?" + survey.Sign([]byte("guessed secret"), e.sv.ID, e.alice, e.now.Add(time.Hour)).Encode(),
		"nonsense customer": alter("c", "-1"),
	} {
		for _, method := range []string{"GET", "POST"} {
			r := e.do(method, path, "", url.Values{"q.gender": {"f"}})
			if r.Code != http.StatusForbidden || !strings.Contains(r.Body, "链接无效") {
				t.Errorf("%s %s: %d", method, name, r.Code)
			}
		}
	}
	if r := e.do("GET", "/s/"+e.sv.Token, "", nil); r.Code != http.StatusForbidden || !strings.Contains(r.Body, "请通过专属链接打开") {
		t.Errorf("no link on a link-only survey: %d", r.Code)
	}
	e.now = e.now.Add(25 * time.Hour)
	if r := e.do("POST", good, "", goodForm); r.Code != http.StatusForbidden || !strings.Contains(r.Body, "链接已过期") {
		t.Errorf("expired: %d", r.Code)
	}
	if r := e.do("GET", "/s/nosuchtoken", "", nil); r.Code != http.StatusNotFound {
		t.Errorf("unknown survey: %d", r.Code)
	}
	if n := e.responses(); n != 0 {
		t.Fatalf("%d responses from refused links", n)
	}
	if got := e.tagsOf(e.bob); len(got) != 0 {
		t.Fatalf("bob got tags %v through an altered link", got)
	}
	// A closed survey says so.
	e.now = e.now.Add(-25 * time.Hour)
	if _, err := st.CloseSurvey(context.Background(), e.sv.ID); err != nil {
		t.Fatal(err)
	}
	if r := e.do("GET", good, "", nil); r.Code != http.StatusForbidden || !strings.Contains(r.Body, "问卷已结束") {
		t.Errorf("closed: %d", r.Code)
	}
}

func TestSurveyPublicByPhone(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newSurveyEnv(t, st, survey.ByPhone)
		path := "/s/" + e.sv.Token
		r := e.do("GET", path, "", nil)
		if r.Code != http.StatusOK || !strings.Contains(r.Body, `name="phone"`) {
			t.Fatalf("form: %d", r.Code)
		}
		form := url.Values{"phone": {"1380013"}, "q.gender": {"m"}}
		if r := e.do("POST", path, "", form); r.Code != http.StatusUnprocessableEntity || !strings.Contains(r.Body, "请输入 11 位手机号码") {
			t.Fatalf("bad phone: %d", r.Code)
		}
		form.Set("phone", "+86 139-0000-1111")
		if r := e.do("POST", path, "", form); r.Code != http.StatusSeeOther {
			t.Fatalf("submit: %d %s", r.Code, r.Body)
		}
		id, err := st.CustomerByIdentity(context.Background(), customer.Identity{Kind: customer.PhoneID, Value: "13900001111"})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := st.Customer(context.Background(), id)
		if c.Gender != "male" || c.Phone != "13900001111" || c.Source != "问卷" {
			t.Fatalf("new customer %+v", c)
		}
		if r := e.do("POST", path, "", form); r.Code != http.StatusConflict {
			t.Fatalf("same phone again: %d", r.Code)
		}
		// A signed link needs no phone even where phones are accepted.
		if r := e.do("POST", e.link(e.bob), "", url.Values{"q.gender": {"f"}}); r.Code != http.StatusSeeOther {
			t.Fatalf("link on a phone survey: %d %s", r.Code, r.Body)
		}
		if n := e.responses(); n != 2 {
			t.Fatalf("%d responses", n)
		}
	})
}

// A flood of submissions from one address is cut off after the burst with 429, and every
// submission let through is stored whole: the counters match the rows.
func TestSurveyPublicRateLimit(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	e := newSurveyEnv(t, st, survey.ByPhone)
	path := "/s/" + e.sv.Token
	ok, limited := 0, 0
	for i := range 25 {
		form := url.Values{"phone": {"1390000" + strconv.Itoa(1000+i)}, "q.gender": {"f"}, "q.join": {"y"}}
		switch r := e.do("POST", path, "198.51.100.7", form); r.Code {
		case http.StatusSeeOther:
			ok++
		case http.StatusTooManyRequests:
			limited++
			if !strings.Contains(r.Body, "操作太频繁") {
				t.Fatalf("429 page: %s", r.Body)
			}
		default:
			t.Fatalf("submission %d: %d %s", i, r.Code, r.Body)
		}
	}
	if ok != surveySubmitIPBurst || limited != 25-surveySubmitIPBurst {
		t.Fatalf("%d stored, %d limited; want %d stored", ok, limited, surveySubmitIPBurst)
	}
	if n := e.responses(); n != int64(ok) {
		t.Fatalf("%d responses stored for %d accepted submissions", n, ok)
	}
	// Another address is not affected, and the bucket refills with time.
	if r := e.do("POST", path, "198.51.100.8", url.Values{"phone": {"13700000001"}, "q.gender": {"f"}}); r.Code != http.StatusSeeOther {
		t.Fatalf("another address: %d", r.Code)
	}
	e.now = e.now.Add(time.Minute)
	if r := e.do("POST", path, "198.51.100.7", url.Values{"phone": {"13700000002"}, "q.gender": {"f"}}); r.Code != http.StatusSeeOther {
		t.Fatalf("a minute later: %d", r.Code)
	}
	// The per-survey limit holds across addresses.
	e.srv.surveyLimits.submitSurvey = newKeyedLimiter(0.001, 1)
	e.srv.surveyLimits.submitSurvey.now = st.Now
	codes := []int{}
	for i := range 3 {
		r := e.do("POST", path, "203.0.113."+strconv.Itoa(i+1), url.Values{"phone": {"1360000000" + strconv.Itoa(i)}, "q.gender": {"f"}})
		codes = append(codes, r.Code)
	}
	if !slices.Equal(codes, []int{http.StatusSeeOther, http.StatusTooManyRequests, http.StatusTooManyRequests}) {
		t.Fatalf("per-survey limit: %v", codes)
	}
	// An oversized body is refused.
	big := url.Values{"phone": {"13500000000"}, "q.gender": {"f"}, "q.note": {strings.Repeat("x", surveyFormLimit)}}
	e.srv.surveyLimits = newSurveyLimiters(st.Now)
	if r := e.do("POST", path, "203.0.113.99", big); r.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized: %d", r.Code)
	}
	if n := e.responses(); n != int64(ok)+3 {
		t.Fatalf("%d responses", n)
	}
}

// The public page speaks zh-CN by default and English after the switch, which comes back to
// the same survey link.
func TestSurveyPublicLanguage(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	e := newSurveyEnv(t, st, survey.ByPhone)
	path := "/s/" + e.sv.Token
	r := e.do("GET", path, "", nil)
	if !strings.Contains(r.Body, `<html lang="zh-CN">`) || !strings.Contains(r.Body, "手机号") || !strings.Contains(r.Body, "/lang?to=en&amp;next=%2Fs%2F"+e.sv.Token) {
		t.Fatalf("default page:\n%s", r.Body)
	}
	req := httptest.NewRequest("GET", "/lang?to=en&next="+url.QueryEscape(path), nil)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != path {
		t.Fatalf("switch: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	req = httptest.NewRequest("GET", path, nil)
	for _, c := range rec.Result().Cookies() {
		req.AddCookie(c)
	}
	rec = httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	if body := rec.Body.String(); !strings.Contains(body, `<html lang="en">`) || !strings.Contains(body, "Mobile number") || !strings.Contains(body, "Submit") {
		t.Fatalf("English page:\n%s", body)
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Fatalf("CSP %q", csp)
	}
}

// The Survey Answered event goes through the tag rules as ingested events do: a rule on the
// chosen option (its flat property choice.<question>) tags the respondent in the same
// transaction.
func TestSurveyAnswerRunsEventTagRules(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newSurveyEnv(t, st, survey.ByLink)
		ctx := context.Background()
		g := &tag.Group{Name: "肤质标签", Kind: tag.Attribute}
		if err := st.CreateTagGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
		oily := &tag.Tag{GroupID: g.ID, Name: "油皮"}
		if err := st.CreateTag(ctx, oily); err != nil {
			t.Fatal(err)
		}
		rule := &tag.Rule{Name: "问卷油皮", Enabled: true, Trigger: tag.Trigger{Kind: tag.OnEvent, Event: &tag.EventTrigger{Name: survey.EventName,
			Where: []segment.PropCond{{Prop: "choice.skin", Cmp: "eq", Value: "oily"}, {Prop: "choice.hobbies.yoga", Cmp: "eq", Value: true}}}},
			Actions: tag.Actions{Add: []int64{oily.ID}}}
		if err := st.CreateTagRule(ctx, rule, nil); err != nil {
			t.Fatal(err)
		}
		if r := e.do("POST", e.link(e.alice), "", goodForm); r.Code != http.StatusSeeOther {
			t.Fatalf("submit: %d", r.Code)
		}
		if got := e.tagsOf(e.alice); !slices.Contains(got, oily.ID) {
			t.Fatalf("alice's tags %v lack the rule's 油皮 %d", got, oily.ID)
		}
		evts, _ := st.CustomerEvents(ctx, e.alice, time.Time{}, 5)
		p := evts[0].Properties
		if p["answer.hobbies"] != "瑜伽、跑步" || p["choice.gender"] != "f" || p["answer.where"] != "广东省深圳市" || p["answer.height"] != 165.0 {
			t.Fatalf("flat properties %v", p)
		}
	})
}

// BenchmarkSurveySubmitHTTP posts full answers through the public page's handler (form
// parsing, link check, answer checks, the store transaction, the tag-rule and SOP hooks), one
// customer per submission, on SQLite. The submission limits are lifted for it.
func BenchmarkSurveySubmitHTTP(b *testing.B) {
	st := storetest.Open(b, store.SQLite)
	e := newSurveyEnv(b, st, survey.ByLink)
	ctx := context.Background()
	ids := make([]int64, b.N)
	if err := st.InTx(ctx, func(tx *store.Tx) error {
		for i := range ids {
			var err error
			if ids[i], err = tx.CreateCustomer(nil, time.Time{}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	secret, err := st.SurveyLinkSecret(ctx)
	if err != nil {
		b.Fatal(err)
	}
	e.srv.surveyLimits.submitIP = newKeyedLimiter(1e9, 1e9)
	e.srv.surveyLimits.submitSurvey = newKeyedLimiter(1e9, 1e9)
	body := goodForm.Encode()
	b.ResetTimer()
	for i := range b.N {
		path := "/s/" + e.sv.Token + "?" + survey.Sign(secret, e.sv.ID, ids[i], e.now.Add(time.Hour)).Encode()
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.RemoteAddr = "192.0.2.1:4000"
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusSeeOther {
			b.Fatalf("submission %d: %d", i, rec.Code)
		}
	}
}
