// Package locale holds the console's message catalogue: every user-facing string, by key, in
// zh-CN (the default) and English. Translations are data (translations/*.json, embedded), so
// adding a language is adding a file. Each area may keep its messages in its own pair of files,
// translations/AREA.zh-CN.json and translations/AREA.en.json, beside the shared zh-CN.json and
// en.json; a key defined in two files of one language is a start-up error.
package locale

import (
	"embed"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
)

// The supported languages, as BCP 47 tags.
const (
	ZhCN = "zh-CN"
	En   = "en"
)

// Default is the language of a request that asks for none we speak.
const Default = ZhCN

// Languages lists the supported languages, the default first.
var Languages = []string{ZhCN, En}

//go:embed translations/*.json
var files embed.FS

// catalogue maps language → key → message.
var catalogue = load()

func load() map[string]map[string]string {
	out := map[string]map[string]string{}
	entries, err := files.ReadDir("translations")
	if err != nil {
		panic(fmt.Sprintf("locale: %v", err))
	}
	for _, lang := range Languages {
		out[lang] = map[string]string{}
		for _, e := range entries {
			name := e.Name()
			if name != lang+".json" && !strings.HasSuffix(name, "."+lang+".json") {
				continue
			}
			b, err := files.ReadFile(path.Join("translations", name))
			if err != nil {
				panic(fmt.Sprintf("locale: %s: %v", name, err))
			}
			m := map[string]string{}
			if err := json.Unmarshal(b, &m); err != nil {
				panic(fmt.Sprintf("locale: %s: %v", name, err))
			}
			for k, v := range m {
				if _, dup := out[lang][k]; dup {
					panic(fmt.Sprintf("locale: %s: key %q is already in another %s file", name, k, lang))
				}
				out[lang][k] = v
			}
		}
		if len(out[lang]) == 0 {
			panic(fmt.Sprintf("locale: no messages for %s", lang))
		}
	}
	return out
}

// T returns the message key in lang, formatted with args (fmt verbs) when there are any. A key
// missing in lang falls back to the default language, then to the key itself, so a missing
// translation shows up on the page rather than as an empty string.
func T(lang, key string, args ...any) string {
	msg, ok := catalogue[lang][key]
	if !ok {
		msg, ok = catalogue[Default][key]
	}
	if !ok {
		return key
	}
	if len(args) == 0 {
		return msg
	}
	return fmt.Sprintf(msg, args...)
}

// Has reports whether key is in the catalogue of lang.
func Has(lang, key string) bool {
	_, ok := catalogue[lang][key]
	return ok
}

// Keys lists the keys of lang, sorted.
func Keys(lang string) []string {
	keys := make([]string, 0, len(catalogue[lang]))
	for k := range catalogue[lang] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Supported returns the supported language a tag names ("zh", "zh-Hans-CN" and "zh_cn" are
// zh-CN; "en-GB" is en), or "" when none.
func Supported(tag string) string {
	tag = strings.ToLower(strings.TrimSpace(strings.ReplaceAll(tag, "_", "-")))
	primary, _, _ := strings.Cut(tag, "-")
	switch primary {
	case "zh":
		return ZhCN
	case "en":
		return En
	}
	return ""
}

// Match picks the supported language an Accept-Language header prefers most, or Default.
func Match(acceptLanguage string) string {
	best, bestQ := "", 0.0
	for _, part := range strings.Split(acceptLanguage, ",") {
		tag, params, _ := strings.Cut(part, ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				continue
			}
			q = f
		}
		if lang := Supported(tag); lang != "" && q > bestQ {
			best, bestQ = lang, q
		}
	}
	if best == "" {
		return Default
	}
	return best
}
