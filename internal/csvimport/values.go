package csvimport

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/event"
)

// shanghai is China Standard Time. China has kept UTC+8 without daylight saving since 1991, so
// a fixed zone is exact for any order date and needs no tzdata on the host.
var shanghai = time.FixedZone("CST", 8*3600)

// cleanCell trims spaces (full-width ones and the tab some exports prepend to keep digits as
// text) and undoes Excel's other way of doing so, ="0123". A leading apostrophe is data: Excel
// does not write its display-only apostrophe into CSV.
func cleanCell(s string) string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, `="`) && strings.HasSuffix(s, `"`) && len(s) >= 3 {
		s = s[2 : len(s)-1]
	}
	return s
}

var sciRe = regexp.MustCompile(`^[0-9](\.[0-9]+)?[eE]\+?[0-9]+$`)

// normalizePhone keeps digits and a leading "+", drops the +86/0086 country code of mainland
// mobile numbers, and refuses what Excel does to long numbers (1.38E+10).
func normalizePhone(s string) (string, error) {
	if sciRe.MatchString(s) {
		return "", errors.New("looks like a number Excel turned into scientific notation (format the column as text before exporting)")
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '(' || r == ')' || r == '\u00a0':
		default:
			return "", fmt.Errorf("%q is not a phone number", s)
		}
	}
	p := b.String()
	for _, cc := range []string{"+86", "0086", "86"} {
		if rest, ok := strings.CutPrefix(p, cc); ok && len(rest) == 11 && rest[0] == '1' {
			p = rest
			break
		}
	}
	if n := len(strings.TrimPrefix(p, "+")); n < 5 || n > 20 {
		return "", fmt.Errorf("%q is not a phone number (5 to 20 digits)", s)
	}
	return p, nil
}

// normalizeEmail lower-cases an address and checks its shape loosely.
func normalizeEmail(s string) (string, error) {
	s = strings.ToLower(s)
	at := strings.LastIndexByte(s, '@')
	if at < 1 || at == len(s)-1 || strings.ContainsAny(s, " \t,;<>") || len(s) > 320 {
		return "", fmt.Errorf("%q is not an email address", s)
	}
	return s, nil
}

// normalizeCurrency maps the ways Chinese sheets name the yuan to CNY.
func normalizeCurrency(s string) (string, error) {
	switch strings.ToUpper(s) {
	case "", "CNY", "RMB", "人民币", "元", "¥", "￥":
		return "CNY", nil
	}
	c := strings.ToUpper(s)
	if len(c) != 3 || strings.Trim(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		return "", fmt.Errorf("%q is not a currency code (want CNY, USD, …)", s)
	}
	return c, nil
}

// parseMoney reads an amount in major units ("99", "¥1,299.00", "1299元", "RMB 12.5") into
// minor units of currency, exactly: no floating point on the way.
func parseMoney(s, currency string) (int64, error) {
	orig := s
	s = strings.Map(func(r rune) rune {
		switch r {
		case ',', '，', ' ', '¥', '￥', '$', '元', '\u00a0':
			return -1
		}
		return r
	}, s)
	for _, p := range []string{"RMB", "CNY", "rmb", "cny"} {
		s = strings.TrimPrefix(s, p)
	}
	if s == "" {
		return 0, fmt.Errorf("%q is not an amount", orig)
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("%q is negative", orig)
	}
	digits := 2
	if event.MinorUnits(1, currency) == 1 {
		digits = 0
	}
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" {
		whole = "0"
	}
	if len(frac) > digits {
		if strings.Trim(frac[digits:], "0") != "" {
			return 0, fmt.Errorf("%q has more than %d decimals", orig, digits)
		}
		frac = frac[:digits]
	}
	frac += strings.Repeat("0", digits-len(frac))
	for _, part := range []string{whole, frac} {
		if strings.Trim(part, "0123456789") != "" {
			return 0, fmt.Errorf("%q is not an amount", orig)
		}
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > math.MaxInt64/1000 {
		return 0, fmt.Errorf("%q is too large", orig)
	}
	v := w
	for range digits {
		v *= 10
	}
	if frac != "" {
		f, _ := strconv.ParseInt(frac, 10, 64)
		v += f
	}
	return v, nil
}

var timeLayouts = []string{
	"2006-01-02 15:04:05", "2006-01-02 15:04", "2006/01/02 15:04:05", "2006/01/02 15:04",
	"2006-1-2 15:04:05", "2006-1-2 15:04", "2006/1/2 15:04:05", "2006/1/2 15:04", "2006/1/2 3:04 PM",
	"2006-01-02T15:04:05", "2006-01-02T15:04", "2006.01.02 15:04:05", "2006.1.2 15:04",
	"2006年1月2日 15:04:05", "2006年1月2日 15:04", "2006年1月2日15:04:05", "2006年01月02日 15时04分05秒",
	"2006-01-02", "2006/01/02", "2006-1-2", "2006/1/2", "2006.01.02", "2006.1.2", "2006年1月2日", "20060102",
}

var zonedLayouts = []string{time.RFC3339Nano, time.RFC3339, "2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05 -0700", "2006-01-02 15:04:05.999999999 -0700 MST"}

// parseTime reads the date-times shops and Excel write. Without a zone it is China time;
// a bare 10- or 13-digit number is Unix seconds or milliseconds, and a small decimal number is
// an Excel serial date (days since 1899-12-30).
func parseTime(s string) (time.Time, error) {
	for _, l := range zonedLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, s, shanghai); err == nil {
			return t, nil
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		switch len(s) {
		case 10:
			return time.Unix(n, 0), nil
		case 13:
			return time.UnixMilli(n), nil
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f > 20000 && f < 80000 {
		base := time.Date(1899, 12, 30, 0, 0, 0, 0, shanghai)
		return base.Add(time.Duration(f * 24 * float64(time.Hour))).Round(time.Second), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a date-time (e.g. 2025-06-18 20:15:00)", s)
}

// orderStatus classifies a status cell. ok is false for orders that were never paid (pending,
// cancelled, closed): they are not purchases and are skipped.
func orderStatus(s string) (status string, ok bool, err error) {
	switch strings.ToLower(s) {
	case "", "paid", "已支付", "已付款", "已完成", "交易成功", "交易完成", "已发货", "待发货", "已收货", "已签收", "completed", "success", "shipped", "delivered", "支付成功", "待收货":
		return event.Paid, true, nil
	case "refunded", "已退款", "退款成功", "全额退款", "退款完成":
		return event.Refunded, true, nil
	case "partially_refunded", "部分退款":
		return event.PartiallyRefunded, true, nil
	case "pending", "unpaid", "cancelled", "canceled", "closed", "待付款", "待支付", "未支付", "未付款", "已取消", "交易关闭", "已关闭", "订单关闭":
		return "", false, nil
	}
	return "", false, fmt.Errorf("unknown order status %q (want 已支付/已完成, 已退款, 部分退款, or 待付款/已取消 to skip)", s)
}
