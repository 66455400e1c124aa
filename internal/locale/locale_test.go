package locale

import (
	"regexp"
	"strings"
	"testing"
)

var verbRe = regexp.MustCompile(`%[-+# 0-9.]*[a-zA-Z%]`)

// Every language has the same keys, no empty messages, and the same format verbs in each
// message, so a translation can never drop or add an argument.
func TestCataloguesAgree(t *testing.T) {
	base := Keys(Default)
	if len(base) == 0 {
		t.Fatal("empty default catalogue")
	}
	for _, lang := range Languages {
		keys := Keys(lang)
		if strings.Join(keys, "\n") != strings.Join(base, "\n") {
			for _, k := range base {
				if !Has(lang, k) {
					t.Errorf("%s lacks %q", lang, k)
				}
			}
			for _, k := range keys {
				if !Has(Default, k) {
					t.Errorf("%s has %q, which %s lacks", lang, k, Default)
				}
			}
		}
		for _, k := range keys {
			msg := catalogue[lang][k]
			if strings.TrimSpace(msg) == "" {
				t.Errorf("%s %q is empty", lang, k)
			}
			if got, want := strings.Join(verbRe.FindAllString(msg, -1), " "), strings.Join(verbRe.FindAllString(catalogue[Default][k], -1), " "); got != want {
				t.Errorf("%s %q has verbs %q, %s has %q", lang, k, got, Default, want)
			}
		}
	}
}

func TestT(t *testing.T) {
	if got := T(ZhCN, "nav.customers"); got != "客户" {
		t.Errorf("zh-CN nav.customers = %q", got)
	}
	if got := T(En, "nav.customers"); got != "Customers" {
		t.Errorf("en nav.customers = %q", got)
	}
	if got := T(En, "customer.unnamed", 7); got != "Unnamed customer #7" {
		t.Errorf("with an argument: %q", got)
	}
	if got := T("fr", "nav.customers"); got != "客户" {
		t.Errorf("unknown language falls back to the default: %q", got)
	}
	if got := T(En, "no.such.key"); got != "no.such.key" {
		t.Errorf("missing key shows itself: %q", got)
	}
}

func TestMatch(t *testing.T) {
	for header, want := range map[string]string{
		"":                          ZhCN,
		"en":                        En,
		"en-US,en;q=0.9":            En,
		"zh-CN,zh;q=0.9,en;q=0.8":   ZhCN,
		"zh-Hant-TW":                ZhCN,
		"fr-FR,fr;q=0.9":            ZhCN,
		"fr-FR,fr;q=0.9,en;q=0.5":   En,
		"en;q=0.3, zh;q=0.7":        ZhCN,
		"en;q=bogus, zh-CN;q=0.1":   ZhCN,
		"de, en-GB;q=0.8, zh;q=0.2": En,
	} {
		if got := Match(header); got != want {
			t.Errorf("Match(%q) = %s, want %s", header, got, want)
		}
	}
	for tag, want := range map[string]string{"zh_cn": ZhCN, "ZH-cn": ZhCN, "en-GB": En, "ja": "", "": ""} {
		if got := Supported(tag); got != want {
			t.Errorf("Supported(%q) = %q, want %q", tag, got, want)
		}
	}
}
