package web

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"testing"

	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// contentKeys adds two content staff (writer and editor) with API keys.
func contentKeys(t *testing.T, e *apiEnv) (writer, editor string) {
	t.Helper()
	for i, login := range []string{"writer", "editor"} {
		m := &staff.Staff{Login: login, Name: login, Role: staff.Content}
		if err := e.st.CreateStaff(e.ctx, m, ""); err != nil {
			t.Fatal(err)
		}
		_, secret, err := e.st.CreateKey(e.ctx, staff.APIKey, login, staff.Content, m.ID)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			writer = secret
		} else {
			editor = secret
		}
	}
	return writer, editor
}

func TestAPIContentWorkflow(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newAPIEnv(t, st)
		writer, editor := contentKeys(t, e)

		// Bad input: 422 naming the field, nothing written.
		r := e.call("POST", "/api/v1/contents", writer, map[string]any{"kind": "text", "title": "欢迎", "body": map[string]any{"text": "您好 {{.Nmae}}"}})
		if r.Code != http.StatusUnprocessableEntity || r.field(t) != "body.text" {
			t.Fatalf("unknown template field: %d %s", r.Code, r.Body)
		}
		if r := e.call("POST", "/api/v1/contents", writer, `{"kind": "text", "title": 5}`); r.Code != http.StatusBadRequest {
			t.Fatalf("wrong type: %d", r.Code)
		}
		// Roles: sales and operators read, content writes.
		for _, key := range []string{e.salesKey, e.opKey} {
			if r := e.call("POST", "/api/v1/contents", key, map[string]any{"kind": "text", "title": "x", "body": map[string]any{"text": "hi"}}); r.Code != http.StatusForbidden {
				t.Fatalf("a non-content role wrote content: %d", r.Code)
			}
		}
		c := e.must(http.StatusCreated, "POST", "/api/v1/contents", writer, map[string]any{"kind": "text", "title": "欢迎",
			"body": map[string]any{"text": "{{.Name}}您好"}, "tags": []map[string]string{{"kind": "lifecycle", "value": "新客未购"}}})
		path := fmt.Sprintf("/api/v1/contents/%v", c["id"])
		// Sales do not see drafts.
		if r := e.call("GET", path, e.salesKey, nil); r.Code != http.StatusNotFound {
			t.Fatalf("sales read a draft: %d", r.Code)
		}
		if r := e.call("POST", path+"/publish", editor, nil); r.Code != http.StatusConflict {
			t.Fatalf("publish a draft: %d %s", r.Code, r.Body)
		}
		e.must(http.StatusOK, "POST", path+"/submit", writer, map[string]string{"comment": "请审"})
		if r := e.call("POST", path+"/approve", writer, nil); r.Code != http.StatusUnprocessableEntity || r.field(t) != "reviewer" {
			t.Fatalf("self-review: %d %s", r.Code, r.Body)
		}
		if r := e.call("PUT", path, writer, map[string]any{"title": "x", "body": map[string]any{"text": "hi"}}); r.Code != http.StatusConflict {
			t.Fatalf("edit in review: %d", r.Code)
		}
		e.must(http.StatusOK, "POST", path+"/approve", editor, nil)
		got := e.must(http.StatusOK, "POST", path+"/publish", editor, nil)
		if got["status"] != "published" || got["published_version"].(float64) != 1 {
			t.Fatalf("published %v", got)
		}
		e.must(http.StatusOK, "GET", path, e.salesKey, nil)
		list := e.must(http.StatusOK, "GET", "/api/v1/contents?tag=lifecycle:新客未购&published=true&limit=10", e.salesKey, nil)
		if list["total"].(float64) != 1 {
			t.Fatalf("list %v", list)
		}
		if r := e.call("GET", "/api/v1/contents?status=bogus", writer, nil); r.Code != http.StatusBadRequest || r.field(t) != "status" {
			t.Fatalf("bad status filter: %d", r.Code)
		}
		// An edit of the published item: version 2 in draft, version 1 in use.
		got = e.must(http.StatusOK, "PUT", path, writer, map[string]any{"title": "欢迎2", "body": map[string]any{"text": "{{.Name}}，欢迎"}})
		if got["version"].(float64) != 2 || got["in_use"] == nil {
			t.Fatalf("edited %v", got)
		}
		log := e.must(http.StatusOK, "GET", path+"/comments", writer, nil)["comments"].([]any)
		if len(log) != 5 {
			t.Fatalf("log %v", log)
		}
		e.must(http.StatusOK, "GET", path+"/stats?days=7", writer, nil)
		if r := e.call("GET", "/api/v1/contents/999/stats", writer, nil); r.Code != http.StatusNotFound {
			t.Fatalf("stats of nothing: %d", r.Code)
		}

		// Images: type checked by the bytes, served back to signed-in principals only.
		if r := e.call("POST", "/api/v1/content-images", writer, "<svg onload=alert(1)>", "Content-Type", "image/png"); r.Code != http.StatusUnprocessableEntity {
			t.Fatalf("not an image: %d %s", r.Code, r.Body)
		}
		var buf bytes.Buffer
		img := image.NewRGBA(image.Rect(0, 0, 2, 2))
		img.Set(0, 0, color.RGBA{255, 0, 0, 255})
		png.Encode(&buf, img)
		up := e.must(http.StatusCreated, "POST", "/api/v1/content-images", writer, buf.String())
		url := up["url"].(string)
		if r := e.call("GET", url, "", nil); r.Code != http.StatusUnauthorized {
			t.Fatalf("image without credentials: %d", r.Code)
		}
		r = e.call("GET", url, e.salesKey, nil)
		if r.Code != http.StatusOK || r.Header.Get("Content-Type") != "image/png" || !bytes.Equal(r.Body, buf.Bytes()) {
			t.Fatalf("image back: %d %s", r.Code, r.Header.Get("Content-Type"))
		}
		e.must(http.StatusCreated, "POST", "/api/v1/contents", writer, map[string]any{"kind": "image", "title": "海报", "body": map[string]any{"image_id": up["image_id"]}})

		// Folders and personas.
		f := e.must(http.StatusCreated, "POST", "/api/v1/content-folders", writer, map[string]any{"name": "新客"})
		if r := e.call("POST", "/api/v1/content-folders", writer, map[string]any{"name": "新客"}); r.Code != http.StatusUnprocessableEntity || r.field(t) != "name" {
			t.Fatalf("duplicate folder: %d", r.Code)
		}
		if r := e.call("PUT", fmt.Sprintf("/api/v1/content-folders/%v", f["id"]), writer, map[string]any{"name": "新客", "parent_id": f["id"]}); r.Code != http.StatusUnprocessableEntity || r.field(t) != "parent_id" {
			t.Fatalf("folder in itself: %d", r.Code)
		}
		if r := e.call("POST", "/api/v1/personas", writer, map[string]any{"name": "健康管理专家", "staff_ids": []int64{9999}}); r.Code != http.StatusUnprocessableEntity || r.field(t) != "staff_ids[0]" {
			t.Fatalf("persona with unknown staff: %d %s", r.Code, r.Body)
		}
		e.must(http.StatusCreated, "POST", "/api/v1/personas", writer, map[string]any{"name": "健康管理专家", "intro": "十年营养师", "staff_ids": []int64{e.sales.ID}})
		if p := e.must(http.StatusOK, "GET", "/api/v1/personas", e.salesKey, nil)["personas"].([]any); len(p) != 1 {
			t.Fatalf("personas %v", p)
		}
	})
}

func TestAPIChannelCodes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := newAPIEnv(t, st)
		body := map[string]any{"name": "门店海报", "state": "store-a", "receivers": []map[string]any{{"staff_id": e.sales.ID, "daily_cap": 50}},
			"welcome": map[string]any{"text": "{{or .Name \"您\"}}好"}}
		if r := e.call("POST", "/api/v1/channel-codes", e.salesKey, body); r.Code != http.StatusForbidden {
			t.Fatalf("sales made a code: %d", r.Code)
		}
		c := e.must(http.StatusCreated, "POST", "/api/v1/channel-codes", e.opKey, body)
		if r := e.call("POST", "/api/v1/channel-codes", e.opKey, body); r.Code != http.StatusUnprocessableEntity || r.field(t) != "state" {
			t.Fatalf("duplicate state: %d %s", r.Code, r.Body)
		}
		bad := map[string]any{"name": "x", "receivers": []map[string]any{{"staff_id": e.sales.ID}}, "welcome": map[string]any{"text": "{{.Nmae}}"}}
		if r := e.call("POST", "/api/v1/channel-codes", e.opKey, bad); r.Code != http.StatusUnprocessableEntity || r.field(t) != "welcome.text" {
			t.Fatalf("bad welcome: %d %s", r.Code, r.Body)
		}
		list := e.must(http.StatusOK, "GET", "/api/v1/channel-codes?limit=1", e.opKey, nil)
		if list["total"].(float64) != 1 {
			t.Fatalf("list %v", list)
		}
		path := fmt.Sprintf("/api/v1/channel-codes/%v", c["id"])
		e.must(http.StatusOK, "GET", path+"/stats?days=7", e.opKey, nil)
		e.must(http.StatusNoContent, "DELETE", path, e.opKey, nil)
		if r := e.call("GET", path, e.opKey, nil); r.Code != http.StatusNotFound {
			t.Fatalf("deleted code: %d", r.Code)
		}
	})
}
