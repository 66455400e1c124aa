package web

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/device"

	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/store"
	"github.com/siyu-scrm/siyu/internal/survey"
	"github.com/siyu-scrm/siyu/internal/tag"
)

// TestBrowserSurveyOnPhone answers a survey through a customer's signed link in Chromium on a
// 375×667 phone viewport: the page must fit the screen, refuse a missing required answer with
// a message, and on a full answer set the mapped attributes and tags of that customer (read
// back from the store), and nobody else's. The console's results page then shows the answer
// escaped.
func TestBrowserSurveyOnPhone(t *testing.T) {
	b := newBrowserEnv(t)
	ctx := t.Context()
	g := &tag.Group{Name: "问卷兴趣", Kind: tag.Attribute}
	if err := b.st.CreateTagGroup(ctx, g); err != nil {
		t.Fatal(err)
	}
	yoga := &tag.Tag{GroupID: g.ID, Name: "瑜伽爱好者"}
	if err := b.st.CreateTag(ctx, yoga); err != nil {
		t.Fatal(err)
	}
	if err := b.st.DefineAttr(ctx, customer.AttrDef{Key: "skin_type", Type: customer.AttrString, Label: "肤质"}); err != nil {
		t.Fatal(err)
	}
	sv := &survey.Survey{Status: survey.Open, Definition: survey.Definition{
		Title: "护肤习惯小调研", Intro: "花 1 分钟，领取专属试用装。", Thanks: "感谢参与，试用装将由顾问发送给您。", Identify: survey.ByLink,
		Questions: []survey.Question{
			{ID: "gender", Type: survey.Single, Title: "您的性别", Required: true, Map: &survey.Mapping{Target: survey.TargetGender},
				Options: []survey.Option{{ID: "f", Label: "女士", Value: "female"}, {ID: "m", Label: "先生", Value: "male"}}},
			{ID: "hobbies", Type: survey.Multiple, Title: "平时喜欢的运动", MaxChoices: 2, Map: &survey.Mapping{Target: survey.TargetHobbies},
				Options: []survey.Option{{ID: "yoga", Label: "瑜伽", TagIDs: []int64{yoga.ID}}, {ID: "run", Label: "跑步"}, {ID: "swim", Label: "游泳"}}},
			{ID: "skin", Type: survey.Single, Title: "您的肤质", Map: &survey.Mapping{Target: survey.TargetCustom, Attr: "skin_type"},
				Options: []survey.Option{{ID: "dry", Label: "干性"}, {ID: "oily", Label: "油性"}, {ID: "mix", Label: "混合"}}},
			{ID: "where", Type: survey.Region, Title: "所在城市", Map: &survey.Mapping{Target: survey.TargetRegion}},
			{ID: "bday", Type: survey.Date, Title: "生日（送生日礼）", Map: &survey.Mapping{Target: survey.TargetBirthday}},
			{ID: "nps", Type: survey.Rating, Title: "您有多大可能把我们推荐给朋友？", Scale: 10},
			{ID: "note", Type: survey.Text, Title: "还想对我们说", MaxLength: 200},
		},
	}}
	if err := b.st.CreateSurvey(ctx, sv); err != nil {
		t.Fatal(err)
	}
	const who = 42
	before, err := b.st.CustomerTags(ctx, 41)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := b.st.SurveyLinkSecret(ctx)
	if err != nil {
		t.Fatal(err)
	}
	link := b.url + "/s/" + sv.Token + "?" + survey.Sign(secret, sv.ID, who, time.Now().Add(time.Hour)).Encode()

	phone := device.Info{Name: "phone 375x667", UserAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.49",
		Width: 375, Height: 667, Scale: 2, Mobile: true, Touch: true}
	b.run("open the survey on a phone", chromedp.Emulate(phone), chromedp.Navigate(link), chromedp.WaitVisible(`.sp-form`))
	var width int
	b.run("measure the page", chromedp.Evaluate(`document.documentElement.scrollWidth`, &width))
	if width > 375 {
		t.Errorf("the page is %d px wide on a 375 px screen", width)
	}
	b.screenshot("survey-phone")

	b.run("submit with nothing answered", chromedp.Click(`.sp-button`, chromedp.NodeVisible), chromedp.WaitVisible(`#q-gender .sp-err`))
	var msg string
	b.run("read the problem", chromedp.Text(`#q-gender .sp-err`, &msg))
	if !strings.Contains(msg, "必答题") {
		t.Errorf("the required question says %q", msg)
	}
	b.screenshot("survey-phone-required")

	b.run("answer",
		chromedp.Click(`#q-gender input[value=f]`, chromedp.NodeVisible),
		chromedp.Click(`#q-hobbies input[value=yoga]`, chromedp.NodeVisible),
		chromedp.Click(`#q-hobbies input[value=swim]`, chromedp.NodeVisible),
		chromedp.Click(`#q-skin input[value=mix]`, chromedp.NodeVisible),
		pick(`#q-where select[data-province]`, 0, "浙江省"),
		pick(`#q-where select[data-city]`, 0, "杭州市"),
		pick(`#q-bday input[type=date]`, 0, "1995-08-20"),
		chromedp.Click(`#q-nps label.sp-rate:nth-child(9)`, chromedp.NodeVisible),
		chromedp.SendKeys(`#q-note textarea`, "<script>alert('hi')</script>希望多出小样"),
	)
	b.screenshot("survey-phone-filled")
	b.run("submit", chromedp.Click(`.sp-button`, chromedp.NodeVisible), chromedp.WaitVisible(`[data-state=done]`))
	b.screenshot("survey-phone-done")

	c, err := b.st.Customer(ctx, who)
	if err != nil {
		t.Fatal(err)
	}
	if c.Gender != "female" || c.Region != "浙江省杭州市" || c.Birthday != "1995-08-20" || c.Attrs["skin_type"] != "混合" {
		t.Errorf("customer %d after answering: gender %q region %q birthday %q skin %v", who, c.Gender, c.Region, c.Birthday, c.Attrs["skin_type"])
	}
	if h, _ := c.Attrs["hobbies"].([]any); len(h) != 2 || h[0] != "瑜伽" || h[1] != "游泳" {
		t.Errorf("hobbies %v", c.Attrs["hobbies"])
	}
	as, err := b.st.CustomerTags(ctx, who)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(as, func(a tag.Assignment) bool { return a.Tag.ID == yoga.ID && a.Reason == tag.ReasonSurvey }) {
		t.Errorf("customer %d's tags %+v lack 瑜伽爱好者 from the survey", who, as)
	}
	if after, _ := b.st.CustomerTags(ctx, 41); len(after) != len(before) {
		t.Errorf("customer 41's tags changed: %v → %v", before, after)
	}
	page, err := b.st.SurveyResponses(ctx, store.ResponseFilter{SurveyID: sv.ID})
	if err != nil || len(page.Responses) != 1 || page.Responses[0].Answers["nps"].Number == nil || *page.Responses[0].Answers["nps"].Number != 9 {
		t.Fatalf("stored responses %+v %v", page, err)
	}

	// The results page in the console, signed in, on a desktop viewport.
	b.run("sign in", chromedp.Emulate(device.Reset), chromedp.EmulateViewport(1366, 900),
		chromedp.Navigate(b.url+"/login"), chromedp.WaitVisible(`input[name=login]`),
		chromedp.SendKeys(`input[name=login]`, "admin"), chromedp.SendKeys(`input[name=password]`, browserPassword),
		chromedp.Submit(`input[name=password]`), chromedp.WaitVisible(`.sidebar a[href="/surveys"]`))
	b.run("open the results", chromedp.Navigate(b.url+"/surveys/"+strconv.FormatInt(sv.ID, 10)), chromedp.WaitVisible(`#result-note .answer-text`))
	var shown string
	var scripts int
	b.run("read the text answer", chromedp.Text(`#result-note .answer-text`, &shown), chromedp.Evaluate(`document.querySelectorAll("main script").length`, &scripts))
	if !strings.Contains(shown, "<script>alert('hi')</script>") || scripts != 0 {
		t.Errorf("the text answer reads %q with %d scripts in the page", shown, scripts)
	}
	b.screenshot("survey-results")
	b.run("open the builder", chromedp.Navigate(b.url+"/surveys/"+strconv.FormatInt(sv.ID, 10)+"/edit"), chromedp.WaitVisible(`.sb-question`))
	b.screenshot("survey-builder")

	// Build a new survey with the visual builder: the starter questions plus one added by hand.
	b.run("open a new survey", chromedp.Navigate(b.url+"/surveys/new"), chromedp.WaitVisible(`.sb-question`))
	var before2 int
	b.run("count questions", chromedp.Evaluate(`document.querySelectorAll(".sb-question").length`, &before2))
	b.run("add a question",
		chromedp.Click(`#survey-builder > button.button`, chromedp.NodeVisible),
		chromedp.WaitVisible(`.sb-question:nth-of-type(`+strconv.Itoa(before2+2)+`)`),
		chromedp.SendKeys(`document.querySelectorAll(".sb-question")[`+strconv.Itoa(before2)+`].querySelector(".sb-row input[type=text]")`, "您最关心的护肤问题", chromedp.ByJSPath),
		chromedp.SendKeys(`document.querySelectorAll(".sb-question")[`+strconv.Itoa(before2)+`].querySelectorAll(".sb-option input[type=text]")[0]`, "补水", chromedp.ByJSPath),
		chromedp.SendKeys(`document.querySelectorAll(".sb-question")[`+strconv.Itoa(before2)+`].querySelectorAll(".sb-option input[type=text]")[2]`, "控油", chromedp.ByJSPath),
	)
	b.screenshot("survey-builder-new")
	b.run("save it", chromedp.Click(`#survey-form button.primary`, chromedp.NodeVisible), chromedp.WaitVisible(`.survey-results`))
	page2, err := b.st.ListSurveys(ctx, store.SurveyFilter{})
	if err != nil || len(page2.Surveys) != 2 {
		t.Fatalf("surveys after saving from the builder: %+v %v", page2, err)
	}
	made := page2.Surveys[0]
	last := made.Questions[len(made.Questions)-1]
	if len(made.Questions) != before2+1 || last.Title != "您最关心的护肤问题" || last.Type != survey.Single || last.Options[0].Label != "补水" || last.Options[1].Label != "控油" {
		t.Fatalf("the builder saved %+v", made.Definition)
	}
}
