package segment

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// FuzzParseValidate feeds arbitrary bytes to Parse and Validate (with the test schema, whose
// saved segments include a cycle). Neither may panic; every refusal is an *Error; and a tree
// that passes both survives a JSON round trip: encoded and parsed again it still validates and
// encodes to the same bytes, so what the API stores is what it checked. The seed corpus is in
// testdata/fuzz/FuzzParseValidate.
func FuzzParseValidate(f *testing.F) {
	for _, s := range []string{
		`{"op":"and","children":[{"field":"gender","cmp":"eq","value":"female"},{"field":"attrs.income","cmp":"between","value":[5000,20000]}]}`,
		`{"op":"not","children":[{"event":{"name":"加企微","count":{"cmp":"gte","value":2},"window":{"last_days":30}}}]}`,
		`{"order":{"metric":"last_at","cmp":"more_than_days_ago","value":60}}`,
		`{"segment":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := Parse(data)
		if err != nil {
			checkError(t, "Parse", err)
			return
		}
		if err := Validate(n, schema, 0); err != nil {
			checkError(t, "Validate", err)
			return
		}
		first, err := json.Marshal(n)
		if err != nil {
			t.Fatalf("a valid tree does not encode: %v", err)
		}
		again, err := Parse(first)
		if err != nil {
			t.Fatalf("the encoding of a valid tree does not parse: %v\n%s", err, first)
		}
		if err := Validate(again, schema, 0); err != nil {
			t.Fatalf("the encoding of a valid tree does not validate: %v\n%s", err, first)
		}
		second, err := json.Marshal(again)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("encoding is not stable:\n%s\n%s", first, second)
		}
	})
}

func checkError(t *testing.T, what string, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%s returned %T (%v), want *segment.Error", what, err, err)
	}
	if e.Msg == "" {
		t.Fatalf("%s returned an error without a message (path %q)", what, e.Path)
	}
}
