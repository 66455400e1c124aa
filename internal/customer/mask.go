package customer

import (
	"strings"
	"unicode/utf8"
)

// MaskPhone hides the middle of a phone number the way Chinese apps do: 138****5678. A
// mainland mobile number keeps its first three and last four digits; a shorter number keeps
// less, and one of four characters or fewer is hidden entirely. A country code prefix
// (+86 138…) is kept as written.
func MaskPhone(p string) string {
	if p == "" {
		return ""
	}
	prefix := ""
	if rest, ok := strings.CutPrefix(p, "+86"); ok {
		prefix, p = "+86", strings.TrimLeft(rest, " -")
		if p == "" {
			return prefix
		}
		prefix += " "
	}
	r := []rune(p)
	n := len(r)
	switch {
	case n <= 4:
		return prefix + strings.Repeat("*", n)
	case n < 8:
		return prefix + string(r[:1]) + strings.Repeat("*", n-3) + string(r[n-2:])
	}
	return prefix + string(r[:3]) + "****" + string(r[n-4:])
}

// MaskEmail keeps an address's first character and its domain: a***@example.com. Something
// that is not an address is masked as a whole but for its first character.
func MaskEmail(e string) string {
	if e == "" {
		return ""
	}
	local, domain, ok := strings.Cut(e, "@")
	first, _ := utf8.DecodeRuneInString(local)
	if !ok || local == "" {
		first, _ = utf8.DecodeRuneInString(e)
		return string(first) + "***"
	}
	return string(first) + "***@" + domain
}

// MaskIdentity masks the value of a phone or email identity; other kinds (WeCom ids, user
// ids) are not contact details and stay as they are.
func MaskIdentity(id Identity) Identity {
	switch id.Kind {
	case PhoneID:
		id.Value = MaskPhone(id.Value)
	case EmailID:
		id.Value = MaskEmail(id.Value)
	}
	return id
}

// Masked returns a copy of c with its phone number and email masked; c is not changed.
func (c *Customer) Masked() *Customer {
	m := *c
	m.Phone, m.Email = MaskPhone(c.Phone), MaskEmail(c.Email)
	return &m
}
