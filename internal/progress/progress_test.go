package progress

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTest(total int64) (*Reporter, *bytes.Buffer, *clock) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	c := &clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	var out bytes.Buffer
	p := New("import", total, &out, logger)
	p.now = c.now
	p.start, p.lastLog = c.t, c.t
	return p, &logs, c
}

func TestNonTTYLogsEveryTenPercentAndAtTheEnd(t *testing.T) {
	p, logs, c := newTest(1000)
	if p.tty {
		t.Fatal("a bytes.Buffer is not a terminal")
	}
	for range 1000 {
		c.t = c.t.Add(time.Millisecond)
		p.Add(1)
	}
	p.Done()
	p.Done()
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	// 10%, 20%, … 90% and the final "done" line.
	if len(lines) != 10 {
		t.Fatalf("got %d log lines, want 10:\n%s", len(lines), logs)
	}
	if !strings.Contains(lines[0], "done=100") || !strings.Contains(lines[0], "percent=10.0") {
		t.Errorf("first line %q", lines[0])
	}
	last := lines[len(lines)-1]
	if !strings.Contains(last, "msg=done") || !strings.Contains(last, "done=1000") || !strings.Contains(last, "rate_per_s=1000") {
		t.Errorf("last line %q", last)
	}
}

func TestNonTTYLogsOnTimeWhenTotalUnknown(t *testing.T) {
	p, logs, c := newTest(0)
	for range 20 {
		c.t = c.t.Add(time.Second)
		p.Add(10)
	}
	if n := strings.Count(logs.String(), "msg=progress"); n != 4 {
		t.Fatalf("got %d progress lines in 20s, want 4 (every 5s):\n%s", n, logs)
	}
	if strings.Contains(logs.String(), "eta=") {
		t.Error("no ETA without a total")
	}
	if p.Count() != 200 {
		t.Errorf("count %d", p.Count())
	}
}

func TestETAAndBar(t *testing.T) {
	p, _, c := newTest(100)
	c.t = c.t.Add(10 * time.Second)
	p.Add(25)
	eta, ok := p.eta(c.t)
	if !ok || eta != 30*time.Second {
		t.Fatalf("eta %v %v, want 30s", eta, ok)
	}
	var out bytes.Buffer
	p.w = &out
	p.draw(c.t, false)
	if got := out.String(); !strings.Contains(got, "25/100") || !strings.Contains(got, "ETA 30s") || !strings.Contains(got, "[=======>") {
		t.Errorf("bar %q", got)
	}
}

func TestNilReporterIsANoOp(t *testing.T) {
	var p *Reporter
	p.Add(5)
	p.SetTotal(3)
	p.Done()
	if p.Count() != 0 {
		t.Fatal("nil count")
	}
}

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4500: "-4,500"} {
		if got := Count(n); got != want {
			t.Errorf("Count(%d) = %q, want %q", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{45 * time.Second: "45s", 185 * time.Second: "3m05s", 62 * time.Minute: "1h02m"} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
}
