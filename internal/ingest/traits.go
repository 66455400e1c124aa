package ingest

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
)

// profileTraits are the identify traits that map to profile fields (or only to identities);
// every other trait is a custom attribute.
var profileTraits = map[string]bool{
	"name": true, "firstName": true, "lastName": true, "first_name": true, "last_name": true,
	"gender": true, "birthday": true, "address": true, "region": true, "phone": true, "email": true,
	"avatar": true, "avatar_url": true, "avatarUrl": true, "createdAt": true, "created_at": true,
	"source": true, "owner": true, "opt_out": true, "optOut": true,
	// identities only: the customer's ids are not attributes
	"id": true, "userId": true, "anonymousId": true, "wecom_external_userid": true, "unionid": true,
}

// maxAttrDepth bounds how deep nested trait objects are flattened ("company.name").
const maxAttrDepth = 3

// patchFromTraits maps identify traits to a profile patch (nil when they change nothing):
// name (or firstName + lastName), gender, birthday, address {city, state, country} or region,
// phone, email, avatar, createdAt, source, owner (a staff login) and opt_out {channel: bool};
// every other trait becomes a custom attribute, nested objects flattened to dotted keys. A
// null trait clears the field or removes the attribute. Attribute types are checked against
// the stored definitions when the message is written (store.Tx.CheckPatch).
func patchFromTraits(traits map[string]any) (*customer.Patch, *fieldErr) {
	if len(traits) == 0 {
		return nil, nil
	}
	p := &customer.Patch{}
	str := func(key string) (*string, *fieldErr) {
		v, ok := traits[key]
		if !ok {
			return nil, nil
		}
		if v == nil {
			empty := ""
			return &empty, nil
		}
		s, err := scalarString(v)
		if err != nil {
			return nil, fieldErrorf("traits."+key, "%v", err)
		}
		return &s, nil
	}
	var ferr *fieldErr
	firstOf := func(keys ...string) (*string, *fieldErr) {
		for _, k := range keys {
			v, err := str(k)
			if err != nil || v != nil {
				return v, err
			}
		}
		return nil, nil
	}
	if p.Name, ferr = str("name"); ferr != nil {
		return nil, ferr
	}
	if p.Name == nil {
		first, err := firstOf("firstName", "first_name")
		if err != nil {
			return nil, err
		}
		last, err := firstOf("lastName", "last_name")
		if err != nil {
			return nil, err
		}
		if first != nil || last != nil {
			n := fullName(deref(first), deref(last))
			p.Name = &n
		}
	}
	if p.Gender, ferr = str("gender"); ferr != nil {
		return nil, ferr
	}
	if p.Birthday, ferr = str("birthday"); ferr != nil {
		return nil, ferr
	}
	if p.Region, ferr = str("region"); ferr != nil {
		return nil, ferr
	}
	if p.Region == nil {
		if p.Region, ferr = regionFromAddress(traits["address"]); ferr != nil {
			return nil, ferr
		}
	}
	if p.Phone, ferr = str("phone"); ferr != nil {
		return nil, ferr
	}
	if p.Phone != nil {
		*p.Phone = normalizeIdentity(customer.PhoneID, *p.Phone)
	}
	if p.Email, ferr = str("email"); ferr != nil {
		return nil, ferr
	}
	if p.Email != nil {
		*p.Email = normalizeIdentity(customer.EmailID, *p.Email)
	}
	if p.AvatarURL, ferr = firstOf("avatar", "avatar_url", "avatarUrl"); ferr != nil {
		return nil, ferr
	}
	if p.Source, ferr = str("source"); ferr != nil {
		return nil, ferr
	}
	if p.Owner, ferr = str("owner"); ferr != nil {
		return nil, ferr
	}
	for _, k := range []string{"createdAt", "created_at"} {
		if v, ok := traits[k]; ok && v != nil {
			t, err := traitTime(v)
			if err != nil {
				return nil, fieldErrorf("traits."+k, "%v", err)
			}
			p.CreatedAt = &t
			break
		}
	}
	for _, k := range []string{"opt_out", "optOut"} {
		v, ok := traits[k]
		if !ok || v == nil {
			continue
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, fieldErrorf("traits."+k, "wrong type: want an object of channel: true/false")
		}
		p.OptOut = make(map[string]bool, len(obj))
		for ch, b := range obj {
			out, ok := b.(bool)
			if !ok {
				return nil, fieldErrorf("traits."+k+"."+ch, "wrong type: want true or false")
			}
			p.OptOut[ch] = out
		}
		break
	}
	for k, v := range traits {
		if profileTraits[k] {
			continue
		}
		if p.Attrs == nil {
			p.Attrs = map[string]any{}
		}
		if err := addAttr(p.Attrs, k, v, 1); err != nil {
			return nil, err
		}
	}
	if p.Empty() {
		return nil, nil
	}
	return p, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// fullName joins first and last name: family name first and no space for Chinese, Japanese
// and Korean names (张 + 三 = 张三), "First Last" otherwise.
func fullName(first, last string) string {
	switch {
	case first == "":
		return last
	case last == "":
		return first
	case isCJK(first) && isCJK(last):
		return last + first
	}
	return first + " " + last
}

func isCJK(s string) bool {
	for _, r := range s {
		if !unicode.In(r, unicode.Han, unicode.Hangul, unicode.Hiragana, unicode.Katakana) {
			return false
		}
	}
	return s != ""
}

// regionFromAddress reads Segment's address trait: "state city" (广东省 深圳市), or the
// country when neither is known. A string address is taken as the region.
func regionFromAddress(v any) (*string, *fieldErr) {
	switch a := v.(type) {
	case nil:
		return nil, nil
	case string:
		s := strings.TrimSpace(a)
		return &s, nil
	case map[string]any:
		part := func(k string) (string, *fieldErr) {
			s, err := scalarString(a[k])
			if err != nil {
				return "", fieldErrorf("traits.address."+k, "%v", err)
			}
			return s, nil
		}
		var parts []string
		for _, k := range []string{"state", "city"} {
			s, err := part(k)
			if err != nil {
				return nil, err
			}
			if s != "" && (len(parts) == 0 || parts[0] != s) {
				parts = append(parts, s)
			}
		}
		if len(parts) == 0 {
			c, err := part("country")
			if err != nil {
				return nil, err
			}
			if c == "" {
				return nil, nil
			}
			parts = append(parts, c)
		}
		r := strings.Join(parts, " ")
		return &r, nil
	}
	return nil, fieldErrorf("traits.address", "wrong type: want an object with city, state, country")
}

// traitTime reads createdAt: an ISO-8601 string, or Unix seconds (or milliseconds, when the
// number is too large to be seconds).
func traitTime(v any) (time.Time, error) {
	switch x := v.(type) {
	case string:
		return ParseTime(x)
	case json.Number:
		f, err := x.Float64()
		if err != nil || f <= 0 {
			return time.Time{}, fmt.Errorf("not a time")
		}
		if f > 1e11 {
			return time.UnixMilli(int64(f)), nil
		}
		return time.Unix(int64(f), 0), nil
	}
	return time.Time{}, fmt.Errorf("wrong type: want an ISO-8601 string")
}

// addAttr adds trait k = v to attrs as a custom attribute value that customer.CoerceAttr
// understands: numbers become float64, lists lists of strings, objects are flattened.
func addAttr(attrs map[string]any, k string, v any, depth int) *fieldErr {
	field := "traits." + k
	switch x := v.(type) {
	case nil, bool, string:
		attrs[k] = x
	case json.Number:
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) {
			return fieldErrorf(field, "number out of range")
		}
		attrs[k] = f
	case []any:
		list := make([]string, 0, len(x))
		for i, e := range x {
			switch y := e.(type) {
			case string:
				list = append(list, y)
			case json.Number:
				list = append(list, y.String())
			case bool:
				list = append(list, strconv.FormatBool(y))
			default:
				return fieldErrorf(field+"["+strconv.Itoa(i)+"]", "wrong type: a list attribute holds strings")
			}
		}
		attrs[k] = list
	case map[string]any:
		if depth >= maxAttrDepth {
			return fieldErrorf(field, "objects nested deeper than %d levels", maxAttrDepth)
		}
		for sub, e := range x {
			if err := addAttr(attrs, k+"."+sub, e, depth+1); err != nil {
				return err
			}
		}
	default:
		return fieldErrorf(field, "unsupported value")
	}
	return nil
}

// orderFrom reads an "Order Completed" call: order_id, total (else revenue, else the sum of
// the products) in major units, currency (default CNY) and products.
func orderFrom(props map[string]any, at time.Time) (*event.Order, *fieldErr) {
	id, ferr := orderID(props)
	if ferr != nil {
		return nil, ferr
	}
	cur, ferr := currency(props)
	if ferr != nil {
		return nil, ferr
	}
	o := &event.Order{OrderID: id, Currency: cur, Status: event.Paid, PaidAt: at, Source: "api"}
	o.Products, ferr = products(props["products"], cur)
	if ferr != nil {
		return nil, ferr
	}
	amount, found, ferr := amountOf(props)
	if ferr != nil {
		return nil, ferr
	}
	if found {
		o.AmountMinor = event.MinorUnits(amount, cur)
	} else {
		for _, p := range o.Products {
			o.AmountMinor += int64(math.Round(float64(p.PriceMinor) * p.Quantity))
		}
	}
	return o, nil
}

// refundFrom reads an "Order Refunded" call: order_id and total (else revenue, else the sum of
// the products listed) refunded; with none of them the whole order is refunded.
func refundFrom(props map[string]any, at time.Time) (*Refund, *fieldErr) {
	id, ferr := orderID(props)
	if ferr != nil {
		return nil, ferr
	}
	r := &Refund{OrderID: id, At: at}
	if _, ok := props["currency"]; ok {
		if r.Currency, ferr = currency(props); ferr != nil {
			return nil, ferr
		}
	}
	amount, found, ferr := amountOf(props)
	if ferr != nil {
		return nil, ferr
	}
	switch {
	case found:
		r.Amount = amount
		r.Full = amount == 0
	case props["products"] != nil:
		ps, ferr := products(props["products"], "")
		if ferr != nil {
			return nil, ferr
		}
		for _, p := range ps {
			r.Amount += float64(p.PriceMinor) / 100 * p.Quantity
		}
		r.Full = r.Amount == 0
	default:
		r.Full = true
	}
	return r, nil
}

func orderID(props map[string]any) (string, *fieldErr) {
	for _, k := range []string{"order_id", "orderId"} {
		if v, ok := props[k]; ok && v != nil {
			s, err := scalarString(v)
			if err != nil {
				return "", fieldErrorf("properties."+k, "%v", err)
			}
			if s == "" {
				return "", fieldErrorf("properties."+k, "required")
			}
			if len(s) > maxIDBytes {
				return "", fieldErrorf("properties."+k, "longer than %d bytes", maxIDBytes)
			}
			return s, nil
		}
	}
	return "", fieldErrorf("properties.order_id", "required for %s and %s", OrderCompleted, OrderRefunded)
}

func currency(props map[string]any) (string, *fieldErr) {
	v, ok := props["currency"]
	if !ok || v == nil {
		return "CNY", nil
	}
	s, isStr := v.(string)
	s = strings.ToUpper(strings.TrimSpace(s))
	if !isStr || len(s) != 3 || !isUpperASCII(s) {
		return "", fieldErrorf("properties.currency", "want an ISO 4217 code such as CNY")
	}
	return s, nil
}

func isUpperASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}

// amountOf reads total, else revenue (major units).
func amountOf(props map[string]any) (float64, bool, *fieldErr) {
	for _, k := range []string{"total", "revenue"} {
		v, ok := props[k]
		if !ok || v == nil {
			continue
		}
		f, err := number(v)
		if err != nil {
			return 0, false, fieldErrorf("properties."+k, "%v", err)
		}
		if f < 0 {
			return 0, false, fieldErrorf("properties."+k, "negative amount")
		}
		return f, true, nil
	}
	return 0, false, nil
}

// products reads the Segment products array. Prices convert to minor units of cur (CNY when
// cur is "").
func products(v any, cur string) ([]event.Product, *fieldErr) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fieldErrorf("properties.products", "wrong type: want array")
	}
	if cur == "" {
		cur = "CNY"
	}
	out := make([]event.Product, 0, len(list))
	for i, e := range list {
		field := "properties.products[" + strconv.Itoa(i) + "]"
		obj, ok := e.(map[string]any)
		if !ok {
			return nil, fieldErrorf(field, "wrong type: want object")
		}
		var p event.Product
		for _, f := range []struct {
			dst *string
			key string
		}{{&p.ProductID, "product_id"}, {&p.SKU, "sku"}, {&p.Name, "name"}, {&p.Category, "category"}} {
			s, err := scalarString(obj[f.key])
			if err != nil {
				return nil, fieldErrorf(field+"."+f.key, "%v", err)
			}
			*f.dst = s
		}
		if pv, ok := obj["price"]; ok && pv != nil {
			f, err := number(pv)
			if err != nil {
				return nil, fieldErrorf(field+".price", "%v", err)
			}
			p.PriceMinor = event.MinorUnits(f, cur)
		}
		p.Quantity = 1
		if qv, ok := obj["quantity"]; ok && qv != nil {
			q, err := number(qv)
			if err != nil || q < 0 {
				return nil, fieldErrorf(field+".quantity", "want a number ≥ 0")
			}
			p.Quantity = q
		}
		out = append(out, p)
	}
	return out, nil
}
