package web

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
	"github.com/siyu-scrm/siyu/internal/tag"
)

func TestSurveyAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newAPIEnv(t, st)
		ctx := context.Background()
		g := &tag.Group{Name: "兴趣", Kind: tag.Attribute}
		if err := st.CreateTagGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
		yoga := &tag.Tag{GroupID: g.ID, Name: "瑜伽"}
		if err := st.CreateTag(ctx, yoga); err != nil {
			t.Fatal(err)
		}
		def := map[string]any{
			"title": "会员调研", "identify": "link", "status": "open",
			"questions": []any{
				map[string]any{"id": "gender", "type": "single", "title": "性别", "required": true, "map": map[string]any{"target": "gender"},
					"options": []any{map[string]any{"id": "f", "label": "女", "value": "female"}, map[string]any{"id": "m", "label": "男", "value": "male", "tag_ids": []any{9999}}}},
				map[string]any{"id": "note", "type": "text", "title": "建议"},
			},
		}
		// Validation names the field; nothing is created.
		r := e.call("POST", "/api/v1/surveys", e.opKey, def)
		if r.Code != http.StatusUnprocessableEntity || r.field(t) != "questions[0].options[1].tag_ids[0]" {
			t.Fatalf("unknown tag: %d %s", r.Code, r.Body)
		}
		if r := e.call("POST", "/api/v1/surveys", e.opKey, `{"title": "x", "questions": [], "colour": "red"}`); r.Code != http.StatusBadRequest {
			t.Fatalf("unknown member: %d %s", r.Code, r.Body)
		}
		if r := e.call("POST", "/api/v1/surveys", e.salesKey, def); r.Code != http.StatusForbidden {
			t.Fatalf("sales creating: %d", r.Code)
		}
		if r := e.call("GET", "/api/v1/surveys", "", nil); r.Code != http.StatusUnauthorized {
			t.Fatalf("no key: %d", r.Code)
		}
		def["questions"].([]any)[0].(map[string]any)["options"].([]any)[1].(map[string]any)["tag_ids"] = []any{yoga.ID}
		created := e.must(http.StatusCreated, "POST", "/api/v1/surveys", e.opKey, def)
		id := int64(created["id"].(float64))
		path := "/api/v1/surveys/" + strconv.FormatInt(id, 10)
		if !strings.HasSuffix(created["public_url"].(string), "/s/"+created["token"].(string)) || created["status"] != "open" {
			t.Fatalf("created %v", created)
		}
		for range 2 {
			e.must(http.StatusCreated, "POST", "/api/v1/surveys", e.opKey, map[string]any{"title": "草稿", "questions": []any{map[string]any{"type": "text", "title": "说说"}}})
		}
		p1 := e.must(http.StatusOK, "GET", "/api/v1/surveys?limit=2", e.salesKey, nil)
		if len(p1["surveys"].([]any)) != 2 || p1["next_cursor"] == nil {
			t.Fatalf("page 1 %v", p1)
		}
		p2 := e.must(http.StatusOK, "GET", "/api/v1/surveys?limit=2&cursor="+p1["next_cursor"].(string), e.salesKey, nil)
		if s := p2["surveys"].([]any); len(s) != 1 || s[0].(map[string]any)["id"].(float64) != float64(id) {
			t.Fatalf("page 2 %v", p2)
		}
		if r := e.call("GET", "/api/v1/surveys?status=paused", e.opKey, nil); r.Code != http.StatusUnprocessableEntity || r.field(t) != "status" {
			t.Fatalf("bad status filter: %d %s", r.Code, r.Body)
		}
		// Links: an operator for anyone; sales only for their own customers.
		var mine, theirs int64
		err := st.InTx(ctx, func(tx *store.Tx) error {
			var err error
			if mine, err = tx.CreateCustomer(nil, time.Time{}); err != nil {
				return err
			}
			theirs, err = tx.CreateCustomer(nil, time.Time{})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		owner := e.salesLogin
		if err := st.UpdateCustomer(ctx, mine, &customer.Patch{Owner: &owner}); err != nil {
			t.Fatal(err)
		}
		if r := e.call("GET", path+"/link?customer_id="+strconv.FormatInt(theirs, 10), e.salesKey, nil); r.Code != http.StatusNotFound {
			t.Fatalf("sales link for another's customer: %d", r.Code)
		}
		if r := e.call("GET", path+"/link", e.opKey, nil); r.Code != http.StatusBadRequest || r.field(t) != "customer_id" {
			t.Fatalf("no customer: %d %s", r.Code, r.Body)
		}
		if r := e.call("GET", path+"/link?customer_id=1&days=999", e.opKey, nil); r.Code != http.StatusUnprocessableEntity || r.field(t) != "days" {
			t.Fatalf("too many days: %d %s", r.Code, r.Body)
		}
		link := e.must(http.StatusOK, "GET", path+"/link?customer_id="+strconv.FormatInt(mine, 10), e.salesKey, nil)
		u, err := url.Parse(link["url"].(string))
		if err != nil || u.Query().Get("c") != strconv.FormatInt(mine, 10) || u.Query().Get("sig") == "" {
			t.Fatalf("link %v", link)
		}
		// Answer through the link, as a browser would.
		req := surveyFormRequest("POST", link["path"].(string), url.Values{"q.gender": {"m"}, "q.note": {"=HYPERLINK(\"http://evil\")"}})
		rec := surveyServe(e.h, req)
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("answer: %d %s", rec.Code, rec.Body)
		}
		if got := e.must(http.StatusOK, "GET", "/api/v1/customers/"+strconv.FormatInt(mine, 10)+"/tags", e.opKey, nil); !strings.Contains(string(surveyJSON(t, got)), "瑜伽") {
			t.Fatalf("tags %v", got)
		}
		resp := e.must(http.StatusOK, "GET", path+"/responses", e.salesKey, nil)
		if rs := resp["responses"].([]any); len(rs) != 1 {
			t.Fatalf("responses %v", resp)
		}
		res := e.must(http.StatusOK, "GET", path+"/results", e.opKey, nil)
		qs := res["questions"].([]any)
		counts := qs[0].(map[string]any)["counts"].([]any)
		if res["responses"].(float64) != 1 || counts[1].(map[string]any)["count"].(float64) != 1 || counts[0].(map[string]any)["count"].(float64) != 0 {
			t.Fatalf("results %v", res)
		}
		// Exports: CSV with a BOM and defused formulas, xlsx readable.
		r = e.call("GET", path+"/export?format=csv", e.opKey, nil, "Accept-Language", "en")
		if r.Code != http.StatusOK || !bytes.HasPrefix(r.Body, []byte("\xEF\xBB\xBFresponse_id,customer_id,customer_name,answered_at,via,性别,建议\n")) ||
			!strings.Contains(string(r.Body), `,link,男,"'=HYPERLINK(""http://evil"")"`) {
			t.Fatalf("csv: %d %q", r.Code, r.Body)
		}
		r = e.call("GET", path+"/export?format=xlsx", e.opKey, nil)
		f, err := excelize.OpenReader(bytes.NewReader(r.Body))
		if r.Code != http.StatusOK || err != nil {
			t.Fatalf("xlsx: %d %v", r.Code, err)
		}
		rows, _ := f.GetRows("Sheet1")
		if len(rows) != 2 || rows[0][5] != "性别" || rows[1][5] != "男" {
			t.Fatalf("xlsx rows %v", rows)
		}
		sum, _ := f.GetRows("汇总")
		if len(sum) != 4 || sum[2][2] != "男" || sum[2][3] != "1" || sum[1][3] != "0" || sum[3][0] != "建议" {
			t.Fatalf("xlsx summary %v", sum)
		}
		if r := e.call("GET", path+"/export?format=pdf", e.opKey, nil); r.Code != http.StatusUnprocessableEntity {
			t.Fatalf("pdf: %d", r.Code)
		}
		if r := e.call("GET", path+"/export", e.salesKey, nil); r.Code != http.StatusForbidden {
			t.Fatalf("sales export: %d", r.Code)
		}
		// Update, close, delete.
		def["title"] = "会员调研（改）"
		def["questions"].([]any)[1].(map[string]any)["max_length"] = 0.5
		if r := e.call("PUT", path, e.opKey, def); r.Code != http.StatusBadRequest {
			t.Fatalf("fractional max_length: %d %s", r.Code, r.Body)
		}
		delete(def["questions"].([]any)[1].(map[string]any), "max_length")
		delete(def, "status")
		if got := e.must(http.StatusOK, "PUT", path, e.opKey, def); got["title"] != "会员调研（改）" || got["responses"].(float64) != 1 || got["status"] != "open" {
			t.Fatalf("updated %v", got)
		}
		if got := e.must(http.StatusOK, "POST", path+"/close", e.opKey, nil); got["status"] != "closed" {
			t.Fatalf("closed %v", got)
		}
		e.must(http.StatusNoContent, "DELETE", path, e.opKey, nil)
		if r := e.call("GET", path, e.opKey, nil); r.Code != http.StatusNotFound {
			t.Fatalf("deleted: %d", r.Code)
		}
	})
}

// surveyFormRequest is a browser's form post from a fixed address.
func surveyFormRequest(method, path string, form url.Values) *http.Request {
	req := httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = "192.0.2.10:40000"
	return req
}

func surveyServe(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

func surveyJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
