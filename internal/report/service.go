package report

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"

	"github.com/siyu-scrm/siyu/internal/analytics"
	"github.com/siyu-scrm/siyu/internal/customer"
	"github.com/siyu-scrm/siyu/internal/email"
	"github.com/siyu-scrm/siyu/internal/locale"
	"github.com/siyu-scrm/siyu/internal/scheduler"
	"github.com/siyu-scrm/siyu/internal/segment"
	"github.com/siyu-scrm/siyu/internal/store"
)

// JobKind is the scheduler job that sends the weekly report.
const JobKind = "report.weekly"

// settingsKey keeps Settings in the settings table.
const settingsKey = "report.weekly"

// Settings say whether and to whom the weekly report goes.
type Settings struct {
	Enabled    bool     `json:"enabled"`
	Recipients []string `json:"recipients"`
	Lang       string   `json:"lang"` // zh-CN (default) or en
	// LastSent is the Monday of the last week sent, and when.
	LastWeek string    `json:"last_week,omitempty"`
	LastAt   time.Time `json:"last_at,omitzero"`
}

// Validate names the first bad field.
func (s *Settings) Validate() error {
	if len(s.Recipients) > 50 {
		return &customer.FieldError{Field: "recipients", Reason: "at most 50"}
	}
	for i, r := range s.Recipients {
		if _, err := mail.ParseAddress(r); err != nil || strings.ContainsAny(r, "<>") {
			return &customer.FieldError{Field: fmt.Sprintf("recipients[%d]", i), Reason: "must be an email address"}
		}
	}
	if s.Enabled && len(s.Recipients) == 0 {
		return &customer.FieldError{Field: "recipients", Reason: "add a recipient to send the report"}
	}
	switch s.Lang {
	case "":
		s.Lang = locale.Default
	case locale.ZhCN, locale.En:
	default:
		return &customer.FieldError{Field: "lang", Reason: "want zh-CN or en"}
	}
	return nil
}

// Sender delivers an email (email.Sender; tests pass a fake).
type Sender interface {
	Send(ctx context.Context, m *email.Message) error
}

// Service builds the report and sends it every Monday at SendAt (Asia/Shanghai).
type Service struct {
	Store   *store.Store
	Members Members
	Mail    Sender // nil: SMTP is not configured; sending is refused with a clear error
	Log     *slog.Logger
	Loc     *time.Location
	// SendAt is the Monday time of day the report goes out, "09:00" by default.
	SendAt string
	wake   func()
}

// New returns a service; mail may be nil.
func New(st *store.Store, members Members, mail Sender, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{Store: st, Members: members, Mail: mail, Log: log, Loc: segment.Shanghai, SendAt: "09:00"}
}

// Settings reads the saved settings.
func (s *Service) Settings(ctx context.Context) (*Settings, error) {
	st := &Settings{Lang: locale.Default, Recipients: []string{}}
	v, ok, err := s.Store.Setting(ctx, settingsKey)
	if err != nil || !ok {
		return st, err
	}
	if err := json.Unmarshal([]byte(v), st); err != nil {
		return nil, fmt.Errorf("weekly report settings: %w", err)
	}
	return st, nil
}

// SetSettings validates and saves whether and to whom the report goes, keeping the record of
// the last one sent, and makes sure the next Monday's job is queued.
func (s *Service) SetSettings(ctx context.Context, in *Settings, now time.Time) (*Settings, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	cur, err := s.Settings(ctx)
	if err != nil {
		return nil, err
	}
	in.LastWeek, in.LastAt = cur.LastWeek, cur.LastAt
	if err := s.save(ctx, in); err != nil {
		return nil, err
	}
	if _, err := s.Ensure(ctx, now); err != nil {
		return nil, err
	}
	return in, nil
}

func (s *Service) save(ctx context.Context, st *Settings) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.Store.SetSetting(ctx, settingsKey, string(b))
}

// Register makes sch run the weekly report jobs.
func (s *Service) Register(sch *scheduler.Scheduler) {
	sch.Handle(JobKind, s.handle)
	s.wake = sch.Wake
}

// Next is the first Monday SendAt strictly after now.
func (s *Service) Next(now time.Time) time.Time {
	h, m := 9, 0
	fmt.Sscanf(s.SendAt, "%d:%d", &h, &m)
	local := now.In(s.Loc)
	d := Monday(segment.DayOf(now, s.Loc))
	for {
		t := d.Start(s.Loc).Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
		if t.After(local) {
			return t
		}
		d += 7
	}
}

type payload struct {
	At time.Time `json:"at"`
}

// Ensure queues the next Monday's job unless it is queued already, and returns its time.
func (s *Service) Ensure(ctx context.Context, now time.Time) (time.Time, error) {
	next := s.Next(now)
	data, _ := json.Marshal(payload{At: next})
	_, err := s.Store.EnqueueJob(ctx, &store.Job{Kind: JobKind, Key: JobKind + ":" + next.UTC().Format(time.RFC3339), RunAt: next, Payload: data, MaxAttempts: 5})
	return next, err
}

// handle sends last week's report when the report is on, then queues next Monday's. A week
// already sent is not sent again (a retried or duplicated job).
func (s *Service) handle(ctx context.Context, j *store.Job) error {
	now := s.Store.Now()
	defer func() {
		if _, err := s.Ensure(ctx, now); err != nil {
			s.Log.Error("weekly report: queue the next one", "err", err)
		}
	}()
	st, err := s.Settings(ctx)
	if err != nil {
		return err
	}
	if !st.Enabled {
		return nil
	}
	week := LastFullWeek(now, s.Loc)
	if st.LastWeek == day(week) {
		return nil
	}
	if s.Mail == nil {
		s.Log.Warn("weekly report: on, but SMTP is not configured (SIYU_SMTP_URL); not sent")
		return nil
	}
	if err := s.Send(ctx, week, st, now); err != nil {
		return err
	}
	return nil
}

// Send builds the report of the week starting monday over every customer and mails it to the
// settings' recipients, then records it as sent.
func (s *Service) Send(ctx context.Context, monday segment.Day, st *Settings, now time.Time) error {
	if s.Mail == nil {
		return &customer.FieldError{Field: "smtp", Reason: "SMTP is not configured: set SIYU_SMTP_URL"}
	}
	if len(st.Recipients) == 0 {
		return &customer.FieldError{Field: "recipients", Reason: "add a recipient first"}
	}
	rep, err := Build(ctx, s.Store, s.Members, analytics.Scope{}, monday, now, s.Loc)
	if err != nil {
		return err
	}
	html, err := rep.HTML(st.Lang, true)
	if err != nil {
		return err
	}
	msg := &email.Message{To: st.Recipients, Subject: rep.Subject(st.Lang), Text: rep.Text(st.Lang), HTML: string(html)}
	if err := s.Mail.Send(ctx, msg); err != nil {
		return fmt.Errorf("weekly report: %w", err)
	}
	st.LastWeek, st.LastAt = day(monday), now
	s.Log.Info("weekly report sent", "week", st.LastWeek, "recipients", len(st.Recipients))
	return s.save(ctx, st)
}
