package survey

// Province is a provincial-level division with its main cities. A region answer is a province
// and, optionally, one of its cities; the customer's region becomes "广东省深圳市" (the form
// the rest of siyu uses), or the province alone, or the city alone for the four
// municipalities.
type Province struct {
	Name   string   `json:"name"`
	Cities []string `json:"cities"`
}

// Provinces is a small embedded list: every provincial-level division and its larger cities.
// It is meant for marketing segmentation, not for postal addresses.
var Provinces = []Province{
	{"北京市", []string{"北京市"}},
	{"天津市", []string{"天津市"}},
	{"上海市", []string{"上海市"}},
	{"重庆市", []string{"重庆市"}},
	{"河北省", []string{"石家庄市", "唐山市", "保定市", "邯郸市", "廊坊市", "沧州市", "秦皇岛市"}},
	{"山西省", []string{"太原市", "大同市", "运城市", "临汾市", "长治市"}},
	{"内蒙古自治区", []string{"呼和浩特市", "包头市", "鄂尔多斯市", "赤峰市"}},
	{"辽宁省", []string{"沈阳市", "大连市", "鞍山市", "锦州市"}},
	{"吉林省", []string{"长春市", "吉林市", "延边朝鲜族自治州"}},
	{"黑龙江省", []string{"哈尔滨市", "大庆市", "齐齐哈尔市", "牡丹江市"}},
	{"江苏省", []string{"南京市", "苏州市", "无锡市", "常州市", "南通市", "徐州市", "扬州市", "盐城市"}},
	{"浙江省", []string{"杭州市", "宁波市", "温州市", "绍兴市", "嘉兴市", "金华市", "台州市", "湖州市"}},
	{"安徽省", []string{"合肥市", "芜湖市", "阜阳市", "蚌埠市", "安庆市"}},
	{"福建省", []string{"福州市", "厦门市", "泉州市", "漳州市", "莆田市"}},
	{"江西省", []string{"南昌市", "赣州市", "九江市", "上饶市"}},
	{"山东省", []string{"济南市", "青岛市", "烟台市", "潍坊市", "临沂市", "济宁市", "淄博市"}},
	{"河南省", []string{"郑州市", "洛阳市", "南阳市", "新乡市", "周口市", "商丘市"}},
	{"湖北省", []string{"武汉市", "宜昌市", "襄阳市", "荆州市", "黄冈市"}},
	{"湖南省", []string{"长沙市", "株洲市", "衡阳市", "岳阳市", "常德市"}},
	{"广东省", []string{"广州市", "深圳市", "东莞市", "佛山市", "珠海市", "惠州市", "中山市", "汕头市", "湛江市", "江门市"}},
	{"广西壮族自治区", []string{"南宁市", "柳州市", "桂林市", "玉林市"}},
	{"海南省", []string{"海口市", "三亚市"}},
	{"四川省", []string{"成都市", "绵阳市", "德阳市", "南充市", "宜宾市", "泸州市"}},
	{"贵州省", []string{"贵阳市", "遵义市", "毕节市"}},
	{"云南省", []string{"昆明市", "曲靖市", "大理白族自治州", "红河哈尼族彝族自治州"}},
	{"西藏自治区", []string{"拉萨市"}},
	{"陕西省", []string{"西安市", "咸阳市", "宝鸡市", "榆林市"}},
	{"甘肃省", []string{"兰州市", "天水市", "酒泉市"}},
	{"青海省", []string{"西宁市"}},
	{"宁夏回族自治区", []string{"银川市", "石嘴山市"}},
	{"新疆维吾尔自治区", []string{"乌鲁木齐市", "喀什地区", "伊犁哈萨克自治州"}},
	{"香港特别行政区", []string{"香港"}},
	{"澳门特别行政区", []string{"澳门"}},
	{"台湾省", []string{"台北市", "高雄市", "台中市"}},
}

// province finds a province by name.
func province(name string) *Province {
	for i := range Provinces {
		if Provinces[i].Name == name {
			return &Provinces[i]
		}
	}
	return nil
}

// hasCity reports whether city is one of p's cities.
func (p *Province) hasCity(city string) bool {
	for _, c := range p.Cities {
		if c == city {
			return true
		}
	}
	return false
}

// RegionText joins a province and city as the customer's region: "广东省深圳市", "上海市"
// (a municipality is its own city), "广东省" without a city.
func RegionText(prov, city string) string {
	if city == "" || city == prov {
		return prov
	}
	return prov + city
}
