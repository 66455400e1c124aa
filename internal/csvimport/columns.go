package csvimport

import (
	"fmt"
	"sort"
	"strings"
	"unicode"

	"github.com/siyu-scrm/siyu/internal/customer"
)

// Fields a column can feed. Custom attributes are "attr:KEY" (optionally "attr:KEY:TYPE").
const (
	fName          = "name"
	fGender        = "gender"
	fBirthday      = "birthday"
	fRegion        = "region"
	fPhone         = "phone"
	fEmail         = "email"
	fSource        = "source"
	fOwner         = "owner"
	fUserID        = "user_id"
	fWeComExternal = "wecom_external"
	fUnionID       = "unionid"
	fAvatarURL     = "avatar_url"
	fCreatedAt     = "created_at"

	fOrderID    = "order_id"
	fAmount     = "amount"
	fCurrency   = "currency"
	fPaidAt     = "paid_at"
	fStatus     = "status"
	fRefund     = "refund"
	fRefundedAt = "refunded_at"
	fProduct    = "product"
	fQuantity   = "quantity"

	fIgnore   = "ignore"
	attrField = "attr:"
)

// identityFields are the fields that identify a customer, strongest first.
var identityFields = []struct {
	field string
	kind  customer.IdentityKind
}{{fUserID, customer.UserID}, {fWeComExternal, customer.WeComExternal}, {fUnionID, customer.UnionID}, {fPhone, customer.PhoneID}, {fEmail, customer.EmailID}}

// An alias list per field, most preferred first: when two headers name one field (支付时间 and
// 下单时间), the earlier alias wins and the other column is ignored. Headers are compared after
// normalizeHeader.
type aliasTable []struct {
	field   string
	aliases []string
}

var identityAliases = aliasTable{
	{fUserID, []string{"用户ID", "会员ID", "会员编号", "会员号", "用户编号", "客户ID", "客户编号", "user_id", "userid", "member_id", "customer_id"}},
	{fWeComExternal, []string{"外部联系人ID", "external_userid", "企微外部联系人ID", "wecom_external"}},
	{fUnionID, []string{"unionid", "union_id", "微信unionid"}},
	{fPhone, []string{"手机号码", "手机号", "手机", "联系电话", "电话号码", "电话", "收货人手机", "mobile", "phone", "tel", "telephone"}},
	{fEmail, []string{"邮箱", "电子邮箱", "邮件", "email", "e-mail", "mail"}},
}

// rowNumberAliases are the running-number columns Chinese exports start with: not data.
var rowNumberAliases = []string{"序号", "行号", "no."}

var customerAliases = append(aliasTable{
	{fIgnore, rowNumberAliases},
	{fName, []string{"姓名", "客户名称", "客户姓名", "客户名", "名字", "name", "full_name", "customer_name"}},
	{fGender, []string{"性别", "gender", "sex"}},
	{fBirthday, []string{"生日", "出生日期", "出生年月日", "birthday", "birthdate", "date_of_birth"}},
	// Region takes every matching column, joined in file order: 省份 + 城市 → "广东省 深圳市".
	{fRegion, []string{"地区", "所在地区", "区域", "省份", "省", "城市", "市", "region", "province", "city"}},
	{fSource, []string{"来源", "渠道", "来源渠道", "客户来源", "获客渠道", "source", "channel"}},
	{fOwner, []string{"负责人", "归属员工", "跟进人", "所属员工", "添加人", "owner"}},
	{fAvatarURL, []string{"头像", "头像URL", "头像链接", "avatar", "avatar_url"}},
	{fCreatedAt, []string{"创建时间", "注册时间", "添加时间", "入会时间", "created_at", "signup_date"}},
}, identityAliases...)

var orderAliases = append(aliasTable{
	{fIgnore, rowNumberAliases},
	{fOrderID, []string{"订单号", "订单编号", "订单ID", "order_id", "order_no", "order_number"}},
	{fAmount, []string{"实付金额", "实付款", "支付金额", "实收金额", "订单金额", "金额", "amount", "total", "paid_amount"}},
	{fCurrency, []string{"币种", "货币", "currency"}},
	{fPaidAt, []string{"支付时间", "付款时间", "下单时间", "订单时间", "创建时间", "paid_at", "order_time", "created_at"}},
	{fStatus, []string{"订单状态", "状态", "交易状态", "status"}},
	{fRefund, []string{"退款金额", "已退款金额", "refund", "refunded", "refund_amount"}},
	{fRefundedAt, []string{"退款时间", "refunded_at"}},
	{fProduct, []string{"商品名称", "商品", "商品名", "商品标题", "product", "product_name", "products"}},
	{fQuantity, []string{"数量", "购买数量", "商品数量", "quantity", "qty"}},
}, identityAliases...)

// normalizeHeader makes headers comparable: no BOM or zero-width characters, no surrounding or
// inner spaces, no "*" required-markers, no unit in brackets ("实付金额(元)"), ASCII lower case,
// "-" and " " as "_".
func normalizeHeader(h string) string {
	h = strings.Map(func(r rune) rune {
		switch r {
		case '\uFEFF', '\u200B', '*', '＊':
			return -1
		case '（':
			return '('
		case '）':
			return ')'
		}
		return r
	}, h)
	h = strings.TrimSpace(h)
	if i := strings.IndexByte(h, '('); i > 0 && strings.HasSuffix(h, ")") {
		h = strings.TrimSpace(h[:i])
	}
	h = strings.ToLower(h)
	h = strings.Join(strings.Fields(h), "_")
	return strings.ReplaceAll(h, "-", "_")
}

// ParseMapping reads a --map flag: "手机号码=phone,会员等级=attr:level,备注=ignore". Keys are
// CSV headers, values are fields (name, phone, user_id, …, amount, paid_at, …), attr:KEY or
// attr:KEY:TYPE for a custom attribute of a given type, or ignore (also "-").
func ParseMapping(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range splitMapping(s) {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("mapping %q: want HEADER=FIELD", part)
		}
		if v == "-" {
			v = fIgnore
		}
		if err := checkTarget(v); err != nil {
			return nil, fmt.Errorf("mapping %q: %w", part, err)
		}
		out[k] = v
	}
	return out, nil
}

// splitMapping splits on commas, also the full-width ones a Chinese keyboard types.
func splitMapping(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '，' || r == ';' })
}

var knownFields = map[string]bool{}

func init() {
	for _, t := range []aliasTable{customerAliases, orderAliases} {
		for _, a := range t {
			knownFields[a.field] = true
		}
	}
	knownFields[fIgnore] = true
}

func checkTarget(v string) error {
	if key, ok := strings.CutPrefix(v, attrField); ok {
		key, typ, hasType := strings.Cut(key, ":")
		if !customer.ValidAttrKey(key) {
			return fmt.Errorf("invalid attribute name %q (letters, digits, _ . -; at most 64)", key)
		}
		if hasType && !customer.ValidAttrType(customer.AttrType(typ)) {
			return fmt.Errorf("attribute type %q: want string, number, bool, date or list", typ)
		}
		return nil
	}
	if !knownFields[v] {
		fields := make([]string, 0, len(knownFields))
		for f := range knownFields {
			fields = append(fields, f)
		}
		sort.Strings(fields)
		return fmt.Errorf("unknown field %q (want one of %s, or attr:KEY)", v, strings.Join(fields, ", "))
	}
	return nil
}

// column is what one CSV column feeds.
type column struct {
	header   string
	field    string // a field constant, or "" for a custom attribute
	attrKey  string
	attrType customer.AttrType // "" until known
	ignored  bool
}

// ColumnUse tells how a header was read, for the report.
type ColumnUse struct {
	Header string `json:"header"`
	Field  string `json:"field"` // a field, attr:KEY, or ignore
}

// resolveColumns decides what each header feeds: the mapping first, then the alias table, then
// (customers only, attrs true) a custom attribute named after the header.
func resolveColumns(header []string, mapping map[string]string, table aliasTable, attrs bool) ([]column, error) {
	alias := map[string]struct {
		field string
		rank  int
	}{}
	for _, a := range table {
		for i, h := range a.aliases {
			if _, dup := alias[normalizeHeader(h)]; !dup {
				alias[normalizeHeader(h)] = struct {
					field string
					rank  int
				}{a.field, i}
			}
		}
	}
	norm := map[string]string{}
	for k, v := range mapping {
		norm[normalizeHeader(k)] = v
	}
	cols := make([]column, len(header))
	best := map[string]int{} // field → column index holding it
	rank := map[int]int{}
	for i, h := range header {
		nh := normalizeHeader(h)
		c := column{header: strings.TrimSpace(strings.TrimPrefix(h, "\uFEFF"))}
		if v, ok := norm[nh]; ok {
			c.field = v
			rank[i] = -1 // an explicit mapping beats any alias
		} else if a, ok := alias[nh]; ok {
			c.field = a.field
			rank[i] = a.rank
		} else if attrs && nh != "" {
			c.field = attrField + attrKeyFromHeader(c.header)
		} else {
			c.field = fIgnore
		}
		if key, ok := strings.CutPrefix(c.field, attrField); ok {
			key, typ, _ := strings.Cut(key, ":")
			if !attrs {
				return nil, fmt.Errorf("column %q: orders have no custom attributes", c.header)
			}
			if !customer.ValidAttrKey(key) {
				c.field = fIgnore
			} else {
				c.field, c.attrKey, c.attrType = "", key, customer.AttrType(typ)
			}
		}
		if c.field == fIgnore {
			c.ignored = true
		}
		if !attrs && c.field != "" && !inTable(table, c.field) && !c.ignored {
			return nil, fmt.Errorf("column %q: %s is not an order field", c.header, c.field)
		}
		if attrs && c.field != "" && !c.ignored && !inTable(table, c.field) {
			return nil, fmt.Errorf("column %q: %s is not a customer field", c.header, c.field)
		}
		cols[i] = c
		if c.ignored || c.field == "" || c.field == fRegion {
			continue
		}
		if j, ok := best[c.field]; ok {
			if rank[i] == -1 && rank[j] == -1 {
				return nil, fmt.Errorf("columns %q and %q are both mapped to %s", cols[j].header, c.header, c.field)
			}
			if rank[i] >= rank[j] {
				cols[i].ignored = true
				continue
			}
			cols[j].ignored = true
		}
		best[c.field] = i
	}
	seenAttr := map[string]int{}
	for i, c := range cols {
		if c.field == "" && !c.ignored {
			if j, ok := seenAttr[c.attrKey]; ok {
				return nil, fmt.Errorf("columns %q and %q both feed attribute %s", cols[j].header, c.header, c.attrKey)
			}
			seenAttr[c.attrKey] = i
		}
	}
	return cols, nil
}

func inTable(t aliasTable, field string) bool {
	for _, a := range t {
		if a.field == field {
			return true
		}
	}
	return false
}

// attrKeyFromHeader turns a header into an attribute name: characters an attribute name cannot
// hold become "_", and the result is at most 64 characters.
func attrKeyFromHeader(h string) string {
	var b []rune
	for _, r := range h {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '.' || r == '-':
			b = append(b, r)
		case len(b) > 0 && b[len(b)-1] != '_':
			b = append(b, '_')
		}
	}
	s := strings.Trim(string(b), "_")
	if s != "" && unicode.IsDigit([]rune(s)[0]) {
		s = "_" + s
	}
	if r := []rune(s); len(r) > 64 {
		s = string(r[:64])
	}
	return s
}

func uses(cols []column) []ColumnUse {
	out := make([]ColumnUse, len(cols))
	for i, c := range cols {
		f := c.field
		switch {
		case c.ignored:
			f = fIgnore
		case f == "":
			f = attrField + c.attrKey
		}
		out[i] = ColumnUse{Header: c.header, Field: f}
	}
	return out
}
