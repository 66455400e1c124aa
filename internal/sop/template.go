package sop

import (
	"errors"
	"fmt"
	"strings"
	"text/template"

	"github.com/siyu-scrm/siyu/internal/customer"
)

// Data is what a step's content template sees: {{.Name}}, {{.Owner}}, {{.Attrs.level}}, …
// An empty field takes a fallback with Go's or: {{or .Name "朋友"}}.
type Data struct {
	ID       int64
	Name     string
	Gender   string
	Birthday string
	Region   string
	Phone    string
	Email    string
	Source   string
	Owner    string // the owner staff member's name
	// Persona and PersonaIntro are the owner's persona (人设) as customers see it: its name
	// (健康管理专家) and introduction; empty when the owner has none.
	Persona      string
	PersonaIntro string
	Attrs        map[string]any
}

// Sender is who a message comes from, as a template shows them: the owner's name and persona.
type Sender struct {
	Name         string
	Persona      string
	PersonaIntro string
}

// noValue is what text/template prints for a missing value; a rendered message holding it
// would reach the customer as garbage, so rendering refuses it.
const noValue = "<no value>"

// ErrEmptyField is returned when a template prints an empty attribute without a fallback.
var ErrEmptyField = errors.New("the template prints an empty attribute with no fallback (use {{or .Attrs.x \"…\"}})")

func parseTemplate(content string) (*template.Template, error) {
	return template.New("content").Option("missingkey=error").Parse(content)
}

// CheckTemplate parses a template and runs it over a customer with every field and defined
// attribute empty, so a misspelt field ({{.Nmae}}) or an attribute that does not exist is an
// error when the SOP is saved, not when it is sent.
func CheckTemplate(content string, attrKeys []string) error {
	t, err := parseTemplate(content)
	if err != nil {
		return cleanTemplateErr(err)
	}
	d := Data{Attrs: map[string]any{}}
	for _, k := range attrKeys {
		d.Attrs[k] = ""
	}
	if err := t.Execute(discard{}, d); err != nil {
		return cleanTemplateErr(err)
	}
	return nil
}

// Render renders content for one customer whose owner is named owner. attrKeys are the
// defined attributes: one the customer lacks is empty, not an error.
func Render(content string, c *customer.Customer, owner string, attrKeys []string) (string, error) {
	return RenderFrom(content, c, Sender{Name: owner}, attrKeys)
}

// RenderFrom is Render with the sender's persona as well.
func RenderFrom(content string, c *customer.Customer, from Sender, attrKeys []string) (string, error) {
	t, err := parseTemplate(content)
	if err != nil {
		return "", cleanTemplateErr(err)
	}
	d := Data{ID: c.ID, Name: c.Name, Gender: c.Gender, Birthday: c.Birthday, Region: c.Region, Phone: c.Phone,
		Email: c.Email, Source: c.Source, Owner: from.Name, Persona: from.Persona, PersonaIntro: from.PersonaIntro, Attrs: map[string]any{}}
	for _, k := range attrKeys {
		d.Attrs[k] = nil
	}
	for k, v := range c.Attrs {
		d.Attrs[k] = v
	}
	var b strings.Builder
	if err := t.Execute(&b, d); err != nil {
		return "", cleanTemplateErr(err)
	}
	if strings.Contains(b.String(), noValue) {
		return "", ErrEmptyField
	}
	return b.String(), nil
}

// cleanTemplateErr drops text/template's "template: content:1:2: executing ..." prefix noise
// but keeps the position.
func cleanTemplateErr(err error) error {
	m := strings.TrimPrefix(err.Error(), "template: ")
	m = strings.Replace(m, `executing "content" at `, "", 1)
	return fmt.Errorf("template %s", strings.TrimPrefix(m, "content:"))
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
