package sop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/ingest"
	"github.com/siyu-scrm/siyu/internal/scheduler"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/sop"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

var (
	ctx   = context.Background()
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
	// t0 is Monday 2 March 2026, 10:00 in Shanghai.
	t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, segment.Shanghai)
)

// fixture is a store on a fake clock, a service, a scheduler and a sales staff member.
type fixture struct {
	t     *testing.T
	st    *store.Store
	svc   *sop.Service
	sch   *scheduler.Scheduler
	now   time.Time
	sales *staff.Staff
}

func newFixture(t *testing.T, st *store.Store) *fixture {
	f := &fixture{t: t, st: st, now: t0}
	st.SetClock(func() time.Time { return f.now })
	f.svc = sop.NewService(st, sop.SQLMembers(st), quiet)
	f.svc.AudienceTTL = 0
	f.sch = scheduler.New(st, "test", quiet)
	f.svc.Register(f.sch)
	f.sales = &staff.Staff{Login: "li", Name: "李销售", Role: staff.Sales}
	if err := st.CreateStaff(ctx, f.sales, "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	return f
}

// customer creates a customer owned by the sales staff member.
func (f *fixture) customer(userID, name string, optOut ...string) int64 {
	f.t.Helper()
	var id int64
	err := f.st.InTx(ctx, func(tx *store.Tx) error {
		var err error
		id, err = tx.CreateCustomer([]customer.Identity{{Kind: customer.UserID, Value: userID}}, f.now)
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	p := &customer.Patch{Name: &name, Owner: &f.sales.Login, OptOut: map[string]bool{}}
	for _, ch := range optOut {
		p.OptOut[ch] = true
	}
	if err := f.st.UpdateCustomer(ctx, id, p); err != nil {
		f.t.Fatal(err)
	}
	return id
}

func (f *fixture) create(spec string) int64 {
	f.t.Helper()
	sp, err := sop.ParseSpec([]byte(spec))
	if err != nil {
		f.t.Fatal(err)
	}
	r, err := f.svc.Create(ctx, sp, 0)
	if err != nil {
		f.t.Fatalf("create: %v", err)
	}
	if _, err := f.svc.SetStatus(ctx, r.ID, sop.Enabled); err != nil {
		f.t.Fatal(err)
	}
	return r.ID
}

// runUntil moves the clock to at and runs what is due.
func (f *fixture) runUntil(at time.Time) {
	f.t.Helper()
	f.now = at
	if _, err := f.sch.RunDue(ctx, at); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) touches(sopID int64) []*store.Touch {
	f.t.Helper()
	ts, err := f.st.Touches(ctx, store.TouchFilter{SOPID: sopID})
	if err != nil {
		f.t.Fatal(err)
	}
	return ts
}

func states(ts []*store.Touch) string {
	var b []string
	for _, t := range ts {
		s := fmt.Sprintf("%d:%s", t.Step, t.State)
		if t.Reason != "" {
			s += "(" + t.Reason + ")"
		}
		b = append(b, s)
	}
	return strings.Join(b, " ")
}

const welcome = `{"name": "加企微欢迎", "trigger": {"kind": "event", "event": {"name": "加企微", "where": [{"prop": "source", "cmp": "eq", "value": "活码"}], "delay": "2h"}},
	"steps": [
		{"channel": "wecom_private", "content": "{{or .Name \"朋友\"}}您好，我是{{.Owner}}", "executor": {"kind": "owner"}},
		{"delay": "1d", "at": "10:00", "channel": "wecom_private", "content": "第二天回访", "executor": {"kind": "owner"}}]}`

func TestTrackThroughIngestionPlansOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		id := f.create(welcome)
		cust := f.customer("u1", "张三")
		_, key, err := st.CreateKey(ctx, staff.WriteKey, "test", "", 0)
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(ingest.NewHandler(st, ingest.Options{Log: quiet, AfterStore: f.svc.AfterStore(quiet)}))
		defer srv.Close()
		post := func(body string) {
			req, _ := http.NewRequest("POST", srv.URL+"/v1/track", strings.NewReader(body))
			req.SetBasicAuth(key, "")
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("post: %v %v", resp, err)
			}
			resp.Body.Close()
		}
		ts := t0.UTC().Format(time.RFC3339)
		post(`{"userId":"u1","event":"加企微","properties":{"source":"活码"},"messageId":"m1","timestamp":"` + ts + `"}`)
		post(`{"userId":"u1","event":"加企微","properties":{"source":"活码"},"messageId":"m1","timestamp":"` + ts + `"}`) // a retry
		post(`{"userId":"u1","event":"加企微","properties":{"source":"广告"},"messageId":"m2","timestamp":"` + ts + `"}`) // no match
		got := f.touches(id)
		if len(got) != 2 || got[0].CustomerID != cust || !got[0].DueAt.Equal(t0.Add(2*time.Hour)) ||
			!got[1].DueAt.Equal(time.Date(2026, 3, 3, 10, 0, 0, 0, segment.Shanghai)) || got[0].ExecutorID != f.sales.ID {
			t.Fatalf("touches: %s %+v", states(got), got)
		}
		// A second event later plans nothing: the SOP is once per customer by default.
		post(`{"userId":"u1","event":"加企微","properties":{"source":"活码"},"messageId":"m3","timestamp":"` + ts + `"}`)
		if n := len(f.touches(id)); n != 2 {
			t.Fatalf("%d touches after re-entry of a once SOP", n)
		}

		f.runUntil(t0.Add(time.Hour))
		if s := states(f.touches(id)); s != "0:planned 1:planned" {
			t.Fatalf("before due: %s", s)
		}
		f.runUntil(t0.Add(2 * time.Hour))
		got = f.touches(id)
		if got[0].State != store.TouchDue || got[0].Content != "张三您好，我是李销售" {
			t.Fatalf("due: %s %q", states(got), got[0].Content)
		}
		inbox, err := st.Touches(ctx, store.TouchFilter{ExecutorID: f.sales.ID, Inbox: "today", Now: f.now, Location: segment.Shanghai})
		if err != nil || len(inbox) != 1 || inbox[0].ID != got[0].ID {
			t.Fatalf("today's inbox: %v %v", inbox, err)
		}
		if _, err := f.svc.FinishTask(ctx, got[0].ID, f.sales.ID+1, false, ""); err != sop.ErrNotYours {
			t.Fatalf("another staff member finished the task: %v", err)
		}
		if tk, err := f.svc.FinishTask(ctx, got[0].ID, f.sales.ID, false, "已加好友"); err != nil || tk.State != store.TouchDone || tk.Note != "已加好友" {
			t.Fatalf("done: %+v %v", tk, err)
		}
		// The second step's task expires when nobody does it.
		f.runUntil(time.Date(2026, 3, 3, 10, 0, 0, 0, segment.Shanghai))
		f.runUntil(time.Date(2026, 3, 6, 10, 0, 0, 0, segment.Shanghai))
		if s := states(f.touches(id)); s != "0:done 1:expired(not done in time)" {
			t.Fatalf("after expiry: %s", s)
		}
	})
}

func manualSpec(onCap string, steps ...string) string {
	return `{"name": "手动", "trigger": {"kind": "manual"}, "reentry": {"mode": "every"}, "on_cap": "` + onCap + `",
		"exit": {"buys": true}, "steps": [` + strings.Join(steps, ",") + `]}`
}

func step(delay, channel, executor string) string {
	return `{"delay": "` + delay + `", "channel": "` + channel + `", "content": "hi {{.Name}}", "executor": {"kind": "` + executor + `"}}`
}

func TestQuietHoursCapsAndOptOuts(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		pol := sop.DefaultPolicy()
		pol.DailyCap = 1
		if err := f.svc.SetPolicy(ctx, pol); err != nil {
			t.Fatal(err)
		}
		deferring := f.create(manualSpec("defer", step("12h", "wecom_private", "owner"), step("1h", "wecom_private", "owner"), step("0", "sms", "auto")))
		dropping := f.create(manualSpec("drop", step("0", "wecom_private", "owner")))
		a := f.customer("a", "A")
		b := f.customer("b", "B", "sms")
		if _, err := f.svc.Start(ctx, deferring, []int64{a, b}, "r1"); err != nil {
			t.Fatal(err)
		}
		// Started at 10:00: 22:00 is quiet, so the first step moves to 08:00 the next day; the
		// second (09:00) is over the cap of 1 private message a day and moves a day on.
		ts, _ := st.Touches(ctx, store.TouchFilter{SOPID: deferring, CustomerID: a})
		want := []time.Time{
			time.Date(2026, 3, 3, 8, 0, 0, 0, segment.Shanghai),
			time.Date(2026, 3, 4, 9, 0, 0, 0, segment.Shanghai),
			time.Date(2026, 3, 3, 9, 0, 0, 0, segment.Shanghai),
		}
		for i, tc := range ts {
			if !tc.DueAt.Equal(want[tc.Step]) || tc.State != store.TouchPlanned {
				t.Errorf("touch %d: %s due %v, want %v", i, tc.State, tc.DueAt.In(segment.Shanghai), want[tc.Step])
			}
		}
		// B opted out of SMS: that step is skipped at once, with the reason.
		ts, _ = st.Touches(ctx, store.TouchFilter{SOPID: deferring, CustomerID: b})
		if s := states(ts); s != "0:planned 2:skipped(opted_out) 1:planned" {
			t.Fatalf("opted out: %s", s)
		}
		// The dropping SOP finds A's day full (08:00 on the 3rd is taken): dropped as capped.
		f.now = time.Date(2026, 3, 3, 7, 0, 0, 0, segment.Shanghai)
		if _, err := f.svc.Start(ctx, dropping, []int64{a}, "r1"); err != nil {
			t.Fatal(err)
		}
		if s := states(f.touches(dropping)); s != "0:skipped(capped)" {
			t.Fatalf("capped: %s", s)
		}
	})
}

func TestExitOnPurchaseCancelsRemainingSteps(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		id := f.create(manualSpec("defer", step("0", "wecom_private", "owner"), step("1d", "wecom_private", "owner"), step("1d", "wecom_private", "owner")))
		c := f.customer("a", "A")
		if _, err := f.svc.Start(ctx, id, []int64{c}, ""); err != nil {
			t.Fatal(err)
		}
		f.runUntil(t0)
		err := st.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.UpsertOrder(&event.Order{OrderID: "o1", CustomerID: c, Status: event.Paid, AmountMinor: 9900, Currency: "CNY", PaidAt: t0.Add(time.Hour), Source: "api"})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		f.runUntil(t0.Add(24 * time.Hour))
		if s := states(f.touches(id)); s != "0:due 1:skipped(exit: bought) 2:skipped(exit: bought)" {
			t.Fatalf("after purchase: %s", s)
		}
	})
}

func TestEditingKeepsPlannedTouchesOnTheirVersion(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		id := f.create(manualSpec("defer", step("1h", "wecom_private", "owner")))
		c := f.customer("a", "A")
		if _, err := f.svc.Start(ctx, id, []int64{c}, "first"); err != nil {
			t.Fatal(err)
		}
		sp, _ := sop.ParseSpec([]byte(strings.Replace(manualSpec("defer", step("1h", "wecom_private", "owner")), "hi {{.Name}}", "v2 {{.Name}}", 1)))
		r, err := f.svc.Update(ctx, id, sp, 0)
		if err != nil || r.Version != 2 {
			t.Fatalf("update: %v %v", r, err)
		}
		if _, err := f.svc.Start(ctx, id, []int64{c}, "second"); err != nil {
			t.Fatal(err)
		}
		f.runUntil(t0.Add(time.Hour))
		ts := f.touches(id)
		if len(ts) != 2 || ts[0].Version != 1 || ts[0].Content != "hi A" || ts[1].Version != 2 || ts[1].Content != "v2 A" {
			t.Fatalf("versions: %+v", ts)
		}
		vs, err := st.SOPVersions(ctx, id)
		if err != nil || len(vs) != 2 {
			t.Fatalf("versions: %v %v", vs, err)
		}
	})
}

// countingAdapter records sends by key.
type countingAdapter struct {
	mu   sync.Mutex
	sent map[string]int
	fail int // fail the first fail sends
}

func (a *countingAdapter) Send(_ context.Context, m sop.Message) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail > 0 {
		a.fail--
		return fmt.Errorf("gateway timeout")
	}
	a.sent[m.Key]++
	return nil
}

func TestRacingSchedulersSendEachTouchOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		ad := &countingAdapter{sent: map[string]int{}}
		f.svc.SetAdapter("webhook", ad)
		id := f.create(manualSpec("defer", step("0", "webhook", "auto")))
		var cs []int64
		for i := range 40 {
			cs = append(cs, f.customer(fmt.Sprint("c", i), "C"))
		}
		if n, err := f.svc.Start(ctx, id, cs, ""); err != nil || n != 40 {
			t.Fatalf("planned %d, %v", n, err)
		}
		var wg sync.WaitGroup
		for i := range 2 {
			sch := scheduler.New(st, fmt.Sprint("instance", i), quiet)
			sch.Batch = 3
			f.svc.Register(sch)
			wg.Add(1)
			go func() { defer wg.Done(); sch.RunDue(ctx, t0) }()
		}
		wg.Wait()
		if len(ad.sent) != 40 {
			t.Fatalf("sent %d keys", len(ad.sent))
		}
		for k, n := range ad.sent {
			if n != 1 {
				t.Fatalf("%s sent %d times", k, n)
			}
		}
		for _, tc := range f.touches(id) {
			if tc.State != store.TouchSent {
				t.Fatalf("touch %d: %s", tc.ID, tc.State)
			}
		}
	})
}

func TestFailedSendIsRetriedThenFails(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		ad := &countingAdapter{sent: map[string]int{}, fail: 1}
		f.svc.SetAdapter("webhook", ad)
		f.sch.Backoff = func(int) time.Duration { return time.Minute }
		id := f.create(manualSpec("defer", step("0", "webhook", "auto"), step("0", "email", "auto")))
		c := f.customer("a", "A")
		f.svc.Start(ctx, id, []int64{c}, "")
		f.runUntil(t0)
		if s := states(f.touches(id)); s != "0:sending 1:sending" {
			t.Fatalf("after a failed send: %s", s)
		}
		// The webhook answers on the retry; email has no adapter and fails for good after
		// its attempts.
		for i := 1; i <= store.DefaultMaxAttempts; i++ {
			f.runUntil(t0.Add(time.Duration(i) * time.Minute))
		}
		ts := f.touches(id)
		if s := states(ts); s != "0:sent 1:failed(no adapter for channel email)" || ad.sent[ts[0].Key] != 1 {
			t.Fatalf("after retries: %s %v", s, ad.sent)
		}
	})
}

func TestTemplateFailureFailsOneTouch(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		if err := st.DefineAttr(ctx, customer.AttrDef{Key: "level", Type: customer.AttrString}); err != nil {
			t.Fatal(err)
		}
		spec := strings.Replace(manualSpec("defer", step("0", "wecom_private", "owner")), "hi {{.Name}}", "您的等级 {{.Attrs.level}}", 1)
		id := f.create(spec)
		a, b := f.customer("a", "A"), f.customer("b", "B")
		if err := st.UpdateCustomer(ctx, a, &customer.Patch{Attrs: map[string]any{"level": "金卡"}}); err != nil {
			t.Fatal(err)
		}
		f.svc.Start(ctx, id, []int64{a, b}, "")
		f.runUntil(t0)
		ts := f.touches(id)
		if ts[0].State != store.TouchDue || ts[0].Content != "您的等级 金卡" || ts[1].State != store.TouchFailed || !strings.Contains(ts[1].Reason, "no fallback") {
			t.Fatalf("render: %s %q", states(ts), ts[0].Content)
		}
		pv, err := f.svc.Preview(ctx, id, b)
		if err != nil || pv[0].Error == "" {
			t.Fatalf("preview: %+v %v", pv, err)
		}
	})
}

func TestValidationNamesTheField(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		cases := []struct{ spec, field string }{
			{`{"name": "x", "trigger": {"kind": "schedule", "schedule": {"cron": "0 9 30 2 *"}}, "audience": {"tree": {"field": "name", "cmp": "eq", "value": "A"}}, "steps": [` + step("0", "sms", "auto") + `]}`, "trigger.schedule.cron"},
			{`{"name": "x", "trigger": {"kind": "manual"}, "steps": [` + step("-1h", "sms", "auto") + `]}`, "steps[0].delay"},
			{`{"name": "x", "trigger": {"kind": "manual"}, "steps": [{"channel": "sms", "content": "hi"}]}`, "steps[0].executor"},
			{`{"name": "x", "trigger": {"kind": "manual"}, "steps": [{"channel": "sms", "content": "hi {{.Nmae}}", "executor": {"kind": "auto"}}]}`, "steps[0].content"},
			{`{"name": "x", "trigger": {"kind": "manual"}, "steps": [{"channel": "sms", "content": "{{.Attrs.nope}}", "executor": {"kind": "auto"}}]}`, "steps[0].content"},
			{`{"name": "x", "trigger": {"kind": "manual"}, "steps": [` + step("0", "wecom_private", "auto") + `]}`, "steps[0].executor"},
			{`{"name": "x", "trigger": {"kind": "manual"}, "steps": [{"channel": "sms", "content": "hi", "executor": {"kind": "staff", "staff_id": 999}}]}`, "steps[0].executor.staff_id"},
			{`{"name": "", "trigger": {"kind": "manual"}, "steps": [` + step("0", "sms", "auto") + `]}`, "name"},
			{`{"name": "x", "trigger": {"kind": "event"}, "steps": [` + step("0", "sms", "auto") + `]}`, "trigger.event"},
		}
		for _, c := range cases {
			sp, err := sop.ParseSpec([]byte(c.spec))
			if err == nil {
				_, err = f.svc.Create(ctx, sp, 0)
			}
			fe, ok := err.(*customer.FieldError)
			if !ok || fe.Field != c.field {
				t.Errorf("%s: got %v, want field %s", c.spec, err, c.field)
			}
		}
	})
}

func TestDryRunWritesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		f := newFixture(t, st)
		spec := `{"name": "每周一", "audience": {"tree": {"field": "name", "cmp": "eq", "value": "A"}}, "reentry": {"mode": "every"},
			"trigger": {"kind": "schedule", "schedule": {"cron": "0 9 * * 1"}}, "steps": [` + step("0", "wecom_private", "owner") + `]}`
		sp, _ := sop.ParseSpec([]byte(spec))
		r, err := f.svc.Create(ctx, sp, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.customer("a", "A")
		f.customer("b", "B")
		dr, err := f.svc.DryRun(ctx, r.ID, 14)
		if err != nil {
			t.Fatal(err)
		}
		if dr.Planned != 2 || dr.PerDay["2026-03-09"] != 1 || dr.PerDay["2026-03-16"] != 1 || dr.PerStaff[f.sales.ID] != 2 {
			t.Fatalf("dry run: %+v", dr)
		}
		if n := len(f.touches(r.ID)); n != 0 {
			t.Fatalf("dry run wrote %d touches", n)
		}
		// Enabled, the schedule fires on Monday 9:00 and plans for the audience.
		f.svc.SetStatus(ctx, r.ID, sop.Enabled)
		f.runUntil(time.Date(2026, 3, 9, 9, 0, 0, 0, segment.Shanghai))
		if s := states(f.touches(r.ID)); s != "0:due" {
			t.Fatalf("after the first firing: %s", s)
		}
		j, err := st.JobByKey(ctx, fmt.Sprintf("sop:%d/v:1/fire:%d", r.ID, time.Date(2026, 3, 16, 9, 0, 0, 0, segment.Shanghai).UnixMilli()))
		if err != nil || j.State != store.JobPending {
			t.Fatalf("next firing: %+v %v", j, err)
		}
	})
}

func TestWebhookAdapterSigns(t *testing.T) {
	var got struct {
		sig, ts, key string
		body         []byte
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.sig, got.ts, got.key = r.Header.Get("X-Siyu-Signature"), r.Header.Get("X-Siyu-Timestamp"), r.Header.Get("Idempotency-Key")
		got.body, _ = io.ReadAll(r.Body)
		if r.URL.Path == "/down" {
			http.Error(w, "down", http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	a := &sop.WebhookAdapter{URL: srv.URL, Secret: "s3cret", Now: func() time.Time { return t0 }}
	m := sop.Message{Key: "sop:1/step:0/c:2/o:once", Channel: "webhook", CustomerID: 2, Content: "你好"}
	if err := a.Send(ctx, m); err != nil {
		t.Fatal(err)
	}
	var back sop.Message
	if err := json.Unmarshal(got.body, &back); err != nil || !reflect.DeepEqual(back, m) {
		t.Fatalf("body %s: %v", got.body, err)
	}
	if got.key != m.Key || got.ts != fmt.Sprint(t0.Unix()) || got.sig != sop.Sign("s3cret", t0.Unix(), got.body) || !strings.HasPrefix(got.sig, "sha256=") {
		t.Fatalf("headers: %+v", got)
	}
	a.URL = srv.URL + "/down"
	if err := a.Send(ctx, m); err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("a 502 answer: %v", err)
	}
}

func TestDurationAndQuietHours(t *testing.T) {
	for in, want := range map[string]time.Duration{"2h": 2 * time.Hour, "3d": 72 * time.Hour, "1d12h": 36 * time.Hour, "90m": 90 * time.Minute, "0": 0} {
		d, err := sop.ParseDuration(in)
		if err != nil || time.Duration(d) != want {
			t.Errorf("%s: %v %v", in, d, err)
		}
		if back, _ := sop.ParseDuration(d.String()); back != d {
			t.Errorf("%s round trip: %s", in, d)
		}
	}
	p := sop.DefaultPolicy()
	for in, want := range map[string]string{"21:59": "03-02 21:59", "22:00": "03-03 08:00", "23:30": "03-03 08:00", "03:00": "03-02 08:00", "08:00": "03-02 08:00"} {
		h, m := 0, 0
		fmt.Sscanf(in, "%d:%d", &h, &m)
		got := p.OutOfQuiet(time.Date(2026, 3, 2, h, m, 0, 0, segment.Shanghai)).In(segment.Shanghai).Format("01-02 15:04")
		if got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}
