package web

import (
	"encoding/json"
	"fmt"
	"html/template"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/locale"
	"github.com/siyu-scrm/siyu/internal/progress"
)

// templateFuncs are the helpers every console template can call; "t" and the others that speak
// are bound to one language.
func templateFuncs(lang string) template.FuncMap {
	return template.FuncMap{
		// t looks a message up: {{t "nav.customers"}}, {{t "customers.count" .N}}.
		"t": func(key string, args ...any) string { return locale.T(lang, key, args...) },
		// tp looks up a key built from a prefix and a value: {{tp "role." .Role}}.
		"tp":       func(prefix string, v any) string { return locale.T(lang, prefix+fmt.Sprint(v)) },
		"ago":      func(t time.Time) string { return ago(lang, t, time.Now()) },
		"attr":     func(v any) string { return formatAttr(lang, v) },
		"asset":    assetURL,
		"datetime": formatDateTime,
		"date":     formatDate,
		"money":    formatMoney,
		"num":      formatInt,
		"props":    formatProps,
		"icon":     icon,
		"initial":  initial,
	}
}

func formatDateTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.Local().Format("2006-01-02 15:04")
}

func formatDate(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.Local().Format("2006-01-02")
}

// ago says how long ago t was ("3 天前"), falling back to the date after a month.
func ago(lang string, t, now time.Time) string {
	if t.IsZero() {
		return locale.T(lang, "time.never")
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return locale.T(lang, "time.just_now")
	case d < time.Hour:
		return locale.T(lang, "time.minutes_ago", int(d/time.Minute))
	case d < 24*time.Hour:
		return locale.T(lang, "time.hours_ago", int(d/time.Hour))
	case d < 48*time.Hour:
		return locale.T(lang, "time.yesterday")
	case d < 30*24*time.Hour:
		return locale.T(lang, "time.days_ago", int(d/(24*time.Hour)))
	}
	return formatDate(t)
}

// formatInt writes n with thousands separators: 1,234,567.
func formatInt(n any) string {
	switch x := n.(type) {
	case int:
		return progress.Count(int64(x))
	case int64:
		return progress.Count(x)
	}
	return fmt.Sprint(n)
}

var currencySymbols = map[string]string{"CNY": "¥", "RMB": "¥", "USD": "$", "HKD": "HK$", "EUR": "€", "GBP": "£", "JPY": "JP¥"}

// formatMoney shows an amount in minor units in its currency: ¥1,234.50.
func formatMoney(minor int64, currency string) string {
	cur := strings.ToUpper(currency)
	major := event.MajorUnits(minor, cur)
	decimals := 2
	if event.MajorUnits(1, cur) == 1 { // a currency without minor units
		decimals = 0
	}
	s := strconv.FormatFloat(major, 'f', decimals, 64)
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	whole, frac, _ := strings.Cut(s, ".")
	n, _ := strconv.ParseInt(whole, 10, 64)
	out := progress.Count(n)
	if frac != "" {
		out += "." + frac
	}
	if sym, ok := currencySymbols[cur]; ok {
		return sign + sym + out
	}
	if cur == "" {
		return sign + out
	}
	return sign + cur + " " + out
}

// formatAttr shows a custom attribute value: lists joined, booleans in words.
func formatAttr(lang string, v any) string {
	switch x := v.(type) {
	case nil:
		return "—"
	case bool:
		if x {
			return locale.T(lang, "common.yes")
		}
		return locale.T(lang, "common.no")
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, "、")
	case string:
		return x
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// formatProps shows event properties compactly, keys sorted: "amount=12 · sku=A".
func formatProps(props map[string]any) string {
	keys := make([]string, 0, len(props))
	for k := range props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		var val string
		switch x := props[k].(type) {
		case string:
			val = x
		case float64:
			val = strconv.FormatFloat(x, 'f', -1, 64)
		default:
			b, _ := json.Marshal(x)
			val = string(b)
		}
		if r := []rune(val); len(r) > 60 {
			val = string(r[:60]) + "…"
		}
		parts = append(parts, k+"="+val)
	}
	return strings.Join(parts, " · ")
}

// initial is the first letter of a name, for avatars.
func initial(name string) string {
	for _, r := range strings.TrimSpace(name) {
		return strings.ToUpper(string(r))
	}
	return "?"
}

// icons are the navigation's line icons (24×24, stroked), drawn by app.css.
var icons = map[string]string{
	"home":      `<path d="M3 11l9-7 9 7"/><path d="M5 10v10h14V10"/><path d="M10 20v-6h4v6"/>`,
	"users":     `<circle cx="9" cy="8" r="3.5"/><path d="M2.5 20c.8-3.6 3.4-5.5 6.5-5.5s5.7 1.9 6.5 5.5"/><path d="M16 4.8a3.5 3.5 0 010 6.4"/><path d="M18 14.8c1.9.8 3.1 2.5 3.5 5.2"/>`,
	"tag":       `<path d="M3 12V4h8l10 10-8 8z"/><circle cx="7.5" cy="8.5" r="1.5"/>`,
	"filter":    `<path d="M3 5h18l-7 8v6l-4 2v-8z"/>`,
	"layers":    `<path d="M12 3l9 5-9 5-9-5z"/><path d="M3 13l9 5 9-5"/>`,
	"flow":      `<rect x="3" y="3" width="7" height="6" rx="1"/><rect x="14" y="15" width="7" height="6" rx="1"/><path d="M6.5 9v4a2 2 0 002 2H14"/>`,
	"send":      `<path d="M21 3L10 14"/><path d="M21 3l-7 18-4-7-7-4z"/>`,
	"check":     `<rect x="3" y="3" width="18" height="18" rx="3"/><path d="M8 12l3 3 5-6"/>`,
	"file":      `<path d="M6 3h8l5 5v13H6z"/><path d="M14 3v5h5"/><path d="M9 13h7M9 17h7"/>`,
	"chart":     `<path d="M4 20V10M10 20V4M16 20v-7M22 20H2"/>`,
	"gear":      `<circle cx="12" cy="12" r="3"/><path d="M12 2v3M12 19v3M4.9 4.9l2.1 2.1M17 17l2.1 2.1M2 12h3M19 12h3M4.9 19.1L7 17M17 7l2.1-2.1"/>`,
	"key":       `<circle cx="7.5" cy="15.5" r="4.5"/><path d="M10.7 12.3L20 3M16 7l3 3M14 9l2 2"/>`,
	"logout":    `<path d="M15 4h4v16h-4"/><path d="M10 8l-4 4 4 4M6 12h10"/>`,
	"search":    `<circle cx="11" cy="11" r="7"/><path d="M20 20l-4-4"/>`,
	"globe":     `<circle cx="12" cy="12" r="9"/><path d="M3 12h18M12 3c2.5 2.6 3.8 5.6 3.8 9s-1.3 6.4-3.8 9c-2.5-2.6-3.8-5.6-3.8-9S9.5 5.6 12 3z"/>`,
	"clock":     `<circle cx="12" cy="12" r="9"/><path d="M12 7v5l3 2"/>`,
	"cart":      `<circle cx="9" cy="20" r="1.5"/><circle cx="18" cy="20" r="1.5"/><path d="M2 3h3l2.5 12h12L22 7H6"/>`,
	"plus":      `<path d="M12 5v14M5 12h14"/>`,
	"clipboard": `<rect x="5" y="4" width="14" height="17" rx="2"/><path d="M9 4V3h6v1"/><path d="M9 10h6M9 14h6M9 18h3"/>`,
	"spark":     `<path d="M12 3v4M12 17v4M3 12h4M17 12h4M6 6l2.5 2.5M15.5 15.5L18 18M6 18l2.5-2.5M15.5 8.5L18 6"/>`,
}

// icon draws a named line icon; unknown names draw nothing.
func icon(name string) template.HTML {
	p, ok := icons[name]
	if !ok {
		return ""
	}
	return template.HTML(`<svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false">` + p + `</svg>`)
}
