package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
	"github.com/siyu-scrm/siyu/internal/survey"
)

// The console's survey pages: the list, the builder saving with an error that names its field,
// and the results page showing script-like answers and labels as text.
func TestConsoleSurveyPages(t *testing.T) {
	st := storetest.Open(t, store.SQLite)
	e := newSurveyEnv(t, st, survey.ByLink)
	c := &consoleEnv{t: t, st: st, h: e.h}
	op := consoleSignIn(t, st, "olivia", staff.Operator)
	sales := consoleSignIn(t, st, "sam", staff.Sales)
	id := strconv.FormatInt(e.sv.ID, 10)

	// An answer and an option label that look like markup.
	e.sv.Questions[5].Options[0].Label = `<img src=x onerror=alert(2)>干性`
	if err := st.UpdateSurvey(context.Background(), e.sv); err != nil {
		t.Fatal(err)
	}
	form := url.Values{}
	for k, v := range goodForm {
		form[k] = v
	}
	form.Set("q.skin", "dry")
	if r := e.do("POST", e.link(e.alice), "", form); r.Code != http.StatusSeeOther {
		t.Fatalf("answer: %d", r.Code)
	}

	c.get(op, "/surveys").want(t, http.StatusOK, "会员调研", "/s/"+e.sv.Token, "进行中")
	c.get(op, "/surveys?status=draft").want(t, http.StatusOK, "没有符合条件的问卷")
	res := c.get(op, "/surveys/"+id)
	res.want(t, http.StatusOK, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;", "&lt;img src=x onerror=alert(2)&gt;干性", `class="chart bars"`, "每日答卷")
	res.lacks(t, `<script>alert("x")`, "<img src=x")
	if strings.Count(res.Body, "<script") != 1 { // the layout's own app.js only
		t.Fatalf("the results page carries %d scripts", strings.Count(res.Body, "<script"))
	}
	c.get(op, "/surveys/"+id+"?cursor=nonsense").want(t, http.StatusOK, "答卷")
	c.get(op, "/surveys/"+id+"?customer_id="+strconv.FormatInt(e.bob, 10)).want(t, http.StatusOK, "sig=", "有效期至")
	c.get(op, "/surveys/"+id+"?customer_id=999999").want(t, http.StatusOK, "找不到客户 999999")
	exp := c.get(op, "/surveys/"+id+"/export?format=csv")
	exp.want(t, http.StatusOK, "\xEF\xBB\xBF答卷编号,客户编号")
	c.get(sales, "/surveys").want(t, http.StatusForbidden)

	// The builder: a new survey starts from a template; a bad definition is refused naming
	// the field, and nothing is created.
	c.get(op, "/surveys/new").want(t, http.StatusOK, `id="survey-spec"`, "会员信息调研", `data-builder="`)
	bad := survey.Definition{Title: "新问卷", Questions: []survey.Question{{ID: "q1", Type: survey.Single, Title: "选一个", Options: []survey.Option{{ID: "a", Label: "甲", TagIDs: []int64{424242}}, {ID: "b", Label: "乙"}}}}}
	spec, _ := json.Marshal(bad)
	c.post(op, "/surveys/new", url.Values{"spec": {string(spec)}, "status": {"open"}}).want(t, http.StatusUnprocessableEntity, "questions[0].options[0].tag_ids[0]", "no tag 424242")
	c.post(op, "/surveys/new", url.Values{"spec": {`{"title": "x", "questions": [], "colour": 1}`}, "status": {"draft"}}).want(t, http.StatusUnprocessableEntity, "colour")
	if page, _ := st.ListSurveys(context.Background(), store.SurveyFilter{}); len(page.Surveys) != 1 {
		t.Fatalf("%d surveys after refused saves", len(page.Surveys))
	}
	bad.Questions[0].Options[0].TagIDs = []int64{e.yoga}
	spec, _ = json.Marshal(bad)
	saved := c.post(op, "/surveys/new", url.Values{"spec": {string(spec)}, "status": {"open"}})
	if saved.StatusCode != http.StatusSeeOther || !strings.HasPrefix(saved.Header.Get("Location"), "/surveys/") {
		t.Fatalf("save: %d %s", saved.StatusCode, saved.Header.Get("Location"))
	}
	c.get(op, "/surveys/"+id+"/edit").want(t, http.StatusOK, "编辑问卷：会员调研", `&#34;id&#34;: &#34;gender&#34;`)

	// Close, then delete.
	c.post(op, "/surveys/"+id+"/close", nil).want(t, http.StatusSeeOther)
	if sv, _ := st.Survey(context.Background(), e.sv.ID); sv.Status != survey.Closed {
		t.Fatalf("status %s after closing", sv.Status)
	}
	c.post(op, "/surveys/"+id+"/delete", nil).want(t, http.StatusSeeOther)
	c.get(op, "/surveys/"+id).want(t, http.StatusNotFound)
}
