package customer

import "testing"

func TestMaskPhone(t *testing.T) {
	for in, want := range map[string]string{
		"":                "",
		"13812345678":     "138****5678",
		"+86 13812345678": "+86 138****5678",
		"+8613812345678":  "+86 138****5678",
		"021-6234567":     "021****4567",
		"95588":           "9**88",
		"1234":            "****",
		"一二三四五六七八":        "一二三****五六七八",
	} {
		if got := MaskPhone(in); got != want {
			t.Errorf("MaskPhone(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMaskEmail(t *testing.T) {
	for in, want := range map[string]string{
		"":                  "",
		"alice@example.com": "a***@example.com",
		"a@b.cn":            "a***@b.cn",
		"张三@例子.中国":          "张***@例子.中国",
		"not-an-address":    "n***",
		"@example.com":      "@***",
	} {
		if got := MaskEmail(in); got != want {
			t.Errorf("MaskEmail(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMaskedLeavesTheOriginal(t *testing.T) {
	c := &Customer{ID: 1, Phone: "13812345678", Email: "alice@example.com"}
	m := c.Masked()
	if m.Phone != "138****5678" || m.Email != "a***@example.com" || c.Phone != "13812345678" || c.Email != "alice@example.com" {
		t.Errorf("masked %+v, original %+v", m, c)
	}
	if id := MaskIdentity(Identity{Kind: UserID, Value: "u-1"}); id.Value != "u-1" {
		t.Errorf("a user id was masked: %v", id)
	}
}
