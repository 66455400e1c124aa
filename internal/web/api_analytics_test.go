package web

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// analyticsEnv loads a small data set over 2024-03-01..2024-03-08 (Shanghai): c1 (qr, sales)
// new and buying twice; c2 (ad, operator) new and buying once; c3 (qr, sales) created before
// the period and buying once with a partly refunded order. c1 and c2 go 加企微 → 入群; c3 only
// 入群.
func analyticsEnv(t *testing.T, st *store.Store) *apiEnv {
	t.Helper()
	e := newAPIEnv(t, st)
	at := func(s string) time.Time {
		v, err := time.ParseInLocation("2006-01-02 15:04", s, segment.Shanghai)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cs := []*customer.Customer{
		{ID: 1, Name: "c1", Source: "qr", OwnerID: e.sales.ID, CreatedAt: at("2024-03-01 09:00")},
		{ID: 2, Name: "c2", Source: "ad", OwnerID: e.operator.ID, CreatedAt: at("2024-03-02 09:00")},
		{ID: 3, Name: "c3", Source: "qr", OwnerID: e.sales.ID, CreatedAt: at("2024-02-10 09:00")},
	}
	orders := []*event.Order{
		{OrderID: "o1", CustomerID: 1, Status: event.Paid, AmountMinor: 1000, Currency: "CNY", PaidAt: at("2024-03-02 09:00")},
		{OrderID: "o2", CustomerID: 1, Status: event.Paid, AmountMinor: 3000, Currency: "CNY", PaidAt: at("2024-03-04 09:00")},
		{OrderID: "o3", CustomerID: 2, Status: event.Paid, AmountMinor: 5000, Currency: "CNY", PaidAt: at("2024-03-05 09:00")},
		{OrderID: "o4", CustomerID: 3, Status: event.PartiallyRefunded, AmountMinor: 2000, RefundedMinor: 500, Currency: "CNY", PaidAt: at("2024-03-06 09:00")},
	}
	events := []*event.Event{
		{MessageID: "m1", CustomerID: 1, Type: "track", Name: "加企微", Timestamp: at("2024-03-01 10:00")},
		{MessageID: "m2", CustomerID: 1, Type: "track", Name: "入群", Timestamp: at("2024-03-01 12:00")},
		{MessageID: "m3", CustomerID: 2, Type: "track", Name: "加企微", Timestamp: at("2024-03-02 10:00")},
		{MessageID: "m4", CustomerID: 2, Type: "track", Name: "入群", Timestamp: at("2024-03-02 14:00")},
		{MessageID: "m5", CustomerID: 3, Type: "track", Name: "入群", Timestamp: at("2024-03-03 10:00")},
	}
	err := st.InTx(e.ctx, func(tx *store.Tx) error {
		if err := tx.BulkInsertCustomers(cs); err != nil {
			return err
		}
		if err := tx.BulkInsertOrders(orders); err != nil {
			return err
		}
		return tx.BulkInsertEvents(events)
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// metric finds a metric's current value in a metrics answer's group.
func metric(t *testing.T, group any, key string) any {
	t.Helper()
	for _, m := range group.(map[string]any)["metrics"].([]any) {
		if mm := m.(map[string]any); mm["key"] == key {
			return mm["current"]
		}
	}
	t.Fatalf("no metric %s", key)
	return nil
}

const march = "from=2024-03-01&to=2024-03-08"

func TestAPIAnalyticsMetrics(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := analyticsEnv(t, st)
		v := e.must(http.StatusOK, "GET", "/api/v1/analytics/metrics?"+march, e.opKey, nil)
		for key, want := range map[string]float64{"new_customers": 2, "active_customers": 3, "buyers": 3, "first_time_buyers": 3, "repeat_buyers": 1,
			"orders": 4, "gmv_minor": 10500, "aov_minor": 2625, "repurchase_rate": 0.3333, "conversion_rate": 1, "median_days_to_first_order": 2} {
			if got := metric(t, v["total"], key); got != want {
				t.Errorf("operator %s = %v, want %v", key, got, want)
			}
		}
		if v["previous_from"] != "2024-02-23" {
			t.Errorf("previous_from %v", v["previous_from"])
		}
		// Sales see only c1 and c3.
		v = e.must(http.StatusOK, "GET", "/api/v1/analytics/metrics?"+march+"&by=owner", e.salesKey, nil)
		if got := metric(t, v["total"], "gmv_minor"); got != float64(5500) {
			t.Errorf("sales GMV %v, want 5500", got)
		}
		if g := v["groups"].([]any); len(g) != 1 || g[0].(map[string]any)["key"] != fmt.Sprint(e.sales.ID) {
			t.Errorf("sales by owner: %v", g)
		}
		v = e.must(http.StatusOK, "GET", "/api/v1/analytics/metrics?"+march+"&by=source", e.adminKey, nil)
		if g := v["groups"].([]any); len(g) != 2 || metric(t, g[1], "new_customers") != float64(1) {
			t.Errorf("by source: %v", g)
		}
		// A segment: source qr (c1, c3).
		r := e.call("POST", "/api/v1/segments", e.opKey, `{"name": "qr", "tree": {"field": "source", "cmp": "eq", "value": "qr"}}`)
		if r.Code != http.StatusCreated {
			t.Fatalf("segment: %d %s", r.Code, r.Body)
		}
		seg := int64(r.JSON(t)["id"].(float64))
		v = e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/analytics/metrics?%s&segment_id=%d", march, seg), e.opKey, nil)
		if got := metric(t, v["total"], "buyers"); got != float64(2) {
			t.Errorf("segment buyers %v, want 2", got)
		}
		// CSV.
		r = e.call("GET", "/api/v1/analytics/metrics?"+march+"&format=csv", e.opKey, nil)
		if r.Code != http.StatusOK || !bytes.HasPrefix(r.Body, []byte("\xEF\xBB\xBFgroup,metric,unit,current,previous,change,definition\n")) ||
			!strings.Contains(string(r.Body), "\ntotal,gmv_minor,minor,10500,0,,") || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/csv") {
			t.Errorf("csv: %d %s\n%s", r.Code, r.Header, r.Body)
		}
	})
}

func TestAPIAnalyticsCohortsAndFunnel(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := analyticsEnv(t, st)
		st.SetClock(func() time.Time { return time.Date(2024, 3, 20, 0, 0, 0, 0, segment.Shanghai) })
		v := e.must(http.StatusOK, "GET", "/api/v1/analytics/cohorts?metric=repurchase", e.opKey, nil)
		if v["from"] != "2023-04-01" || v["to"] != "2024-04-01" || v["buckets"] != float64(12) {
			t.Errorf("default cohorts %v..%v, %v buckets", v["from"], v["to"], v["buckets"])
		}
		rows := v["rows"].([]any)
		feb, mar := rows[10].(map[string]any), rows[11].(map[string]any)
		if feb["cohort"] != "2024-02" || feb["size"] != float64(1) || fmt.Sprint(feb["cells"]) != "[map[customers:0 k:0 rate:0] map[customers:1 k:1 rate:1]]" {
			t.Errorf("feb row %v", feb)
		}
		if mar["size"] != float64(2) || fmt.Sprint(mar["cells"]) != "[map[customers:2 k:0 rate:1]]" {
			t.Errorf("mar row %v", mar)
		}
		r := e.call("GET", "/api/v1/analytics/cohorts?period=week&from=2024-02-26&to=2024-03-04&by=source&format=csv", e.salesKey, nil)
		// Sales: c1 (c3 was acquired before); the weeks are followed to today's (03-18).
		if want := "\xEF\xBB\xBFgroup,cohort,size,week_0,week_1,week_2,week_3\nqr,2024-02-26,1,1,0,0,0\n"; r.Code != http.StatusOK || string(r.Body) != want {
			t.Errorf("sales weekly csv: %d %q, want %q", r.Code, r.Body, want)
		}

		funnel := map[string]any{"steps": []string{"加企微", "入群"}, "within_days": 1, "from": "2024-03-01", "to": "2024-03-08", "split": "source"}
		v = e.must(http.StatusOK, "POST", "/api/v1/analytics/funnel", e.opKey, funnel)
		steps := v["total"].(map[string]any)["steps"].([]any)
		if s := steps[1].(map[string]any); s["customers"] != float64(2) || s["median_hours_from_previous"] != float64(3) {
			t.Errorf("funnel step 2: %v", s)
		}
		if g := v["groups"].([]any); len(g) != 2 {
			t.Errorf("groups %v", g)
		}
		v = e.must(http.StatusOK, "POST", "/api/v1/analytics/funnel", e.salesKey, funnel)
		if s := v["total"].(map[string]any)["steps"].([]any)[0].(map[string]any); s["customers"] != float64(1) {
			t.Errorf("sales funnel step 1: %v", s)
		}
		r = e.call("POST", "/api/v1/analytics/funnel?format=csv", e.opKey, funnel)
		if !bytes.HasPrefix(r.Body, []byte("\xEF\xBB\xBFgroup,step,name,customers,conversion_from_previous,conversion_from_first,median_hours_from_previous\ntotal,1,加企微,2,1,1,\ntotal,2,入群,2,1,1,3\n")) {
			t.Errorf("funnel csv: %d %s", r.Code, r.Body)
		}
	})
}

func TestAPIAnalyticsValidation(t *testing.T) {
	e := newAPIEnv(t, storetest.Open(t, store.SQLite))
	steps := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprint("e", i)
		}
		return out
	}
	for _, tc := range []struct {
		method, path string
		body         any
		field        string
	}{
		{"GET", "/api/v1/analytics/metrics?from=2024-03-01&to=2024-03-01", nil, "to"},
		{"GET", "/api/v1/analytics/metrics?from=2024-03-02&to=2024-03-01", nil, "to"},
		{"GET", "/api/v1/analytics/metrics?from=March", nil, "from"},
		{"GET", "/api/v1/analytics/metrics?by=gender", nil, "by"},
		{"GET", "/api/v1/analytics/metrics?format=xml", nil, "format"},
		{"GET", "/api/v1/analytics/metrics?segment_id=x", nil, "segment_id"},
		{"GET", "/api/v1/analytics/metrics?segment_id=99", nil, "segment_id"},
		{"GET", "/api/v1/analytics/cohorts?period=day", nil, "period"},
		{"GET", "/api/v1/analytics/cohorts?metric=gmv", nil, "metric"},
		{"GET", "/api/v1/analytics/cohorts?by=owner", nil, "by"},
		{"GET", "/api/v1/analytics/cohorts?from=2010-01-01&to=2024-01-01", nil, "from"},
		{"POST", "/api/v1/analytics/funnel", map[string]any{"steps": steps(1)}, "steps"},
		{"POST", "/api/v1/analytics/funnel", map[string]any{"steps": steps(11)}, "steps"},
		{"POST", "/api/v1/analytics/funnel", map[string]any{"steps": []string{"a", ""}}, "steps[1]"},
		{"POST", "/api/v1/analytics/funnel", map[string]any{"steps": steps(2), "within_days": 0}, "within_days"},
		{"POST", "/api/v1/analytics/funnel", map[string]any{"steps": steps(2), "from": "2024-03-08", "to": "2024-03-01"}, "to"},
		{"POST", "/api/v1/analytics/funnel", map[string]any{"steps": steps(2), "split": "phone"}, "split"},
		{"POST", "/api/v1/analytics/funnel", map[string]any{"steps": steps(2), "segment_id": 7}, "segment_id"},
	} {
		r := e.call(tc.method, tc.path, e.opKey, tc.body)
		if r.Code != http.StatusUnprocessableEntity || r.field(t) != tc.field {
			t.Errorf("%s %s %v: %d %s, want 422 on %s", tc.method, tc.path, tc.body, r.Code, r.Body, tc.field)
		}
	}
	if r := e.call("GET", "/api/v1/analytics/metrics", "", nil); r.Code != http.StatusUnauthorized {
		t.Errorf("anonymous: %d", r.Code)
	}
}

// ?format=xlsx answers the same table as CSV, as a workbook whose figures are numbers.
func TestAPIAnalyticsExcel(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := analyticsEnv(t, st)
		r := e.call("GET", "/api/v1/metrics?from=2024-03-01&to=2024-03-08&format=xlsx", e.opKey, nil)
		if r.Code != http.StatusOK || !strings.Contains(r.Header.Get("Content-Disposition"), ".xlsx") {
			t.Fatalf("xlsx: %d %v", r.Code, r.Header)
		}
		f, err := excelize.OpenReader(bytes.NewReader(r.Body))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rows, err := f.GetRows("Sheet1")
		if err != nil || len(rows) < 2 || rows[0][0] != "group" {
			t.Fatalf("rows %v, %v", rows, err)
		}
		found := false
		for i, row := range rows {
			if len(row) > 3 && row[0] == "total" && row[1] == "gmv_minor" {
				found = row[3] == "10500"
				cell, _ := excelize.CoordinatesToCellName(4, i+1)
				if typ, _ := f.GetCellType("Sheet1", cell); typ == excelize.CellTypeSharedString || typ == excelize.CellTypeInlineString {
					t.Errorf("GMV written as text (%v)", typ)
				}
			}
		}
		if !found {
			t.Errorf("no total GMV of 10500 in %v", rows)
		}
	})
}
