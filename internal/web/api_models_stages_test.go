package web

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/model/recompute"
	"github.com/siyu-scrm/siyu/internal/scheduler"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

func TestStageModelsAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		now := time.Date(2026, 11, 2, 10, 0, 0, 0, segment.Shanghai)
		st.SetClock(func() time.Time { return now })
		e := newAPIEnv(t, st)
		day := 24 * time.Hour
		// Six customers, 1–3 the sales person's: 1 and 4 never bought, 2 and 5 bought once,
		// 3 and 6 twice; 6 also referred a friend; 2 and 4 consulted this week.
		var (
			cs []*customer.Customer
			os []*event.Order
			es []*event.Event
		)
		for i := int64(1); i <= 6; i++ {
			c := &customer.Customer{ID: i, CreatedAt: now.Add(-100 * day), LastSeenAt: now.Add(-90 * day)}
			if i <= 3 {
				c.OwnerID = e.sales.ID
			}
			cs = append(cs, c)
			for j := range (i - 1) % 3 {
				os = append(os, &event.Order{OrderID: fmt.Sprintf("o%d-%d", i, j), CustomerID: i, AmountMinor: 5000, Currency: "CNY", PaidAt: now.Add(-time.Duration(10+j) * day)})
			}
		}
		for _, x := range []struct {
			id   int64
			name string
		}{{2, "咨询"}, {4, "咨询"}, {6, "邀请好友"}} {
			es = append(es, &event.Event{MessageID: fmt.Sprintf("e%d", x.id), CustomerID: x.id, Type: "track", Name: x.name, Timestamp: now.Add(-2 * day), ReceivedAt: now.Add(-2 * day)})
		}
		if err := st.InTx(e.ctx, func(tx *store.Tx) error {
			if err := tx.BulkInsertCustomers(cs); err != nil {
				return err
			}
			if err := tx.BulkInsertOrders(os); err != nil {
				return err
			}
			_, err := tx.InsertEvents(es)
			return err
		}); err != nil {
			t.Fatal(err)
		}

		// Journey configuration: the default, bad bodies named, sales refused.
		cfg := e.must(http.StatusOK, "GET", "/api/v1/models/journey/config", e.opKey, nil)
		if stages := cfg["stages"].([]any); len(stages) != 4 || stages[0].(map[string]any)["name"] != "KOC客户" || cfg["fallback"] != "未归类" {
			t.Fatalf("default journey %v", cfg)
		}
		order := func(cmp string, n int) map[string]any {
			return map[string]any{"order": map[string]any{"metric": "count", "cmp": cmp, "value": n}}
		}
		stage := func(name string, tree any) map[string]any { return map[string]any{"name": name, "tree": tree} }
		many := make([]any, 21)
		for i := range many {
			many[i] = stage(fmt.Sprintf("S%d", i), order("gte", i))
		}
		for _, c := range []struct {
			body  any
			code  int
			field string
		}{
			{map[string]any{"stages": []any{stage("", order("gte", 1))}, "fallback": "其他"}, 422, "stages[0].name"},
			{map[string]any{"stages": []any{stage("复购", order("gte", 2)), stage("复购", order("gte", 1))}, "fallback": "其他"}, 422, "stages[1].name"},
			{map[string]any{"stages": []any{stage("A", order("gte", 2)), stage("B", order("gte", 1)),
				stage("C", map[string]any{"op": "and", "children": []any{map[string]any{"field": "nope", "cmp": "eq", "value": 1}}})}, "fallback": "其他"}, 422, "stages[2].tree.children[0].field"},
			{map[string]any{"stages": many, "fallback": "其他"}, 422, "stages"},
			{map[string]any{"stages": []any{stage("A", order("gte", 2))}, "fallback": "A"}, 422, "fallback"},
			{`{"stages": [`, 400, ""},
			{map[string]any{"stages": []any{}, "colour": "red"}, 400, ""},
		} {
			r := e.call("PUT", "/api/v1/models/journey/config", e.opKey, c.body)
			if r.Code != c.code || (c.field != "" && r.field(t) != c.field) {
				t.Errorf("%.100v: %d %s, want %d naming %s", c.body, r.Code, r.Body, c.code, c.field)
			}
		}
		if r := e.call("PUT", "/api/v1/models/journey/config", e.salesKey, cfg); r.Code != http.StatusForbidden {
			t.Fatalf("sales configured the journey: %d", r.Code)
		}
		if r := e.call("POST", "/api/v1/models/journey/run", e.salesKey, nil); r.Code != http.StatusForbidden {
			t.Fatalf("sales ran the journey: %d", r.Code)
		}
		if got := e.must(http.StatusOK, "GET", "/api/v1/models/journey/config", e.opKey, nil); len(got["stages"].([]any)) != 4 {
			t.Fatal("a refused configuration was saved")
		}
		// The default read back and saved as it is.
		e.must(http.StatusOK, "PUT", "/api/v1/models/journey/config", e.opKey, cfg)

		// Runs: everyone placed, then nothing over unchanged data.
		if r := e.must(http.StatusOK, "POST", "/api/v1/models/journey/run", e.opKey, nil); r["changed"].(float64) != 6 {
			t.Fatalf("first run %v", r)
		}
		if r := e.must(http.StatusOK, "POST", "/api/v1/models/journey/run", e.opKey, nil); r["changed"].(float64) != 0 {
			t.Fatalf("re-run %v", r)
		}
		counts := func(path, key string) map[string]float64 {
			t.Helper()
			out := map[string]float64{}
			for _, s := range e.must(http.StatusOK, "GET", path, key, nil)["stages"].([]any) {
				m := s.(map[string]any)
				out[m["stage"].(string)] = m["count"].(float64)
			}
			return out
		}
		if got := fmt.Sprint(counts("/api/v1/models/journey", e.opKey)); got != "map[KOC客户:1 多次复购客户:1 未付费客户:2 未归类:0 首单客户:2]" {
			t.Fatalf("operator's journey counts %s", got)
		}
		if got := fmt.Sprint(counts("/api/v1/models/journey", e.salesKey)); got != "map[KOC客户:0 多次复购客户:1 未付费客户:1 未归类:0 首单客户:1]" {
			t.Fatalf("sales' journey counts %s", got)
		}
		// Within a segment: the customers who consulted (2 and 4).
		seg := e.must(http.StatusCreated, "POST", "/api/v1/segments", e.opKey, map[string]any{"name": "咨询过", "tree": map[string]any{"event": map[string]any{"name": "咨询"}}})
		segPath := fmt.Sprintf("/api/v1/models/journey?segment_id=%v", seg["id"])
		if got := fmt.Sprint(counts(segPath, e.opKey)); got != "map[KOC客户:0 多次复购客户:0 未付费客户:1 未归类:0 首单客户:1]" {
			t.Fatalf("segment's journey counts %s", got)
		}
		if got := fmt.Sprint(counts(segPath, e.salesKey)); got != "map[KOC客户:0 多次复购客户:0 未付费客户:0 未归类:0 首单客户:1]" {
			t.Fatalf("sales' segment journey counts %s", got)
		}
		if r := e.call("GET", "/api/v1/models/journey?segment_id=999", e.opKey, nil); r.Code != http.StatusNotFound {
			t.Fatalf("missing segment: %d", r.Code)
		}
		if r := e.call("GET", "/api/v1/models/journey?segment_id=x", e.opKey, nil); r.Code != http.StatusUnprocessableEntity || r.field(t) != "segment_id" {
			t.Fatalf("bad segment id: %d %s", r.Code, r.Body)
		}

		// AIPL: configuration errors named, GET sent back as it is, the funnel.
		for _, c := range []struct {
			body  string
			field string
		}{
			{`{"window_days": 0, "interest_events": ["咨询"], "loyal_min_orders": 2}`, "window_days"},
			{`{"window_days": 30, "interest_events": ["咨询", ""], "loyal_min_orders": 2}`, "interest_events[1]"},
			{`{"window_days": 30, "interest_events": ["咨询"], "loyal_min_orders": 2, "rules": {"interest": {"op": "or", "children": [{"field": "nope", "cmp": "eq", "value": 1}]}}}`, "rules.interest.children[0].field"},
		} {
			if r := e.call("PUT", "/api/v1/models/aipl/config", e.opKey, c.body); r.Code != http.StatusUnprocessableEntity || r.field(t) != c.field {
				t.Errorf("%s: %d %s, want 422 naming %s", c.body, r.Code, r.Body, c.field)
			}
		}
		acfg := e.must(http.StatusOK, "GET", "/api/v1/models/aipl/config", e.opKey, nil)
		if eff := acfg["effective"].([]any); len(eff) != 4 || eff[1].(map[string]any)["stage"] != "兴趣" || eff[1].(map[string]any)["custom"] != false {
			t.Fatalf("aipl config %v", acfg)
		}
		acfg["window_days"] = 7
		if got := e.must(http.StatusOK, "PUT", "/api/v1/models/aipl/config", e.opKey, acfg); got["window_days"].(float64) != 7 {
			t.Fatalf("saved aipl config %v", got)
		}
		if r := e.call("GET", "/api/v1/models/aipl", e.opKey, nil); r.Code != http.StatusOK || r.JSON(t)["computed_at"] != nil {
			t.Fatalf("funnel before a run: %d %s", r.Code, r.Body)
		}
		e.must(http.StatusOK, "POST", "/api/v1/models/aipl/run", e.opKey, nil)
		funnel := e.must(http.StatusOK, "GET", "/api/v1/models/aipl", e.opKey, nil)
		var got []string
		for _, s := range funnel["funnel"].([]any) {
			m := s.(map[string]any)
			got = append(got, fmt.Sprintf("%s:%v/%v", m["stage"], m["count"], m["reached"]))
		}
		// 认知 1 (customer 1, seen), 兴趣 1 (4 consulted), 购买 2 (2, 5), 忠诚 2 (3 and 6 bought twice).
		if strings.Join(got, " ") != "认知:1/6 兴趣:1/5 购买:2/4 忠诚:2/2" || funnel["unreached"].(float64) != 0 || funnel["customers"].(float64) != 6 || funnel["computed_at"] == nil {
			t.Fatalf("funnel %v", funnel)
		}
		if c := funnel["funnel"].([]any)[3].(map[string]any)["conversion"].(float64); c != 0.5 {
			t.Fatalf("忠诚 conversion %v", c)
		}
		if f := e.must(http.StatusOK, "GET", "/api/v1/models/aipl", e.salesKey, nil); f["customers"].(float64) != 3 {
			t.Fatalf("sales' funnel %v", f)
		}

		// A week later customer 2 buys again: 首单客户 → 多次复购客户.
		now = now.Add(7 * day)
		if err := st.InTx(e.ctx, func(tx *store.Tx) error {
			_, err := tx.UpsertOrder(&event.Order{OrderID: "again", CustomerID: 2, AmountMinor: 100, Currency: "CNY", PaidAt: now.Add(-time.Hour)})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if r := e.must(http.StatusOK, "POST", "/api/v1/models/journey/run", e.opKey, nil); r["changed"].(float64) != 1 {
			t.Fatalf("run after a repurchase %v", r)
		}
		// From the day after the first run to today: one move; the matrix holds the stays too.
		from, to := now.Add(-6*day).Format(time.DateOnly), now.Format(time.DateOnly)
		flows := e.must(http.StatusOK, "GET", "/api/v1/models/journey/flows?from="+from+"&to="+to, e.opKey, nil)
		if m := fmt.Sprint(flows["moves"]); m != "[map[count:1 from:首单客户 to:多次复购客户]]" {
			t.Fatalf("moves %s", m)
		}
		if m := fmt.Sprint(flows["matrix"]); m != "[map[count:2 from:未付费客户 to:未付费客户] map[count:1 from:KOC客户 to:KOC客户] map[count:1 from:多次复购客户 to:多次复购客户] map[count:1 from:首单客户 to:多次复购客户] map[count:1 from:首单客户 to:首单客户]]" {
			t.Fatalf("matrix %s", m)
		}
		if f := e.must(http.StatusOK, "GET", "/api/v1/models/journey/flows?from="+from+"&to="+to, e.salesKey, nil); fmt.Sprint(f["moves"]) != "[map[count:1 from:首单客户 to:多次复购客户]]" {
			t.Fatalf("sales' moves (customer 2 is theirs): %v", f)
		}
		for _, c := range []struct {
			path  string
			code  int
			field string
		}{
			{"/api/v1/models/journey/flows?from=2026-13-01", 422, "from"},
			{"/api/v1/models/journey/flows?from=2026-11-05&to=2026-11-01", 422, "to"},
			{"/api/v1/models/journey/flows?since=2026-11-01", 400, "since"},
			{"/api/v1/models/nope/flows", 404, "model"},
			{"/api/v1/models/rfm/durations", 404, "model"},
		} {
			if r := e.call("GET", c.path, e.opKey, nil); r.Code != c.code || r.field(t) != c.field {
				t.Errorf("%s: %d %s, want %d naming %s", c.path, r.Code, r.Body, c.code, c.field)
			}
		}
		durs := e.must(http.StatusOK, "GET", "/api/v1/models/journey/durations", e.opKey, nil)
		var first map[string]any
		for _, s := range durs["stages"].([]any) {
			if m := s.(map[string]any); m["stage"] == "首单客户" {
				first = m
			}
		}
		if left := first["left"].(map[string]any); left["count"].(float64) != 1 || left["avg_days"].(float64) != 7 {
			t.Fatalf("首单客户 durations %v", first)
		}
		e.must(http.StatusOK, "GET", "/api/v1/models/lifecycle/durations", e.opKey, nil)

		// The customer's models: journey and AIPL with time in stage.
		cm := e.must(http.StatusOK, "GET", "/api/v1/customers/2/models", e.opKey, nil)
		j := cm["journey"].(map[string]any)
		if j["stage"] != "多次复购客户" || len(j["time_in_stages"].([]any)) != 2 || cm["aipl"].(map[string]any)["stage"] == nil {
			t.Fatalf("customer 2 models %v", cm)
		}
		if ts := j["time_in_stages"].([]any)[0].(map[string]any); ts["stage"] != "首单客户" || ts["days"].(float64) != 7 {
			t.Fatalf("time in 首单客户 %v", ts)
		}

		// The schedule.
		sch := e.must(http.StatusOK, "GET", "/api/v1/models/schedule", e.opKey, nil)
		if sch["cron"] != "0 3 * * *" || sch["timezone"] != "Asia/Shanghai" || sch["next_run"] == nil || len(sch["available_models"].([]any)) != 5 {
			t.Fatalf("schedule %v", sch)
		}
		for _, c := range []struct{ body, field string }{
			{`{"cron": "0 3 * *"}`, "cron"},
			{`{"cron": "* * * * *"}`, "cron"},
			{`{"timezone": "Mars/Olympus"}`, "timezone"},
			{`{"models": ["journey", "nope"]}`, "models[1]"},
		} {
			if r := e.call("PUT", "/api/v1/models/schedule", e.opKey, c.body); r.Code != http.StatusUnprocessableEntity || r.field(t) != c.field {
				t.Errorf("%s: %d %s, want 422 naming %s", c.body, r.Code, r.Body, c.field)
			}
		}
		sch["cron"], sch["models"] = "30 4 * * *", []string{"journey", "aipl"}
		got2 := e.must(http.StatusOK, "PUT", "/api/v1/models/schedule", e.opKey, sch)
		if got2["cron"] != "30 4 * * *" || fmt.Sprint(got2["effective_models"]) != "[journey aipl]" {
			t.Fatalf("saved schedule %v", got2)
		}
		if r := e.call("GET", "/api/v1/models/schedule", e.salesKey, nil); r.Code != http.StatusForbidden {
			t.Fatalf("sales read the schedule: %d", r.Code)
		}
		if r := e.call("POST", "/api/v1/models/schedule/run", e.opKey, `{"models": ["churn"]}`); r.Code != http.StatusUnprocessableEntity || r.field(t) != "models[0]" {
			t.Fatalf("unknown model: %d %s", r.Code, r.Body)
		}
		q := e.must(http.StatusAccepted, "POST", "/api/v1/models/schedule/run", e.opKey, `{"models": ["aipl"]}`)
		// Any instance's scheduler runs it.
		runner := scheduler.New(st, "worker", slog.New(slog.NewTextHandler(io.Discard, nil)))
		recompute.New(st, (&Server{Store: st}).ModelMembers, nil).Register(runner)
		if n, err := runner.RunDue(e.ctx, now); err != nil || n != 1 {
			t.Fatalf("queued recompute %v: ran %d (%v)", q, n, err)
		}
		last := e.must(http.StatusOK, "GET", "/api/v1/models/schedule", e.opKey, nil)["last_run"].(map[string]any)
		if last["trigger"] != "manual" || len(last["results"].([]any)) != 1 {
			t.Fatalf("last run %v", last)
		}
	})
}
