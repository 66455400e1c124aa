// Package progress reports how far a long piece of work (an import, demo generation, a rebuild)
// has got. On a terminal it redraws one line with a bar, the count, the rate and the time left;
// anywhere else (a log file, systemd, CI) it writes a structured log line every few seconds or
// every few percent, so logs stay readable.
package progress

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
)

// Reporter counts done units of one piece of work. A nil *Reporter does nothing, so code that
// takes an optional reporter need not check for one. It is safe for concurrent use.
type Reporter struct {
	label  string
	w      io.Writer
	logger *slog.Logger
	tty    bool
	now    func() time.Time

	mu       sync.Mutex
	total    int64
	done     int64
	start    time.Time
	lastDraw time.Time
	lastLog  time.Time
	lastPct  int64 // the percent step last logged
	finished bool
}

// Redraw and log intervals.
const (
	drawEvery = 100 * time.Millisecond
	logEvery  = 5 * time.Second
	logPct    = 10 // also log each time another 10% is done
	barWidth  = 30
)

// New starts reporting on work of total units (0 when unknown: no bar and no ETA). Output goes
// to w when w is a terminal and to logger (slog.Default() when nil) otherwise.
func New(label string, total int64, w io.Writer, logger *slog.Logger) *Reporter {
	if logger == nil {
		logger = slog.Default()
	}
	p := &Reporter{label: label, w: w, logger: logger, total: total, now: time.Now}
	if f, ok := w.(*os.File); ok {
		p.tty = isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
	}
	p.start = p.now()
	p.lastLog = p.start
	return p
}

// SetTotal changes the total, for work whose size becomes known once it has started.
func (p *Reporter) SetTotal(total int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.total = total
	p.mu.Unlock()
}

// Add records n more units done.
func (p *Reporter) Add(n int) {
	if p == nil || n == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += int64(n)
	now := p.now()
	if p.tty {
		if now.Sub(p.lastDraw) >= drawEvery {
			p.lastDraw = now
			p.draw(now, false)
		}
		return
	}
	pct := int64(-1)
	if p.total > 0 {
		pct = p.done * 100 / p.total / logPct * logPct
	}
	if now.Sub(p.lastLog) >= logEvery || (pct > p.lastPct && pct < 100) {
		p.lastLog = now
		if pct > p.lastPct {
			p.lastPct = pct
		}
		p.log(now, "progress")
	}
}

// Done ends the report: the final line on a terminal, a summary log line otherwise. Calling it
// twice is harmless.
func (p *Reporter) Done() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.finished = true
	now := p.now()
	if p.tty {
		p.draw(now, true)
		return
	}
	p.log(now, "done")
}

// Count returns the units done so far.
func (p *Reporter) Count() int64 {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

func (p *Reporter) rate(now time.Time) float64 {
	el := now.Sub(p.start).Seconds()
	if el <= 0 {
		return 0
	}
	return float64(p.done) / el
}

// eta is the time left at the current rate; ok is false when it cannot be told.
func (p *Reporter) eta(now time.Time) (time.Duration, bool) {
	r := p.rate(now)
	if p.total <= 0 || r <= 0 || p.done >= p.total {
		return 0, false
	}
	return time.Duration(float64(p.total-p.done) / r * float64(time.Second)), true
}

func (p *Reporter) draw(now time.Time, final bool) {
	var b strings.Builder
	b.WriteString("\r\x1b[K")
	b.WriteString(p.label)
	b.WriteByte(' ')
	if p.total > 0 {
		frac := min(float64(p.done)/float64(p.total), 1)
		full := int(frac * barWidth)
		b.WriteByte('[')
		b.WriteString(strings.Repeat("=", full))
		if full < barWidth {
			b.WriteByte('>')
			b.WriteString(strings.Repeat(" ", barWidth-full-1))
		}
		fmt.Fprintf(&b, "] %s/%s %3.0f%%", Count(p.done), Count(p.total), frac*100)
	} else {
		b.WriteString(Count(p.done))
	}
	fmt.Fprintf(&b, "  %s/s", Count(int64(p.rate(now))))
	if final {
		fmt.Fprintf(&b, "  in %s\n", Duration(now.Sub(p.start)))
	} else if eta, ok := p.eta(now); ok {
		fmt.Fprintf(&b, "  ETA %s", Duration(eta))
	}
	io.WriteString(p.w, b.String())
}

func (p *Reporter) log(now time.Time, msg string) {
	attrs := []any{"task", p.label, "done", p.done}
	if p.total > 0 {
		attrs = append(attrs, "total", p.total, "percent", fmt.Sprintf("%.1f", float64(p.done)*100/float64(p.total)))
	}
	attrs = append(attrs, "rate_per_s", int64(p.rate(now)), "elapsed", Duration(now.Sub(p.start)))
	if eta, ok := p.eta(now); ok && msg != "done" {
		attrs = append(attrs, "eta", Duration(eta))
	}
	p.logger.Info(msg, attrs...)
}

// Count formats n with thousands separators: 1234567 → "1,234,567".
func Count(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Duration formats d for people: "45s", "3m05s", "1h02m".
func Duration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}
