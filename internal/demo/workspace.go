package demo

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/siyu-scrm/siyu/internal/analytics"
	"github.com/siyu-scrm/siyu/internal/goal"
	"github.com/siyu-scrm/siyu/internal/model"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/sop"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// WorkspaceSummary counts what Workspace set up.
type WorkspaceSummary struct {
	TagGroups   int `json:"tag_groups"`
	Tags        int `json:"tags"`
	Assignments int `json:"assignments"`
	TagRules    int `json:"tag_rules"`
	Segments    int `json:"segments"`
	SOPs        int `json:"sops"`
	Goals       int `json:"goals"`
	RFMBuyers   int `json:"rfm_buyers"`
}

// demoCause marks the tags the demo hands out, in the tag history.
var demoCause = tag.Cause{Reason: tag.ReasonImport, Ref: "demo"}

// Workspace sets up what an operator would have built on top of the generated data: tag groups
// and tags given to the customers they fit (跟进状态 from how far a customer got, 来源 from the
// source, 属性 from attributes and behaviour), tag rules, saved segments an operator reaches for
// first, two SOPs (paused, for a dry run), and a first RFM and lifecycle run, so every console
// page opens on something real. It runs on a database Generate filled and is not idempotent:
// run it once, right after Generate (siyu demo does).
func Workspace(ctx context.Context, st *store.Store, sops *sop.Service, now time.Time) (*WorkspaceSummary, error) {
	w := &workspace{ctx: ctx, st: st, now: now, sum: &WorkspaceSummary{}, tags: map[string]int64{}}
	steps := []struct {
		name string
		fn   func() error
	}{
		{"tags", w.tagGroups},
		{"tag assignments", w.assign},
		{"tag rules", w.rules},
		{"segments", w.segments},
		{"sops", func() error { return w.sops(sops) }},
		{"goals", w.goals},
		{"models", w.models},
	}
	for _, s := range steps {
		t := time.Now()
		if err := s.fn(); err != nil {
			return w.sum, fmt.Errorf("demo workspace: %s: %w", s.name, err)
		}
		slog.Info("demo: workspace", "step", s.name, "elapsed", time.Since(t).Round(time.Millisecond))
	}
	return w.sum, nil
}

type workspace struct {
	ctx    context.Context
	st     *store.Store
	now    time.Time
	sum    *WorkspaceSummary
	tags   map[string]int64 // "group/tag" → id
	segIDs map[string]int64
}

type demoGroup struct {
	name      string
	kind      tag.Kind
	exclusive bool
	tags      []string
	colors    []string
}

var demoGroups = []demoGroup{
	{"跟进状态", tag.FollowUp, true, []string{"待跟进", "已加微", "已沟通", "已成交", "已流失"}, []string{"#9aa5b1", "#3b82f6", "#8b5cf6", "#10b981", "#ef4444"}},
	{"来源", tag.Source, true, []string{"渠道活码", "公众号", "小红书", "抖音", "门店", "电商平台"}, nil},
	{"属性", tag.Attribute, false, []string{"宝妈", "学生党", "敏感肌", "油皮", "高消费", "价格敏感"}, nil},
	{"营销活动", tag.Campaign, false, []string{"38女王节", "618大促", "双11", "双12", "新品试用"}, nil},
	{"互动", tag.Custom, false, []string{"已填问卷", "打卡达人", "直播常客"}, nil},
}

func (w *workspace) tagGroups() error {
	for _, dg := range demoGroups {
		g := &tag.Group{Name: dg.name, Kind: dg.kind, Exclusive: dg.exclusive}
		if err := w.st.CreateTagGroup(w.ctx, g); err != nil {
			return err
		}
		w.sum.TagGroups++
		for i, name := range dg.tags {
			t := &tag.Tag{GroupID: g.ID, Name: name}
			if i < len(dg.colors) {
				t.Color = dg.colors[i]
			}
			if err := w.st.CreateTag(w.ctx, t); err != nil {
				return err
			}
			w.tags[dg.name+"/"+name] = t.ID
			w.sum.Tags++
		}
	}
	return nil
}

// assignments: which customers get which tag, as a segment tree (evaluated as SQL, so the same
// on both engines) or plain SQL over the generated rows. Later entries of a single-choice group
// replace earlier ones, so 跟进状态 goes from the widest to the furthest stage.
var assignments = []struct{ tag, tree, query string }{
	{tag: "跟进状态/待跟进", query: `SELECT id FROM customers`},
	{tag: "跟进状态/已加微", query: `SELECT DISTINCT customer_id FROM identities WHERE kind = 'wecom_external'`},
	{tag: "跟进状态/已沟通", query: `SELECT DISTINCT customer_id FROM events WHERE name = '咨询'`},
	{tag: "跟进状态/已成交", query: `SELECT DISTINCT customer_id FROM orders`},
	{tag: "跟进状态/已流失", tree: `{"op":"and","children":[{"field":"last_seen_at","cmp":"more_than_days_ago","value":120},{"order":{"metric":"count","cmp":"eq","value":0}}]}`},
	{tag: "来源/渠道活码", tree: `{"field":"source","cmp":"eq","value":"渠道活码"}`},
	{tag: "来源/公众号", tree: `{"field":"source","cmp":"eq","value":"公众号"}`},
	{tag: "来源/小红书", tree: `{"field":"source","cmp":"eq","value":"小红书"}`},
	{tag: "来源/抖音", tree: `{"field":"source","cmp":"eq","value":"抖音"}`},
	{tag: "来源/门店", tree: `{"field":"source","cmp":"eq","value":"门店"}`},
	{tag: "来源/电商平台", tree: `{"field":"source","cmp":"eq","value":"电商平台"}`},
	{tag: "属性/敏感肌", tree: `{"field":"attrs.skin_type","cmp":"eq","value":"敏感性"}`},
	{tag: "属性/油皮", tree: `{"field":"attrs.skin_type","cmp":"eq","value":"油性"}`},
	{tag: "属性/宝妈", tree: `{"op":"and","children":[{"field":"gender","cmp":"eq","value":"female"},{"field":"attrs.hobbies","cmp":"contains","value":"育儿"}]}`},
	{tag: "属性/学生党", tree: `{"field":"birthday","cmp":"after","value":"2002-01-01"}`},
	{tag: "属性/高消费", tree: `{"order":{"metric":"total","cmp":"gte","value":1000}}`},
	{tag: "属性/价格敏感", tree: `{"event":{"name":"领取优惠券","count":{"cmp":"gte","value":2}}}`},
	{tag: "营销活动/618大促", query: `SELECT DISTINCT customer_id FROM orders WHERE paid_at >= ? AND paid_at < ?`},
	{tag: "营销活动/双11", query: `SELECT DISTINCT customer_id FROM orders WHERE paid_at >= ? AND paid_at < ?`},
	{tag: "互动/已填问卷", tree: `{"event":{"name":"提交问卷","count":{"cmp":"gte","value":1}}}`},
	{tag: "互动/直播常客", tree: `{"event":{"name":"观看直播","count":{"cmp":"gte","value":3}}}`},
}

func (w *workspace) assign() error {
	schema, err := w.st.SegmentSchema(w.ctx)
	if err != nil {
		return err
	}
	for _, a := range assignments {
		var ids []int64
		if a.tree != "" {
			tree := mustTree(a.tree)
			if err := segment.Validate(tree, schema, 0); err != nil {
				return fmt.Errorf("%s: %w", a.tag, err)
			}
			if ids, err = w.st.SegmentMembersSQL(w.ctx, tree, schema, w.now, segment.Shanghai); err != nil {
				return fmt.Errorf("%s: %w", a.tag, err)
			}
		} else if ids, err = w.query(a.tag, a.query); err != nil {
			return err
		}
		tagID := w.tags[a.tag]
		for len(ids) > 0 {
			n := min(len(ids), 20000)
			if _, err := w.st.AssignTags(w.ctx, ids[:n], []int64{tagID}, demoCause); err != nil {
				return fmt.Errorf("%s: %w", a.tag, err)
			}
			w.sum.Assignments += n
			ids = ids[n:]
		}
	}
	return nil
}

// query runs one assignment's SQL; the campaign tags take their window as arguments.
func (w *workspace) query(tagName, query string) ([]int64, error) {
	var args []any
	switch tagName {
	case "营销活动/618大促": // orders paid 1–18 June, the last one before now
		args = w.campaign(6, 1, 18)
	case "营销活动/双11": // orders paid 20 October – 11 November
		args = w.campaign(10, 20, 23)
	}
	rows, err := w.st.DB().QueryContext(w.ctx, w.st.Rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tagName, err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// campaign returns the instants [from, from+days) of the last campaign starting on month/day
// before now.
func (w *workspace) campaign(month time.Month, day, days int) []any {
	from := time.Date(w.now.Year(), month, day, 0, 0, 0, 0, segment.Shanghai)
	if from.After(w.now) {
		from = from.AddDate(-1, 0, 0)
	}
	return []any{from.UnixMilli(), from.AddDate(0, 0, days).UnixMilli()}
}

func (w *workspace) rules() error {
	schema, err := w.st.SegmentSchema(w.ctx)
	if err != nil {
		return err
	}
	rules := []*tag.Rule{
		{Name: "填写问卷 → 已填问卷", Enabled: true,
			Trigger: tag.Trigger{Kind: tag.OnEvent, Event: &tag.EventTrigger{Name: "提交问卷"}},
			Actions: tag.Actions{Add: []int64{w.tags["互动/已填问卷"]}}},
		{Name: "一周打卡 5 次 → 打卡达人", Enabled: true,
			Trigger: tag.Trigger{Kind: tag.OnEvent, Event: &tag.EventTrigger{Name: "打卡", AtLeast: 5, WithinDays: 7}},
			Actions: tag.Actions{Add: []int64{w.tags["互动/打卡达人"]}}},
		{Name: "成交 → 已成交", Enabled: true,
			Trigger: tag.Trigger{Kind: tag.OnEvent, Event: &tag.EventTrigger{Name: "Order Completed"}},
			Actions: tag.Actions{Add: []int64{w.tags["跟进状态/已成交"]}}},
		{Name: "半年消费满 1000 元 → 高消费", Enabled: true,
			Trigger: tag.Trigger{Kind: tag.OnCondition, Condition: mustTree(`{"order":{"metric":"total","window":{"last_days":180},"cmp":"gte","value":1000}}`)},
			Actions: tag.Actions{Add: []int64{w.tags["属性/高消费"]}}},
	}
	for _, r := range rules {
		if err := w.st.CreateTagRule(w.ctx, r, schema); err != nil {
			return fmt.Errorf("%s: %w", r.Name, err)
		}
		w.sum.TagRules++
	}
	return nil
}

func mustTree(src string) *segment.Node {
	n, err := segment.Parse([]byte(src))
	if err != nil {
		panic(fmt.Sprintf("demo tree %s: %v", src, err))
	}
	return n
}

func (w *workspace) segments() error {
	w.segIDs = map[string]int64{}
	list := []struct{ name, desc, tree string }{
		{"高价值复购客户", "近一年下单 2 次以上、实付满 500 元：重点维护，优先邀约新品与会员活动。",
			`{"op":"and","children":[{"order":{"metric":"count","window":{"last_days":365},"cmp":"gte","value":2}},{"order":{"metric":"total","window":{"last_days":365},"cmp":"gte","value":500}}]}`},
		{"30 天新客未购", "近 30 天加入、还没有下过单：新客首单 SOP 的对象。",
			`{"op":"and","children":[{"field":"created_at","cmp":"in_last_days","value":30},{"order":{"metric":"count","cmp":"eq","value":0}}]}`},
		{"沉睡客户", "买过但 90 天没有再买：唤醒的对象。",
			`{"op":"and","children":[{"order":{"metric":"count","cmp":"gte","value":1}},{"order":{"metric":"count","window":{"last_days":90},"cmp":"eq","value":0}}]}`},
		{"敏感肌女性", "敏感肌的女性客户：修护系列内容。",
			fmt.Sprintf(`{"op":"and","children":[{"field":"gender","cmp":"eq","value":"female"},{"tag":{"match":"any","ids":[%d]}}]}`, w.tags["属性/敏感肌"])},
		{"一线城市高收入", "一线城市、月收入 2 万以上：高端线的潜在买家。",
			`{"op":"and","children":[{"field":"attrs.city_tier","cmp":"eq","value":"一线"},{"field":"attrs.income","cmp":"gte","value":20000}]}`},
		{"近 7 天活跃未加微", "近 7 天来过、还没有加企微：引导添加的对象。",
			fmt.Sprintf(`{"op":"and","children":[{"field":"last_seen_at","cmp":"in_last_days","value":7},{"tag":{"match":"none","ids":[%d]}}]}`, w.tags["跟进状态/已加微"])},
	}
	schema, err := w.st.SegmentSchema(w.ctx)
	if err != nil {
		return err
	}
	for _, s := range list {
		tree := mustTree(s.tree)
		if err := segment.Validate(tree, schema, 0); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		g := &store.SavedSegment{Name: s.name, Description: s.desc, Tree: tree}
		if err := w.st.CreateSegment(w.ctx, g); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		w.segIDs[s.name] = g.ID
		w.sum.Segments++
	}
	return nil
}

func (w *workspace) sops(svc *sop.Service) error {
	if svc == nil {
		return nil
	}
	specs := []string{
		`{"name":"加企微欢迎","goal":"首单",
		  "trigger":{"kind":"event","event":{"name":"加企微","delay":"2h"}},
		  "steps":[
		    {"channel":"wecom_private","content":"{{or .Name \"亲\"}}您好，我是{{.Owner}}，您的专属护肤顾问～新人礼包已经放进您的账户，有肌肤问题随时问我。","executor":{"kind":"owner"}},
		    {"delay":"3d","at":"20:00","channel":"wecom_private","content":"{{or .Name \"亲\"}}，这几天用下来感觉怎么样？新人券还有 4 天到期，需要我帮您搭配一套吗？","executor":{"kind":"owner"}}
		  ],
		  "reentry":{"mode":"once"},"exit":{"buys":true,"opts_out":true},"on_cap":"defer"}`,
		fmt.Sprintf(`{"name":"沉睡客户唤醒","goal":"复购",
		  "audience":{"segment_id":%d},
		  "trigger":{"kind":"schedule","schedule":{"cron":"0 10 * * 1"}},
		  "steps":[{"channel":"wecom_private","content":"{{or .Name \"亲\"}}好久不见～您常用的那款这周会员价，需要我帮您留一份吗？","executor":{"kind":"owner"}}],
		  "reentry":{"mode":"once_per_days","days":30},"exit":{"buys":true,"opts_out":true},"on_cap":"drop"}`, w.segIDs["沉睡客户"]),
	}
	for _, src := range specs {
		sp, err := sop.ParseSpec([]byte(src))
		if err != nil {
			return err
		}
		if _, err := svc.Create(w.ctx, sp, 0); err != nil {
			return fmt.Errorf("%s: %w", sp.Name, err)
		}
		w.sum.SOPs++
	}
	return nil
}

// goals sets this month's objective: GMV 20% above last month's, a repurchase rate and new
// buyers, so the 数据 page and the weekly report show progress against something.
func (w *workspace) goals() error {
	today := segment.DayOf(w.now, segment.Shanghai).Date()
	first := time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, segment.Shanghai)
	var lastGMV int64
	err := w.st.DB().QueryRowContext(w.ctx, w.st.Rebind(`SELECT COALESCE(SUM(amount_minor - refunded_minor), 0) FROM orders WHERE paid_at >= ? AND paid_at < ?`),
		first.AddDate(0, -1, 0).UnixMilli(), first.UnixMilli()).Scan(&lastGMV)
	if err != nil {
		return err
	}
	o := &goal.Objective{Name: first.Format("2006年1月") + "私域增长", Description: "GMV 比上月增长 20%，同时把复购做起来。",
		From: first.Format("2006-01-02"), To: first.AddDate(0, 1, 0).Format("2006-01-02"), KeyResults: []goal.KeyResult{
			{Name: "GMV 比上月 +20%", Metric: analytics.MetricGMV, Target: float64(max(lastGMV, 100)) * 1.2},
			{Name: "复购率 ≥ 25%", Metric: analytics.MetricRepurchaseRate, Target: 0.25},
			{Name: "高价值复购客户复购率 ≥ 60%", Metric: analytics.MetricRepurchaseRate, Target: 0.6, SegmentID: w.segIDs["高价值复购客户"]},
		}}
	if err := w.st.CreateObjective(w.ctx, o); err != nil {
		return err
	}
	w.sum.Goals++
	return nil
}

func (w *workspace) models() error {
	now := w.now
	cfg, err := w.st.RFMConfig(w.ctx)
	if err != nil {
		return err
	}
	run, _, _, err := model.RunRFM(w.ctx, w.st, cfg, segment.DayOf(now, segment.Shanghai), segment.Shanghai, now)
	if err != nil {
		return err
	}
	w.sum.RFMBuyers = int(run.Buyers)
	lc, err := w.st.LifecycleConfig(w.ctx)
	if err != nil {
		return err
	}
	_, err = model.RunLifecycle(w.ctx, w.st, lc, now)
	return err
}
