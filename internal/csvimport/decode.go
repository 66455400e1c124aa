package csvimport

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/encoding/unicode"
	"golang.org/x/text/transform"
)

// Encodings accepted by Options.Encoding ("" or "auto" detects).
const (
	EncodingUTF8    = "utf-8"
	EncodingGB18030 = "gb18030" // a superset of GBK and GB2312: what Chinese Excel writes
	EncodingUTF16   = "utf-16"  // Excel's "Unicode text"
)

// sniffSize is how much of a file detection looks at.
const sniffSize = 64 << 10

// decode returns r as UTF-8 text without a byte order mark, and the encoding it found.
// golang.org/x/text is used for GB18030 and UTF-16 because it is the Go team's maintained
// implementation of those tables.
func decode(r io.Reader, want string) (io.Reader, string, error) {
	br := bufio.NewReaderSize(r, sniffSize)
	head, err := br.Peek(sniffSize)
	if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
		return nil, "", err
	}
	utf16 := func(bom []byte) (io.Reader, string, error) {
		order := unicode.LittleEndian
		if bytes.Equal(bom, []byte{0xFE, 0xFF}) {
			order = unicode.BigEndian
		}
		return transform.NewReader(br, unicode.UTF16(order, unicode.UseBOM).NewDecoder()), EncodingUTF16, nil
	}
	switch strings.ToLower(strings.ReplaceAll(want, "_", "-")) {
	case "", "auto":
	case "utf-8", "utf8":
		if bytes.HasPrefix(head, []byte{0xEF, 0xBB, 0xBF}) {
			br.Discard(3)
		}
		return br, EncodingUTF8, nil
	case "gbk", "gb2312", "gb18030", "cp936":
		return transform.NewReader(br, simplifiedchinese.GB18030.NewDecoder()), EncodingGB18030, nil
	case "utf-16", "utf16", "utf-16le", "ucs-2":
		return utf16(head[:min(2, len(head))])
	default:
		return nil, "", fmt.Errorf("unknown encoding %q (want utf-8, gbk or utf-16)", want)
	}
	switch {
	case bytes.HasPrefix(head, []byte{0xEF, 0xBB, 0xBF}):
		br.Discard(3)
		return br, EncodingUTF8, nil
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}), bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		return utf16(head[:2])
	}
	if utf8.Valid(trimPartialRune(head, len(head) == sniffSize)) {
		return br, EncodingUTF8, nil
	}
	if looksGB18030(head, len(head) == sniffSize) {
		return transform.NewReader(br, simplifiedchinese.GB18030.NewDecoder()), EncodingGB18030, nil
	}
	return nil, "", fmt.Errorf("the file is neither UTF-8 nor GBK text: save it from Excel as \"CSV UTF-8\", or name its encoding (--encoding)")
}

// trimPartialRune drops a rune cut in half at the end of a sniffed prefix.
func trimPartialRune(b []byte, cut bool) []byte {
	if !cut {
		return b
	}
	for i := 1; i <= utf8.UTFMax && i <= len(b); i++ {
		if utf8.RuneStart(b[len(b)-i]) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			break
		}
	}
	return b
}

// looksGB18030 reports whether b decodes as GB18030 without replacement characters (a
// multi-byte character cut at the end of a sniffed prefix is forgiven).
func looksGB18030(b []byte, cut bool) bool {
	out, _, err := transform.Bytes(simplifiedchinese.GB18030.NewDecoder(), b)
	if err != nil {
		return false
	}
	s := string(out)
	if cut {
		s = strings.TrimSuffix(s, "\uFFFD")
	}
	return !strings.ContainsRune(s, utf8.RuneError)
}

// sniffComma picks the separator of the header line: comma unless tabs or semicolons are more
// frequent outside quotes.
func sniffComma(br *bufio.Reader) rune {
	head, _ := br.Peek(sniffSize)
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	counts := map[rune]int{}
	quoted := false
	for _, c := range string(head) {
		switch {
		case c == '"':
			quoted = !quoted
		case !quoted && (c == ',' || c == '\t' || c == ';'):
			counts[c]++
		}
	}
	best := ','
	for _, c := range []rune{'\t', ';'} {
		if counts[c] > counts[best] {
			best = c
		}
	}
	return best
}
