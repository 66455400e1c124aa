package staff

import (
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

func TestPasswordPolicyCheck(t *testing.T) {
	p := PasswordPolicy{}
	for pw, want := range map[string]string{
		"short":                  "at least 10",
		strings.Repeat("长", 9):   "at least 10",
		strings.Repeat("长", 10):  "too simple",
		strings.Repeat("ab", 40): "at most 72",
		"zhangwei123!":           "login",
		"ZHANGWEI-home":          "login",
		"Woaini1314":             "common",
		"1qaz2wsx3edc":           "common",
		"abababababab":           "too simple",
		"correct horse battery":  "",
		"春眠不觉晓处处闻啼鸟":             "",
	} {
		err := p.Check("zhangwei", pw)
		switch {
		case want == "" && err != nil:
			t.Errorf("%q refused: %v", pw, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: %v, want %q", pw, err, want)
		}
	}
	if (PasswordPolicy{MinLen: 4}).Min() != 8 || (PasswordPolicy{MinLen: 16}).Min() != 16 {
		t.Fatal("minimum length not clamped to 8")
	}
	if len(commonPasswords) < 100 {
		t.Fatalf("only %d common passwords loaded", len(commonPasswords))
	}
}

func TestTOTPStepsAndRecoveryCodes(t *testing.T) {
	enr, err := NewTOTP("siyu", "li")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enr.URI, "otpauth://totp/siyu:li?") || !strings.HasPrefix(enr.QR, "data:image/png;base64,") || len(enr.Secret) < 32 {
		t.Fatalf("enrolment: %+v", enr)
	}
	now := time.Date(2025, 6, 1, 9, 0, 10, 0, time.UTC)
	code := func(at time.Time) string { c, _ := totp.GenerateCode(enr.Secret, at); return c }
	step, ok := CheckTOTP(enr.Secret, code(now), now, 0)
	if !ok || step != TOTPStep(now) {
		t.Fatal("current code refused")
	}
	if _, ok := CheckTOTP(enr.Secret, code(now), now, step); ok {
		t.Fatal("a used step accepted again")
	}
	if _, ok := CheckTOTP(enr.Secret, code(now.Add(-30*time.Second)), now, 0); !ok {
		t.Fatal("the previous step (clock drift) refused")
	}
	if _, ok := CheckTOTP(enr.Secret, code(now.Add(-90*time.Second)), now, 0); ok {
		t.Fatal("a code three steps old accepted")
	}
	spaced := code(now)[:3] + " " + code(now)[3:]
	if _, ok := CheckTOTP(enr.Secret, spaced, now, 0); !ok {
		t.Fatal("a code typed with a space refused")
	}
	codes := NewRecoveryCodes()
	seen := map[string]bool{}
	for _, c := range codes {
		if len(c) != 19 || strings.Count(c, "-") != 3 || seen[c] {
			t.Fatalf("recovery code %q", c)
		}
		seen[c] = true
	}
	if RecoveryCodeHash(1, codes[0]) != RecoveryCodeHash(1, strings.ToUpper(strings.ReplaceAll(codes[0], "-", ""))) {
		t.Fatal("a recovery code typed without dashes in capitals does not match")
	}
	if RecoveryCodeHash(1, codes[0]) == RecoveryCodeHash(2, codes[0]) {
		t.Fatal("the same code hashes alike for two people")
	}
}
