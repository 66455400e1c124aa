package sop

import (
	"context"
	"os"
	"time"

	"github.com/siyu-scrm/siyu/internal/scheduler"
	"github.com/siyu-scrm/siyu/internal/store"
)

// Run is what siyu serve starts: it loads the contact policy, sets the adapters of the
// automatic channels — a signed webhook when SIYU_SOP_WEBHOOK_URL is set (secret
// SIYU_SOP_WEBHOOK_SECRET), for the webhook, SMS and email channels, the log adapter
// otherwise — and runs a scheduler over the SOP jobs every interval until ctx ends. Every
// instance on one PostgreSQL may run it: jobs are leased to one at a time.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	s.RunOn(ctx, scheduler.New(s.st, "", s.log), interval)
}

// RunOn is Run on a scheduler shared with other kinds of job (the models' recomputes): a
// scheduler claims every due job whatever its kind, so a process runs one scheduler with
// every handler registered on it.
func (s *Service) RunOn(ctx context.Context, sch *scheduler.Scheduler, interval time.Duration) {
	if err := s.LoadPolicy(ctx); err != nil {
		s.log.Error("sop: the saved contact policy cannot be read; using the default", "err", err)
	}
	var a Adapter = LogAdapter{Log: s.log}
	if url := os.Getenv("SIYU_SOP_WEBHOOK_URL"); url != "" {
		a = &WebhookAdapter{URL: url, Secret: os.Getenv("SIYU_SOP_WEBHOOK_SECRET")}
	}
	for ch := range AutoChannels {
		if s.adapter(ch) == nil {
			s.SetAdapter(ch, a)
		}
	}
	s.Register(sch)
	s.st.Subscribe(func(c *store.Changes) {
		if len(c.Events) > 0 { // an event may have planned a touch due now
			sch.Wake()
		}
	})
	sch.Run(ctx, interval)
}
