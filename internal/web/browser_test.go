package web

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/siyu-scrm/siyu/internal/audience"
	"github.com/siyu-scrm/siyu/internal/demo"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// The browser tests drive Debian's Chromium (/usr/bin/chromium, or SIYU_CHROMIUM) over the
// DevTools protocol through the console's main journeys on a demo data set, and save a
// screenshot of every page to SIYU_ARTIFACTS (or the test's temporary directory). Without
// Chromium they skip, except under CI=true, where they fail.

// chromium finds the browser, or skips (fails under CI).
func chromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv("SIYU_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(path); err != nil {
		storetest.Unavailable(t, "Chromium at "+path+": "+err.Error())
	}
	return path
}

type nopProgress struct{}

func (nopProgress) Add(int64) {}

// browserEnv is a console over a real HTTP server with demo data, and a browser.
type browserEnv struct {
	t    *testing.T
	st   *store.Store
	url  string
	ctx  context.Context
	dir  string
	shot int
}

const browserPassword = "browser-test-密码"

func newBrowserEnv(t *testing.T) *browserEnv {
	t.Helper()
	bin := chromium(t)
	ctx := t.Context()
	st := storetest.Open(t, store.SQLite)
	if _, err := demo.Generate(ctx, st, demo.Options{Customers: 500, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateStaff(ctx, &staff.Staff{Login: "admin", Name: "管理员", Role: staff.Admin}, browserPassword); err != nil {
		t.Fatal(err)
	}
	g := &tag.Group{Name: "客户分层", Kind: tag.Attribute}
	if err := st.CreateTagGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"高潜力", "VIP", "<script>alert(1)</script>"} {
		if err := st.CreateTag(ctx, &tag.Tag{GroupID: g.ID, Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	engine := audience.New(st, audience.Options{Fallback: audience.SQLFallback{Store: st}, Log: slog.New(slog.DiscardHandler)})
	st.Subscribe(engine.Apply)
	if err := engine.Rebuild(ctx, nopProgress{}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer((&Server{Store: st, Audience: engine, Log: slog.New(slog.DiscardHandler)}).Handler())
	t.Cleanup(srv.Close)

	dir := os.Getenv("SIYU_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	}
	dir = filepath.Join(dir, "browser")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Headless in a container: no sandbox (it needs user namespaces a container seldom
	// grants), no GPU, no background traffic (the machine may have no internet), a fresh
	// profile per run so nothing leaks between runs.
	// Chromium's helper processes may still write to the profile for a moment after the
	// browser is gone, which makes t.TempDir's own clean-up fail the test: remove it ourselves,
	// after the browser is cancelled (clean-ups run last-in first-out), ignoring leftovers.
	profile, err := os.MkdirTemp("", "siyu-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(profile) })
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "zh-CN"),
		chromedp.Flag("accept-lang", "zh-CN,zh"),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1366, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelA)
	bctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(cancelB)
	if err := chromedp.Run(bctx); err != nil {
		storetest.Unavailable(t, "starting Chromium: "+err.Error())
	}
	return &browserEnv{t: t, st: st, url: srv.URL, ctx: bctx, dir: dir}
}

// run runs actions with a time limit, failing the test with what was being done.
func (b *browserEnv) run(what string, actions ...chromedp.Action) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		b.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("%s: %v", what, err)
	}
}

// screenshot saves the whole page as NN-name.png and logs its path.
func (b *browserEnv) screenshot(name string) {
	b.t.Helper()
	var png []byte
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	b.shot++
	path := filepath.Join(b.dir, fmt.Sprintf("%02d-%s.png", b.shot, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
}

// pick sets the value of the i-th element matching a selector and tells the page it changed,
// as a person choosing from a menu does.
func pick(sel string, i int, value string) chromedp.Action {
	return chromedp.Evaluate(fmt.Sprintf(`(() => { const e = document.querySelectorAll(%q)[%d]; e.value = %q; e.dispatchEvent(new Event("change", {bubbles: true})); })()`, sel, i, value), nil)
}

// liveCount waits until the builder's live count differs from prev and returns it.
func (b *browserEnv) liveCount(prev string) string {
	b.t.Helper()
	var got string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		b.run("read the live count", chromedp.Evaluate(`document.getElementById("live-count").getAttribute("data-count") || ""`, &got))
		if got != "" && got != prev {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.screenshot("live-count-stuck")
	b.t.Fatalf("the live count stayed %q", prev)
	return ""
}

func TestBrowserJourneys(t *testing.T) {
	b := newBrowserEnv(t)
	ctx := t.Context()

	// Sign in.
	b.run("open the sign-in page", chromedp.Navigate(b.url+"/login"), chromedp.WaitVisible(`input[name=login]`))
	b.screenshot("login")
	b.run("sign in",
		chromedp.SendKeys(`input[name=login]`, "admin"),
		chromedp.SendKeys(`input[name=password]`, browserPassword),
		chromedp.Submit(`input[name=password]`),
		chromedp.WaitVisible(`.sidebar a[href="/segments"]`),
	)
	b.screenshot("home")

	// Find a customer by name and tag them on the profile.
	c, err := b.st.Customer(ctx, 42)
	if err != nil {
		t.Fatal(err)
	}
	b.run("search customers",
		chromedp.Navigate(b.url+"/customers"),
		chromedp.WaitVisible(`input[name=q]`),
		chromedp.SendKeys(`input[name=q]`, c.Name),
		chromedp.Submit(`input[name=q]`),
		chromedp.WaitVisible(`a.person[href="/customers/42"]`),
	)
	b.screenshot("customers-search")
	var tagged string
	b.run("open the profile and tag", chromedp.Click(`a.person[href="/customers/42"]`), chromedp.WaitVisible(`#tags select[name=tag]`))
	b.screenshot("profile")
	groups, err := b.st.ListTagGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vip := groups[0].Tags[1]
	b.run("tag the customer",
		chromedp.SetValue(`#tags select[name=tag]`, strconv.FormatInt(vip.ID, 10)),
		chromedp.Click(`#tags form.add-tag button[type=submit]`),
		chromedp.WaitVisible(`.flash`),
		chromedp.Text(`#tags .tag-chips`, &tagged),
	)
	if !strings.Contains(tagged, "VIP") {
		t.Fatalf("after tagging, the profile's tags read %q", tagged)
	}
	b.run("open the tag history", chromedp.Click(`.tag-history summary`))
	b.screenshot("profile-tagged")
	if as, err := b.st.CustomerTags(ctx, 42); err != nil || len(as) != 1 || as[0].Tag.ID != vip.ID {
		t.Fatalf("customer 42's tags: %+v, %v", as, err)
	}

	// The tags pages.
	b.run("open the tags page", chromedp.Navigate(b.url+"/tags"), chromedp.WaitVisible(`.tag-group`))
	b.screenshot("tags")
	b.run("open the rule editor", chromedp.Navigate(b.url+"/tags/rules/new"), chromedp.WaitVisible(`#rule-form`))
	b.screenshot("tag-rule-new")

	// Build a segment with three conditions, watching the live count change after each.
	b.run("open the builder", chromedp.Navigate(b.url+"/segments/new"), chromedp.WaitVisible(`.bgroup [data-add=condition]`))
	b.screenshot("segment-new")
	b.run("add a gender condition",
		chromedp.Click(`.bgroup [data-add=condition]`),
		pick(".bcond select:nth-of-type(2)", 0, "gender"),
		chromedp.SendKeys(`document.querySelectorAll(".bcond")[0].querySelector("input")`, "female", chromedp.ByJSPath),
	)
	c1 := b.liveCount("")
	b.screenshot("segment-one-condition")
	b.run("add an order condition",
		chromedp.Click(`.bgroup > .bgroup-foot [data-add=condition]`),
		pick(".bkind", 1, "order"),
		chromedp.SendKeys(`document.querySelectorAll(".bcond")[1].querySelector("input")`, "300", chromedp.ByJSPath),
	)
	c2 := b.liveCount(c1)
	b.run("add an event condition",
		chromedp.Click(`.bgroup > .bgroup-foot [data-add=condition]`),
		pick(".bkind", 2, "event"),
		chromedp.SendKeys(`document.querySelectorAll(".bcond")[2].querySelector("input")`, "咨询", chromedp.ByJSPath),
	)
	c3 := b.liveCount(c2)
	t.Logf("live counts after each condition: %s, %s, %s", c1, c2, c3)
	b.screenshot("segment-three-conditions")
	b.run("save the segment",
		chromedp.SendKeys(`input[name=name]`, "女性高消费咨询客户"),
		chromedp.Click(`button[name=action][value=save]`),
		chromedp.WaitVisible(`#members`),
	)
	var loc string
	b.run("read the location", chromedp.Location(&loc))
	if !strings.Contains(loc, "/segments/") {
		t.Fatalf("after saving, the browser is at %s", loc)
	}
	var members int
	b.run("count members", chromedp.Evaluate(`document.querySelectorAll("#members tbody tr").length`, &members))
	if want, _ := strconv.Atoi(c3); members != min(want, segmentMemberLimit) {
		t.Errorf("the members list has %d rows, want %d", members, min(want, segmentMemberLimit))
	}
	b.screenshot("segment-saved-members")
	b.run("explain a member", chromedp.Click(`#members tbody tr:first-child a.button`), chromedp.WaitVisible(`.explain-tree`))
	b.screenshot("segment-explain")
	b.run("open the segment list", chromedp.Navigate(b.url+"/segments"), chromedp.WaitVisible(`table.segments`))
	b.screenshot("segments")
}
