package display

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/janpfeifer/gonb/gonbui"
)

// Progress is a progress bar. In a notebook it is one output block redrawn in
// place (at most every Every, and always on Done); outside a notebook it prints
// a line to the progress stream each time another tenth of the total is reached,
// and one on Done. It is safe for concurrent use.
type Progress struct {
	// Every is the minimum time between two redraws in a notebook (default 200 ms).
	Every time.Duration

	mu        sync.Mutex
	label     string
	total     int
	done      int
	status    string
	id        string
	start     time.Time
	lastDraw  time.Time
	lastTenth int
	finished  bool
	now       func() time.Time
}

// NewProgress starts a progress bar for total steps (total ≤ 0: unknown total,
// only the count is shown).
func NewProgress(label string, total int) *Progress {
	p := &Progress{label: label, total: total, now: time.Now, lastTenth: 0}
	p.start = p.now()
	if InNotebook() {
		p.id = "prism-progress-" + gonbui.UniqueId()
		p.drawLocked(true)
	}
	return p
}

// Add advances the bar by n steps.
func (p *Progress) Add(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setLocked(p.done + n)
}

// Set moves the bar to done steps.
func (p *Progress) Set(done int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.setLocked(done)
}

// SetStatus sets a short status text shown after the counts (for example the
// latest loss).
func (p *Progress) SetStatus(status string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.status = status
	p.drawLocked(false)
}

// Done marks the bar finished and draws its final state.
func (p *Progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.finished {
		return
	}
	p.finished = true
	if p.id != "" {
		p.drawLocked(true)
		gonbui.Sync()
		return
	}
	printErr("%s\n", p.textLocked())
}

func (p *Progress) setLocked(done int) {
	if p.finished {
		return
	}
	p.done = done
	if p.id != "" {
		p.drawLocked(p.total > 0 && done >= p.total)
		return
	}
	if p.total > 0 {
		tenth := min(10, 10*p.done/p.total)
		if tenth > p.lastTenth {
			p.lastTenth = tenth
			printErr("%s\n", p.textLocked())
		}
	}
}

// drawLocked redraws the notebook block, unless the last draw is too recent.
func (p *Progress) drawLocked(force bool) {
	if p.id == "" {
		return
	}
	every := p.Every
	if every <= 0 {
		every = 200 * time.Millisecond
	}
	now := p.now()
	if !force && now.Sub(p.lastDraw) < every {
		return
	}
	p.lastDraw = now
	gonbui.UpdateHTML(p.id, p.htmlLocked())
}

// fraction is done/total clamped to [0, 1] (0 when the total is unknown).
func (p *Progress) fractionLocked() float64 {
	if p.total <= 0 {
		return 0
	}
	return min(1, max(0, float64(p.done)/float64(p.total)))
}

// countsLocked is "done/total (pct%), elapsed, ETA" (the ETA extrapolates the
// mean rate so far).
func (p *Progress) countsLocked() string {
	elapsed := p.now().Sub(p.start)
	var b strings.Builder
	if p.total > 0 {
		fmt.Fprintf(&b, "%d/%d (%.0f%%)", p.done, p.total, 100*p.fractionLocked())
	} else {
		fmt.Fprintf(&b, "%d", p.done)
	}
	fmt.Fprintf(&b, ", %s", roundDuration(elapsed))
	if !p.finished && p.total > 0 && p.done > 0 && p.done < p.total {
		eta := time.Duration(float64(elapsed) * float64(p.total-p.done) / float64(p.done))
		fmt.Fprintf(&b, ", ETA %s", roundDuration(eta))
	}
	if p.status != "" {
		b.WriteString(", " + p.status)
	}
	return b.String()
}

func (p *Progress) textLocked() string {
	prefix := p.label + ": "
	if p.finished {
		prefix += "done "
	}
	return prefix + p.countsLocked()
}

func (p *Progress) htmlLocked() string {
	max := p.total
	value := p.done
	if max <= 0 {
		max, value = 1, 0
	}
	if p.finished && p.total > 0 {
		value = min(p.done, p.total)
	}
	state := ""
	if p.finished {
		state = " ✓"
	}
	return fmt.Sprintf(`<div class="prism-progress"><b>%s</b> <progress max="%d" value="%d" style="width:40%%"></progress> %s%s</div>`,
		escape(p.label), max, value, escape(p.countsLocked()), state)
}

// roundDuration keeps durations readable: 0.1 s resolution below a minute, 1 s above.
func roundDuration(d time.Duration) time.Duration {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}
