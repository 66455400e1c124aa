package web

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// The weekly report: the printable page in the console, the same figures as JSON, and the
// Monday email's settings (sending without SMTP is refused naming it).
func TestWeeklyReportRoutes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := analyticsEnv(t, st) // orders 2024-03-02 … 03-06
		st.SetClock(func() time.Time { return time.Date(2024, 3, 12, 10, 0, 0, 0, segment.Shanghai) })
		rep := e.must(http.StatusOK, "GET", "/api/v1/reports/weekly?week=2024-03-06", e.adminKey, nil)
		if rep["from"] != "2024-03-04" || rep["to"] != "2024-03-11" {
			t.Fatalf("week %v..%v", rep["from"], rep["to"])
		}
		// 03-04 ¥30 (c1), 03-05 ¥50 (c2), 03-06 ¥20 − ¥5 refunded (c3).
		days := rep["days"].([]any)
		if len(days) != 7 || days[0].(map[string]any)["gmv_minor"].(float64) != 3000 || days[2].(map[string]any)["gmv_minor"].(float64) != 1500 {
			t.Fatalf("days %v", days)
		}
		if r := e.call("GET", "/api/v1/reports/weekly?week=soon", e.adminKey, nil); r.Code != http.StatusUnprocessableEntity || r.field(t) != "week" {
			t.Fatalf("bad week: %d %s", r.Code, r.Body)
		}
		// Sales see their own customers' part: c1 and c3.
		mine := e.must(http.StatusOK, "GET", "/api/v1/reports/weekly?week=2024-03-04", e.salesKey, nil)
		if d := mine["days"].([]any); d[1].(map[string]any)["gmv_minor"].(float64) != 0 || d[0].(map[string]any)["gmv_minor"].(float64) != 3000 {
			t.Fatalf("sales days %v", d)
		}
		page := e.call("GET", "/reports/weekly?week=2024-03-04", "", nil, "Cookie", e.sessionToken)
		if page.Code != http.StatusOK || !strings.Contains(string(page.Body), "¥30") || strings.Count(string(page.Body), `<rect class="bar"`) != 14 {
			t.Fatalf("page: %d\n%s", page.Code, page.Body)
		}
		if css := e.call("GET", "/reports/weekly.css", "", nil); css.Code != http.StatusOK || !strings.HasPrefix(css.Header.Get("Content-Type"), "text/css") {
			t.Fatalf("css: %d %v", css.Code, css.Header)
		}
		e.must(http.StatusForbidden, "PUT", "/api/v1/reports/weekly/settings", e.salesKey, map[string]any{"enabled": false})
		if r := e.call("PUT", "/api/v1/reports/weekly/settings", e.opKey, map[string]any{"enabled": true, "recipients": []string{"ops@example.com", "nope"}}); r.Code != http.StatusUnprocessableEntity || r.field(t) != "recipients[1]" {
			t.Fatalf("bad recipient: %d %s", r.Code, r.Body)
		}
		got := e.must(http.StatusOK, "PUT", "/api/v1/reports/weekly/settings", e.opKey, map[string]any{"enabled": true, "recipients": []string{"ops@example.com"}})
		if got["enabled"] != true || got["smtp_configured"] != false || !strings.HasPrefix(got["next_send"].(string), "2024-03-18T09:00:00") {
			t.Fatalf("settings %v", got)
		}
		if r := e.call("POST", "/api/v1/reports/weekly/send", e.opKey, nil); r.Code != http.StatusUnprocessableEntity || r.field(t) != "smtp" {
			t.Fatalf("send without SMTP: %d %s", r.Code, r.Body)
		}
	})
}
