package demo

// The tables a demo data set is drawn from. Weights are rough shares, not statistics.

// surnames are the most common Chinese surnames, weighted by how common they are.
var surnames = weighted[string]{
	{"王", 71}, {"李", 70}, {"张", 66}, {"刘", 53}, {"陈", 45}, {"杨", 32}, {"黄", 23}, {"赵", 22}, {"吴", 20}, {"周", 20},
	{"徐", 15}, {"孙", 15}, {"马", 14}, {"朱", 13}, {"胡", 13}, {"郭", 12}, {"何", 12}, {"林", 11}, {"高", 11}, {"罗", 11},
	{"郑", 10}, {"梁", 10}, {"谢", 8}, {"宋", 8}, {"唐", 8}, {"许", 7}, {"韩", 7}, {"冯", 7}, {"邓", 7}, {"曹", 7},
	{"彭", 6}, {"曾", 6}, {"肖", 6}, {"田", 6}, {"董", 6}, {"袁", 5}, {"潘", 5}, {"于", 5}, {"蒋", 5}, {"蔡", 5},
	{"余", 5}, {"杜", 5}, {"叶", 5}, {"程", 5}, {"苏", 4}, {"魏", 4}, {"吕", 4}, {"丁", 4}, {"任", 4}, {"沈", 4},
	{"姚", 4}, {"卢", 4}, {"姜", 3}, {"崔", 3}, {"钟", 3}, {"谭", 3}, {"陆", 3}, {"汪", 3}, {"范", 3}, {"金", 3},
	{"石", 3}, {"廖", 3}, {"贾", 3}, {"夏", 3}, {"韦", 3}, {"方", 2}, {"白", 2}, {"邹", 2}, {"孟", 2}, {"熊", 2},
	{"秦", 2}, {"邱", 2}, {"江", 2}, {"尹", 2}, {"薛", 2}, {"闫", 2}, {"段", 2}, {"雷", 2}, {"侯", 2}, {"龙", 2},
	{"史", 2}, {"陶", 2}, {"黎", 2}, {"贺", 2}, {"顾", 2}, {"毛", 2}, {"郝", 2}, {"龚", 2}, {"邵", 2}, {"万", 2},
	{"欧阳", 1}, {"司马", 1}, {"上官", 1}, {"诸葛", 1},
}

// Given-name characters by gender; a name is one or two of them.
var (
	femaleChars = []string{"芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "秀", "玲", "婷", "雪", "琳", "颖", "慧", "佳", "欣", "怡", "悦", "萱",
		"梦", "琪", "晨", "瑶", "璐", "倩", "洁", "莉", "蕾", "薇", "楠", "雯", "露", "妍", "诗", "涵", "可", "心", "若", "雨", "思", "彤", "嘉", "晓", "小", "子"}
	maleChars = []string{"伟", "强", "磊", "军", "勇", "杰", "涛", "明", "超", "刚", "平", "辉", "鹏", "华", "飞", "斌", "宇", "浩", "凯", "健",
		"俊", "帆", "晨", "博", "文", "昊", "然", "轩", "睿", "泽", "一", "子", "天", "志", "建", "国", "海", "峰", "亮", "瑞", "成", "振", "家", "嘉", "晓"}
)

// nicknames stand in for the WeChat nicknames many contacts are only known by.
var nicknames = []string{"小鱼儿", "Cherry", "静待花开", "阳光总在风雨后", "Amy", "奶茶不加糖", "一只小可爱", "Lucky", "晴天", "木子",
	"向日葵", "追风少年", "Vivian", "简单点", "半糖主义", "花开半夏", "Grace", "慢慢来", "星星点灯", "Coco", "岁月静好", "Sunny",
	"糖糖妈妈", "安然", "Kevin", "橙子", "momo", "知足常乐", "小太阳", "Jason", "大白", "初心", "Emma", "西瓜太郎", "七月", "Anna"}

type city struct {
	name   string
	weight int
	tier   string
}

type province struct {
	name   string
	weight int // population, millions (2020 census, rounded)
	cities []city
}

// City tiers as marketers use them.
const (
	tier1    = "一线"
	tierNew1 = "新一线"
	tier2    = "二线"
	tier3    = "三线及以下"
)

var provinces = []province{
	{"广东省", 126, []city{{"广州市", 19, tier1}, {"深圳市", 18, tier1}, {"东莞市", 10, tierNew1}, {"佛山市", 10, tierNew1}, {"汕头市", 6, tier3}, {"湛江市", 7, tier3}}},
	{"山东省", 101, []city{{"青岛市", 10, tierNew1}, {"济南市", 9, tier2}, {"临沂市", 11, tier3}, {"潍坊市", 9, tier3}, {"烟台市", 7, tier2}}},
	{"河南省", 99, []city{{"郑州市", 13, tierNew1}, {"南阳市", 10, tier3}, {"洛阳市", 7, tier3}, {"周口市", 9, tier3}}},
	{"江苏省", 85, []city{{"苏州市", 13, tierNew1}, {"南京市", 9, tierNew1}, {"无锡市", 7, tier2}, {"徐州市", 9, tier2}, {"常州市", 5, tier2}}},
	{"四川省", 84, []city{{"成都市", 21, tierNew1}, {"绵阳市", 5, tier3}, {"南充市", 6, tier3}, {"宜宾市", 5, tier3}}},
	{"河北省", 75, []city{{"石家庄市", 11, tier2}, {"保定市", 11, tier3}, {"唐山市", 8, tier2}, {"邯郸市", 9, tier3}}},
	{"湖南省", 66, []city{{"长沙市", 10, tierNew1}, {"衡阳市", 7, tier3}, {"株洲市", 4, tier3}, {"岳阳市", 5, tier3}}},
	{"浙江省", 65, []city{{"杭州市", 12, tierNew1}, {"宁波市", 9, tierNew1}, {"温州市", 10, tier2}, {"金华市", 7, tier2}, {"绍兴市", 5, tier2}}},
	{"安徽省", 61, []city{{"合肥市", 9, tierNew1}, {"阜阳市", 8, tier3}, {"芜湖市", 4, tier3}}},
	{"湖北省", 58, []city{{"武汉市", 12, tierNew1}, {"襄阳市", 5, tier3}, {"宜昌市", 4, tier3}, {"荆州市", 5, tier3}}},
	{"广西壮族自治区", 50, []city{{"南宁市", 9, tier2}, {"柳州市", 4, tier3}, {"桂林市", 5, tier3}}},
	{"云南省", 47, []city{{"昆明市", 8, tierNew1}, {"曲靖市", 6, tier3}, {"大理市", 3, tier3}}},
	{"江西省", 45, []city{{"南昌市", 6, tier2}, {"赣州市", 9, tier3}, {"九江市", 5, tier3}}},
	{"辽宁省", 43, []city{{"沈阳市", 9, tierNew1}, {"大连市", 7, tier2}, {"鞍山市", 3, tier3}}},
	{"福建省", 41, []city{{"福州市", 8, tier2}, {"厦门市", 5, tier2}, {"泉州市", 9, tier2}}},
	{"陕西省", 40, []city{{"西安市", 13, tierNew1}, {"咸阳市", 4, tier3}, {"宝鸡市", 3, tier3}}},
	{"贵州省", 39, []city{{"贵阳市", 6, tier2}, {"遵义市", 7, tier3}}},
	{"山西省", 35, []city{{"太原市", 5, tier2}, {"大同市", 3, tier3}, {"运城市", 5, tier3}}},
	{"重庆市", 32, []city{{"重庆市", 1, tierNew1}}},
	{"黑龙江省", 32, []city{{"哈尔滨市", 10, tier2}, {"大庆市", 3, tier3}, {"齐齐哈尔市", 4, tier3}}},
	{"新疆维吾尔自治区", 26, []city{{"乌鲁木齐市", 4, tier2}, {"喀什市", 2, tier3}}},
	{"上海市", 25, []city{{"上海市", 1, tier1}}},
	{"甘肃省", 25, []city{{"兰州市", 4, tier2}, {"天水市", 3, tier3}}},
	{"内蒙古自治区", 24, []city{{"呼和浩特市", 3, tier2}, {"包头市", 3, tier3}}},
	{"吉林省", 24, []city{{"长春市", 9, tier2}, {"吉林市", 4, tier3}}},
	{"北京市", 22, []city{{"北京市", 1, tier1}}},
	{"天津市", 14, []city{{"天津市", 1, tierNew1}}},
	{"海南省", 10, []city{{"海口市", 3, tier2}, {"三亚市", 1, tier3}}},
	{"宁夏回族自治区", 7, []city{{"银川市", 3, tier3}}},
	{"青海省", 6, []city{{"西宁市", 2, tier3}}},
	{"西藏自治区", 4, []city{{"拉萨市", 1, tier3}}},
}

// Sources are the acquisition channels of a private-domain operation.
var sources = weighted[string]{{"渠道活码", 30}, {"公众号", 20}, {"小红书", 15}, {"抖音", 15}, {"门店", 12}, {"电商平台", 8}}

// qrCodes names the channel QR codes (渠道活码) each source adds contacts through.
var qrCodes = map[string][]string{
	"渠道活码": {"包裹卡活码", "618活动海报活码", "新人福利活码", "直播间引流活码"},
	"公众号":  {"公众号菜单-加福利官", "推文底部活码"},
	"小红书":  {"小红书主页引流码", "笔记评论区活码"},
	"抖音":   {"抖音直播间福袋码", "抖音主页引流码"},
	"门店":   {"门店收银台活码-静安店", "门店收银台活码-天河店", "门店导购活码-春熙路店"},
	"电商平台": {"天猫包裹卡活码", "京东售后卡活码"},
}

// groups are the community groups customers join.
var groups = weighted[[2]string]{
	{[2]string{"新人福利群", "普通会员群"}, 40}, {[2]string{"护肤交流群", "普通会员群"}, 25}, {[2]string{"宝妈好物群", "普通会员群"}, 15},
	{[2]string{"VIP会员专属群", "高级会员群"}, 8}, {[2]string{"合伙人群", "合伙人群"}, 4}, {[2]string{"直播秒杀群", "活动群"}, 8},
}

type product struct {
	id, name, category string
	priceMinor         int64
}

// products is a skincare brand's catalogue, weighted by how often it is bought: cheap trial
// sizes and masks sell most, gift sets and annual plans make the revenue tail.
var products = weighted[product]{
	{product{"P001", "氨基酸洁面乳", "洁面", 8900}, 16},
	{product{"P002", "玻尿酸补水精华液", "精华", 19900}, 12},
	{product{"P003", "烟酰胺美白面膜10片装", "面膜", 9900}, 18},
	{product{"P004", "清透防晒霜SPF50", "防晒", 12900}, 11},
	{product{"P005", "修护舒缓乳液", "乳液", 15900}, 7},
	{product{"P006", "视黄醇抗老晚霜", "面霜", 29900}, 5},
	{product{"P007", "旅行装体验套组", "套组", 3990}, 14},
	{product{"P008", "9.9元新人试用装", "试用", 990}, 10},
	{product{"P009", "明星单品礼盒", "礼盒", 59900}, 3},
	{product{"P010", "年度护肤会员套装", "会员", 299900}, 1},
	{product{"P011", "卸妆油", "洁面", 11900}, 6},
	{product{"P012", "眼霜", "眼部", 25900}, 4},
}

var hobbies = []string{"跑步", "瑜伽", "阅读", "旅行", "烘焙", "摄影", "追剧", "健身", "美妆", "育儿", "咖啡", "露营", "宠物", "音乐", "美食"}

var pages = weighted[[2]string]{
	{[2]string{"首页", "/"}, 30}, {[2]string{"商品详情页", "/product/"}, 30}, {[2]string{"活动页", "/campaign/"}, 15},
	{[2]string{"会员中心", "/member"}, 10}, {[2]string{"购物车", "/cart"}, 8}, {[2]string{"护肤知识文章", "/article/"}, 7},
}

var consultTopics = weighted[string]{{"产品咨询", 40}, {"肤质推荐", 20}, {"物流查询", 15}, {"售后退换", 10}, {"优惠活动", 15}}

var coupons = weighted[[2]any]{{[2]any{"新人满99减20", 20.0}, 40}, {[2]any{"满199减30", 30.0}, 35}, {[2]any{"会员日8折券", 0.0}, 25}}

var surveys = []string{"肤质测试问卷", "新客需求调研", "产品满意度调查"}

var skinTypes = []string{"干性", "油性", "混合性", "敏感性", "中性"}

var checkinTasks = []string{"21天早起护肤打卡", "每日补水打卡", "7天早C晚A打卡"}

var lives = []string{"周三护肤直播", "会员日直播", "新品发布直播"}

// demoStaff is the team: sales in two departments, community operators, content.
var demoStaff = []struct{ login, name, dept, role string }{
	{"sales01", "王芳", "销售一部", "sales"}, {"sales02", "李强", "销售一部", "sales"}, {"sales03", "张敏", "销售一部", "sales"},
	{"sales04", "刘洋", "销售一部", "sales"}, {"sales05", "陈静", "销售一部", "sales"}, {"sales06", "杨磊", "销售一部", "sales"},
	{"sales07", "黄丽", "销售一部", "sales"}, {"sales08", "赵军", "销售二部", "sales"}, {"sales09", "周婷", "销售二部", "sales"},
	{"sales10", "吴涛", "销售二部", "sales"}, {"sales11", "徐娟", "销售二部", "sales"}, {"sales12", "孙鹏", "销售二部", "sales"},
	{"sales13", "马艳", "销售二部", "sales"}, {"sales14", "朱浩", "销售二部", "sales"},
	{"ops01", "胡晓雯", "社群运营部", "operator"}, {"ops02", "郭子涵", "社群运营部", "operator"}, {"ops03", "林悦", "用户运营部", "operator"},
	{"ops04", "何嘉欣", "用户运营部", "operator"},
	{"content01", "高思彤", "内容组", "content"}, {"content02", "罗一帆", "内容组", "content"},
}

// hourWeights shape when people are active: a lunch bump and the evening peak at 20:00.
var hourWeights = [24]float64{0.5, 0.25, 0.12, 0.08, 0.06, 0.1, 0.3, 0.8, 1.2, 1.3, 1.3, 1.4, 1.9, 1.5, 1.2, 1.2, 1.2, 1.3, 1.6, 2.3, 3.1, 2.8, 2.0, 1.1}
