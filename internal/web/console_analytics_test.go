package web

import (
	"net/http"
	"testing"
	"time"

	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

// 数据 shows the period's metrics against the previous period, the cohort heat map and the
// goals, in the viewer's scope; the content role does not see it.
func TestConsoleAnalyticsPage(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		e := analyticsEnv(t, st) // c1 (sales) ¥10 + ¥30, c2 (operator) ¥50, c3 (sales) ¥20 − ¥5: ¥105 in early March 2024
		st.SetClock(func() time.Time { return time.Date(2024, 3, 20, 12, 0, 0, 0, segment.Shanghai) })
		e.must(http.StatusCreated, "POST", "/api/v1/goals", e.opKey, map[string]any{"name": "三月冲刺", "from": "2024-03-01", "to": "2024-04-01",
			"key_results": []map[string]any{{"name": "GMV ¥200", "metric": "gmv_minor", "target": 20000}}})
		c := newConsoleEnv(t, st)
		ops := consoleSignIn(t, st, "ana", staff.Operator)
		page := c.get(ops, "/analytics?from=2024-03-01&to=2024-03-08")
		page.want(t, http.StatusOK, "数据", "GMV", "¥105.00", "新增客户", "按获客月份的留存", "2024-03", "heat-", "三月冲刺", "GMV ¥200",
			"/api/v1/metrics?from=2024-03-01&amp;to=2024-03-08&amp;format=xlsx", `href="/reports/weekly"`)
		page.lacks(t, "style=")
		// The sales person's page counts their own customers: ¥40 + ¥15.
		sales := consoleSignIn(t, st, "sal", staff.Sales)
		if _, err := st.DB().ExecContext(e.ctx, st.Rebind(`UPDATE customers SET owner_id = ? WHERE owner_id = ?`), sales.Staff.ID, e.sales.ID); err != nil {
			t.Fatal(err)
		}
		c.get(sales, "/analytics?from=2024-03-01&to=2024-03-08").want(t, http.StatusOK, "¥55.00")
		// A bad date falls back to the last 30 days with a note; content editors are refused.
		c.get(ops, "/analytics?from=2024-13-01").want(t, http.StatusOK, "日期无效")
		c.get(consoleSignIn(t, st, "con", staff.Content), "/analytics").want(t, http.StatusForbidden)
	})
}
