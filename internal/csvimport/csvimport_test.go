package csvimport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/event"
	"github.com/siyu-scrm/siyu/internal/staff"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/store/storetest"
)

var ctx = context.Background()

const bom = "\uFEFF"

// setup gives a store with a fixed clock and two staff members.
func setup(t *testing.T, s *store.Store) *time.Time {
	t.Helper()
	now := time.Date(2025, 6, 18, 12, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	for _, m := range []*staff.Staff{{Login: "sales01", Name: "王芳", Role: staff.Sales}, {Login: "sales02", Name: "李强", Role: staff.Sales}} {
		if err := s.CreateStaff(ctx, m, ""); err != nil {
			t.Fatal(err)
		}
	}
	return &now
}

func importCustomers(t *testing.T, s *store.Store, csv string, opts Options) *Report {
	t.Helper()
	rep, err := Customers(ctx, s, strings.NewReader(csv), opts)
	if err != nil {
		t.Fatalf("import: %v (report %+v)", err, rep)
	}
	return rep
}

func find(t *testing.T, s *store.Store, kind customer.IdentityKind, v string) *customer.Customer {
	t.Helper()
	id, err := s.CustomerByIdentity(ctx, customer.Identity{Kind: kind, Value: v})
	if err != nil {
		t.Fatalf("customer with %s %s: %v", kind, v, err)
	}
	c, err := s.Customer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// dump renders every row of the tables an import writes, for before/after comparisons.
func dump(t *testing.T, s *store.Store) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []string{
		`SELECT id, name, gender, birthday, region, phone, email, avatar_url, source, COALESCE(owner_id, 0), attrs, created_at, updated_at, last_seen_at, COALESCE(merged_into, 0) FROM customers ORDER BY id`,
		`SELECT kind, value, customer_id, created_at FROM identities ORDER BY kind, value`,
		`SELECT key, type, label, created_at FROM attribute_defs ORDER BY key`,
		`SELECT customer_id, channel, created_at FROM customer_optouts ORDER BY customer_id, channel`,
		`SELECT id, order_id, customer_id, status, amount_minor, refunded_minor, currency, products, paid_at, COALESCE(refunded_at, 0), source, created_at, updated_at FROM orders ORDER BY id`,
		`SELECT COUNT(*) FROM customer_merges`,
	} {
		rows, err := s.DB().QueryContext(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				fmt.Fprintf(&b, "%v|", v)
			}
			b.WriteByte('\n')
		}
		rows.Close()
	}
	return b.String()
}

const chineseCustomers = bom + `序号,姓名,手机号码,性别,生日,省份,城市,邮箱,来源,负责人,会员等级,积分,是否会员,注册时间,用户ID
1,张伟,138 0013 8000,男,1990/1/2,广东省,深圳市,Zhang.Wei@QQ.com,渠道活码,sales01,金卡,"1,200",是,2024-03-05 20:15:00,U001
2,李娜,+86 139-0000-0001,女,1988-12-31,北京市,北京市,,公众号,sales02,普通,80,否,2024/3/6,U002
3,王芳,="013900000002",F,,上海市,上海市,,小红书,,银卡,300,是,,
`

func TestChineseHeadersWithBOM(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		setup(t, s)
		rep := importCustomers(t, s, chineseCustomers, Options{Source: "测试导入"})
		if rep.Encoding != EncodingUTF8 || rep.Rows != 3 || rep.Created != 3 || rep.Invalid != 0 {
			t.Fatalf("report %+v", rep)
		}
		c := find(t, s, customer.PhoneID, "13800138000")
		if c.Name != "张伟" || c.Gender != "male" || c.Birthday != "1990-01-02" || c.Region != "广东省 深圳市" || c.Email != "zhang.wei@qq.com" || c.Source != "渠道活码" {
			t.Errorf("customer %+v", c)
		}
		if c.Attrs["会员等级"] != "金卡" || c.Attrs["积分"] != 1200.0 || c.Attrs["是否会员"] != true || c.Attrs["序号"] != nil {
			t.Errorf("attrs %#v", c.Attrs)
		}
		want := time.Date(2024, 3, 5, 20, 15, 0, 0, shanghai)
		if !c.CreatedAt.Equal(want) {
			t.Errorf("created %v, want %v (China time)", c.CreatedAt, want)
		}
		if c.OwnerID == 0 {
			t.Error("owner not set")
		}
		if id, err := s.CustomerByIdentity(ctx, customer.Identity{Kind: customer.UserID, Value: "U001"}); err != nil || id != c.ID {
			t.Errorf("user id identity: %d %v", id, err)
		}
		li := find(t, s, customer.PhoneID, "13900000001") // +86 and dashes dropped
		if li.Region != "北京市" || li.Gender != "female" {
			t.Errorf("li %+v", li)
		}
		wang := find(t, s, customer.PhoneID, "013900000002") // Excel's ="…" text marker undone
		if wang.Source != "小红书" {
			t.Errorf("wang %+v", wang)
		}
		defs, _ := s.AttrDefs(ctx)
		types := map[string]customer.AttrType{}
		for _, d := range defs {
			types[d.Key] = d.Type
		}
		if types["积分"] != customer.AttrNumber || types["是否会员"] != customer.AttrBool || types["会员等级"] != customer.AttrString {
			t.Errorf("attribute types %v", types)
		}
	})
}

func TestMapping(t *testing.T) {
	m, err := ParseMapping("Mobile No.=phone，Level=attr:level, Hobbies=attr:hobbies:list,备注=-")
	if err != nil {
		t.Fatal(err)
	}
	if m["Mobile No."] != "phone" || m["Level"] != "attr:level" || m["Hobbies"] != "attr:hobbies:list" || m["备注"] != "ignore" {
		t.Fatalf("mapping %v", m)
	}
	for _, bad := range []string{"a", "a=", "a=nosuchfield", "a=attr:", "a=attr:x:float", "a=attr:has space"} {
		if _, err := ParseMapping(bad); err == nil {
			t.Errorf("ParseMapping(%q) accepted", bad)
		}
	}
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		setup(t, s)
		csv := "Customer,Mobile No.,Level,Hobbies,备注\n赵敏,13700000000,VIP,\"跑步,瑜伽；阅读\",不要导入\n"
		rep := importCustomers(t, s, csv, Options{Mapping: m})
		if rep.Created != 1 {
			t.Fatalf("report %+v", rep)
		}
		c := find(t, s, customer.PhoneID, "13700000000")
		hob, _ := c.Attrs["hobbies"].([]any)
		if c.Attrs["level"] != "VIP" || len(hob) != 3 || hob[2] != "阅读" || c.Attrs["备注"] != nil || c.Attrs["Customer"] != "赵敏" {
			t.Errorf("attrs %#v", c.Attrs)
		}
		if _, err := Customers(ctx, s, strings.NewReader("Level\nx\n"), Options{}); err == nil || !strings.Contains(err.Error(), "no column identifies") {
			t.Errorf("file without identity: %v", err)
		}
	})
}

// invalidCSV has a quoted cell spanning three lines (lines 2–4), so the bad rows below sit on
// lines 5, 6, 7 and 9.
const invalidCSV = `姓名,手机号,性别,生日,负责人,积分
"多行
备注
客户",13800000001,男,1990-01-01,sales01,10
坏性别,13800000002,未说明,1990-01-01,,10
坏手机,1.38E+10,男,,,
坏员工,13800000004,,,nobody,
正常,13800000005,女,,,20

坏生日,13800000006,,1990-13-45,,
`

func TestInvalidRowsAreReportedByLineAndColumn(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		setup(t, s)
		rep := importCustomers(t, s, invalidCSV, Options{BatchSize: 2})
		want := []RowError{
			{Line: 5, Column: "性别"},
			{Line: 6, Column: "手机号"},
			{Line: 7, Column: "负责人"},
			{Line: 10, Column: "生日"},
		}
		if rep.Rows != 6 || rep.Created != 2 || rep.Invalid != 4 || len(rep.Errors) != 4 || !rep.Written {
			t.Fatalf("report %+v", rep)
		}
		for i, w := range want {
			if got := rep.Errors[i]; got.Line != w.Line || got.Column != w.Column || got.Reason == "" {
				t.Errorf("error %d: %+v, want line %d column %s", i, got, w.Line, w.Column)
			}
		}
		if !strings.Contains(rep.Errors[1].Reason, "scientific notation") {
			t.Errorf("reason %q", rep.Errors[1].Reason)
		}
		if c := find(t, s, customer.PhoneID, "13800000001"); c.Name != "多行\n备注\n客户" {
			t.Errorf("multi-line name %q", c.Name)
		}
		// Nothing half-written for the bad rows.
		if _, err := s.CustomerByIdentity(ctx, customer.Identity{Kind: customer.PhoneID, Value: "13800000002"}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("invalid row created a customer: %v", err)
		}
	})
}

func TestStrictWritesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		setup(t, s)
		before := dump(t, s)
		rep, err := Customers(ctx, s, strings.NewReader(invalidCSV), Options{Strict: true, BatchSize: 2})
		if !errors.Is(err, ErrInvalidRows) {
			t.Fatalf("strict import: %v", err)
		}
		if rep.Invalid != 4 || rep.Written {
			t.Errorf("report %+v", rep)
		}
		if after := dump(t, s); after != before {
			t.Errorf("strict import with invalid rows wrote:\n%s", after)
		}
		rep, err = Customers(ctx, s, strings.NewReader(chineseCustomers), Options{DryRun: true})
		if err != nil || rep.Created != 3 || rep.Written {
			t.Fatalf("dry run %+v %v", rep, err)
		}
		if after := dump(t, s); after != before {
			t.Errorf("dry run wrote")
		}
		rep, err = Customers(ctx, s, strings.NewReader(chineseCustomers), Options{Strict: true})
		if err != nil || rep.Created != 3 || !rep.Written {
			t.Fatalf("valid strict import %+v %v", rep, err)
		}
	})
}

func TestReimportChangesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		now := setup(t, s)
		importCustomers(t, s, chineseCustomers, Options{})
		if _, err := Orders(ctx, s, strings.NewReader(ordersCSV), Options{}); err != nil {
			t.Fatal(err)
		}
		before := dump(t, s)
		*now = now.Add(48 * time.Hour)
		rep := importCustomers(t, s, chineseCustomers, Options{BatchSize: 1})
		if rep.Unchanged != 3 || rep.Created+rep.Updated != 0 {
			t.Errorf("second customer import %+v", rep)
		}
		orep, err := Orders(ctx, s, strings.NewReader(ordersCSV), Options{})
		if err != nil || orep.Unchanged != 4 || orep.Created+orep.Updated != 0 || orep.Skipped != 1 {
			t.Errorf("second order import %+v %v", orep, err)
		}
		if after := dump(t, s); after != before {
			t.Errorf("re-import changed rows:\nbefore\n%s\nafter\n%s", before, after)
		}
		// A changed cell is an update, and only that customer moves.
		changed := strings.Replace(chineseCustomers, "金卡", "黑金", 1)
		rep = importCustomers(t, s, changed, Options{})
		if rep.Updated != 1 || rep.Unchanged != 2 {
			t.Errorf("changed import %+v", rep)
		}
		if c := find(t, s, customer.UserID, "U001"); c.Attrs["会员等级"] != "黑金" || !c.UpdatedAt.Equal(*now) {
			t.Errorf("after change %+v", c)
		}
	})
}

const ordersCSV = `订单编号,会员ID,手机号,实付金额(元),币种,支付时间,订单状态,退款金额,商品名称,数量
SO-1,U001,,"¥1,299.00",,2025-06-18 20:15:30,已完成,,玻尿酸精华液,2
SO-2,,13900000001,99,CNY,2025/6/1 9:05,已退款,,面膜；洁面乳,
SO-3,U003,,88.5,,2025-05-20T21:00:00+08:00,部分退款,20.50,,
SO-4,U001,,"1,000.10",,1717243200,已支付,,会员年卡,
SO-5,U001,,10,,2025-06-18 20:00,待付款,,,
`

func TestOrdersWithRefunds(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		setup(t, s)
		importCustomers(t, s, chineseCustomers, Options{})
		rep, err := Orders(ctx, s, strings.NewReader(ordersCSV), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Rows != 5 || rep.Created != 4 || rep.Skipped != 1 || rep.Invalid != 0 || rep.CustomersCreated != 1 {
			t.Fatalf("report %+v", rep)
		}
		o1, _ := s.Order(ctx, "SO-1")
		zhang := find(t, s, customer.UserID, "U001")
		if o1.AmountMinor != 129900 || o1.Currency != "CNY" || o1.CustomerID != zhang.ID || o1.Status != event.Paid || o1.Source != "import" ||
			!o1.PaidAt.Equal(time.Date(2025, 6, 18, 20, 15, 30, 0, shanghai)) || len(o1.Products) != 1 || o1.Products[0].Quantity != 2 {
			t.Errorf("SO-1 %+v", o1)
		}
		o2, _ := s.Order(ctx, "SO-2")
		if o2.Status != event.Refunded || o2.RefundedMinor != 9900 || len(o2.Products) != 2 || o2.CustomerID != find(t, s, customer.PhoneID, "13900000001").ID {
			t.Errorf("SO-2 %+v", o2)
		}
		o3, _ := s.Order(ctx, "SO-3")
		if o3.Status != event.PartiallyRefunded || o3.AmountMinor != 8850 || o3.RefundedMinor != 2050 {
			t.Errorf("SO-3 %+v", o3)
		}
		o4, _ := s.Order(ctx, "SO-4")
		if o4.AmountMinor != 100010 || !o4.PaidAt.Equal(time.Unix(1717243200, 0)) {
			t.Errorf("SO-4 %+v", o4)
		}
		if _, err := s.Order(ctx, "SO-5"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unpaid order stored: %v", err)
		}
		// A later export with a bigger refund adds only the difference.
		more := strings.Replace(ordersCSV, "部分退款,20.50", "部分退款,30.00", 1)
		rep, err = Orders(ctx, s, strings.NewReader(more), Options{})
		if err != nil || rep.Updated != 1 || rep.Unchanged != 3 {
			t.Fatalf("second import %+v %v", rep, err)
		}
		if o3, _ = s.Order(ctx, "SO-3"); o3.RefundedMinor != 3000 {
			t.Errorf("refund after re-import %d, want 3000", o3.RefundedMinor)
		}
		bad := "订单号,手机号,金额,下单时间,退款金额\n,13800000000,1,2025-01-01,\nX1,13800000000,abc,2025-01-01,\nX2,13800000000,1.234,2025-01-01,\nX3,13800000000,5,昨天,\nX4,13800000000,5,2025-01-01,6\n"
		rep, err = Orders(ctx, s, strings.NewReader(bad), Options{})
		if err != nil || rep.Invalid != 5 {
			t.Fatalf("bad orders %+v %v", rep, err)
		}
		for i, col := range []string{"订单号", "金额", "金额", "下单时间", "退款金额"} {
			if rep.Errors[i].Column != col || rep.Errors[i].Line != i+2 {
				t.Errorf("error %d %+v, want line %d column %s", i, rep.Errors[i], i+2, col)
			}
		}
	})
}

func TestSQLMetaCharactersAreStoredVerbatim(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		setup(t, s)
		names := []string{`Robert'); DROP TABLE customers;--`, `100% _off_ \n "quoted"`, `$1 ? :name ; --`, `'' OR 1=1`}
		var b strings.Builder
		b.WriteString("user_id,name,note\n")
		for i, n := range names {
			fmt.Fprintf(&b, "q%d,\"%s\",\"%s\"\n", i, strings.ReplaceAll(n, `"`, `""`), strings.ReplaceAll(n, `"`, `""`))
		}
		rep := importCustomers(t, s, b.String(), Options{})
		if rep.Created != len(names) {
			t.Fatalf("report %+v", rep)
		}
		for i, n := range names {
			c := find(t, s, customer.UserID, fmt.Sprintf("q%d", i))
			if c.Name != n || c.Attrs["note"] != n {
				t.Errorf("stored %q / %v, want %q", c.Name, c.Attrs["note"], n)
			}
		}
		rep = importCustomers(t, s, b.String(), Options{})
		if rep.Unchanged != len(names) {
			t.Errorf("re-import %+v", rep)
		}
	})
}

func TestGBK(t *testing.T) {
	gbk, err := simplifiedchinese.GBK.NewEncoder().String(strings.TrimPrefix(chineseCustomers, bom))
	if err != nil {
		t.Fatal(err)
	}
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		setup(t, s)
		rep, err := Customers(ctx, s, strings.NewReader(gbk), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Encoding != EncodingGB18030 || rep.Created != 3 {
			t.Fatalf("report %+v", rep)
		}
		if c := find(t, s, customer.PhoneID, "13800138000"); c.Name != "张伟" || c.Region != "广东省 深圳市" {
			t.Errorf("decoded %+v", c)
		}
	})
	// Not text at all: a clear error naming the encodings tried.
	_, err = Customers(ctx, nil, bytes.NewReader([]byte{0x81, 0x20, 0xff, 0xfe, 0x00, 0x80, 0x81}), Options{})
	if err == nil || !strings.Contains(err.Error(), "neither UTF-8 nor GBK") {
		t.Errorf("binary file: %v", err)
	}
}

func TestDecodeUTF16AndTabs(t *testing.T) {
	text := "手机号\t姓名\r\n13800000000\t小明\r\n"
	u := []byte{0xFF, 0xFE}
	for _, r := range text {
		u = append(u, byte(r), byte(r>>8))
	}
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		setup(t, s)
		rep, err := Customers(ctx, s, bytes.NewReader(u), Options{})
		if err != nil || rep.Encoding != EncodingUTF16 || rep.Created != 1 {
			t.Fatalf("%+v %v", rep, err)
		}
		if c := find(t, s, customer.PhoneID, "13800000000"); c.Name != "小明" {
			t.Errorf("name %q", c.Name)
		}
	})
}

func TestParseMoneyAndTime(t *testing.T) {
	for in, want := range map[string]int64{"99": 9900, "99.00": 9900, "¥1,299.00": 129900, "￥0.5": 50, "1299元": 129900, "RMB 12.5": 1250, ".5": 50, "10.500": 1050} {
		got, err := parseMoney(in, "CNY")
		if err != nil || got != want {
			t.Errorf("parseMoney(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if v, err := parseMoney("1500", "JPY"); err != nil || v != 1500 {
		t.Errorf("JPY %d %v", v, err)
	}
	for _, in := range []string{"", "-5", "1.234", "abc", "1.2.3", "99999999999999999999"} {
		if _, err := parseMoney(in, "CNY"); err == nil {
			t.Errorf("parseMoney(%q) accepted", in)
		}
	}
	want := time.Date(2025, 6, 18, 20, 0, 0, 0, shanghai)
	for _, in := range []string{"2025-06-18 20:00:00", "2025/6/18 20:00", "2025年6月18日 20:00:00", "2025-06-18T12:00:00Z", "1750248000", "1750248000000", "45826.8333333333"} {
		got, err := parseTime(in)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}
