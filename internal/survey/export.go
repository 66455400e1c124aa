package survey

import (
	"strings"
	"time"
)

// The export of a survey's responses: one row per response, one column per question (its
// answer as DisplayText shows it), after the response's own columns.

// ExportHeader is the header row: response id, customer id, customer name, time, channel,
// then each question's title.
func (d *Definition) ExportHeader(lang string) []string {
	h := []string{"response_id", "customer_id", "customer_name", "answered_at", "via"}
	if lang == "zh-CN" {
		h = []string{"答卷编号", "客户编号", "客户姓名", "提交时间", "身份方式"}
	}
	for _, q := range d.Questions {
		h = append(h, q.Title)
	}
	return h
}

// ExportRow is one response's row; numbers stay numbers (for Excel), texts are defused
// against formula injection.
func (d *Definition) ExportRow(responseID, customerID int64, name string, at time.Time, via string, a Answers) []any {
	row := []any{responseID, customerID, CellSafe(name), at.Local().Format("2006-01-02 15:04:05"), via}
	for i := range d.Questions {
		q := &d.Questions[i]
		ans, ok := a[q.ID]
		switch {
		case !ok:
			row = append(row, "")
		case (q.Type == Number || q.Type == Rating) && ans.Number != nil:
			row = append(row, *ans.Number)
		default:
			row = append(row, CellSafe(q.DisplayText(ans)))
		}
	}
	return row
}

// CellSafe defuses spreadsheet formula injection: a text cell starting with = + - @ (or a tab
// or carriage return) gets a leading apostrophe, unless it is a plain number such as
// +8613800000000.
func CellSafe(v string) string {
	if v == "" || !strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return v
	}
	if strings.Trim(v, "+-0123456789 ().") == "" && v[0] != '=' && v[0] != '@' && len(v) > 1 {
		return v
	}
	return "'" + v
}
