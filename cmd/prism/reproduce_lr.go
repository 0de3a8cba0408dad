package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/plots"
)

func init() { addReproduceCommand(newReproduceLRCmd) }

func newReproduceLRCmd() *cobra.Command {
	return newReproductionCmd(lrReproduction, reproductionHelp{
		use:   "lr [--quick] [--out DIR] [--seeds N] [--workers N]",
		short: "Learning-rate robustness: windows vs PiSSA, MiLoRA, LoRA and full fine-tuning over a log-spaced LR grid",
		long: `The paper claims that intermediate windows of singular components are more robust to
high learning rates than the ends of the spectrum. This fine-tunes the MNIST-pretrained
ViT on Fashion-MNIST (as 'prism reproduce fig1') with PiSSA, windows at 1/4, 1/2 and 3/4
of the spectrum, MiLoRA, LoRA and full fine-tuning, each at every learning rate of a
log-spaced grid, over several seeds. A run whose loss becomes non-finite is recorded as
failed (diverged); the figure counts it at chance accuracy (10%).

Writes into --out:
  results.db              every run (SQLite)
  results.md              task-B accuracy and task-A forgetting per method and learning rate
                          (mean ± std over seeds), and the figure
  figures/lr.{png,svg,pdf}  (a) task-B accuracy and (b) task-A forgetting against the
                          learning rate (log scale), one curve per method and window

Running it again resumes. The specs are experiments/lr.yaml and experiments/lr-quick.yaml.`,
		example: `  prism reproduce lr --quick
  prism reproduce lr --out results/lr`,
	})
}

// lrReproduction is `prism reproduce lr`.
var lrReproduction = reproduction{
	name:    "lr",
	tiny:    tinySpec,
	figures: lrFigures,
	report:  lrReport,
}

// chanceAccuracy is the task-B accuracy a diverged run is counted at in the
// figure (ten classes).
const chanceAccuracy = 10

func lrFigures(r *reproduced) error {
	var failed []plots.Run
	for _, f := range r.failed {
		failed = append(failed, plots.Run{ID: f.ID, Config: f.Config})
	}
	fig, err := plots.LRRobustness(r.done, plots.LROptions{Failed: failed, IncludeFailed: true, FailedAcc: chanceAccuracy})
	return r.save("lr", fig, err)
}

// lrRates lists the learning rates of the runs, ascending.
func lrRates(runs []experiment.Run) []float64 {
	seen := map[float64]bool{}
	var out []float64
	for _, r := range runs {
		if !seen[r.Config.LearningRate] {
			seen[r.Config.LearningRate] = true
			out = append(out, r.Config.LearningRate)
		}
	}
	sort.Float64s(out)
	return out
}

func lrReport(r *reproduced) string {
	var b strings.Builder
	mode := "full setting"
	switch {
	case r.opts.Tiny:
		mode = "tiny test setting"
	case r.opts.Quick:
		mode = "quick setting"
	}
	fmt.Fprintf(&b, "# Learning-rate robustness of component windows (%s)\n\n", mode)
	fmt.Fprintf(&b, "`prism reproduce lr%s` — spec `%s`, %s, %s on %s.\n\n", flagsText(r.opts), r.spec.Name,
		experiment.Describe(r.runs), roundDuration(r.elapsed), time.Now().UTC().Format("2006-01-02"))
	b.WriteString(settingsText(r.spec) + "\n\n")
	b.WriteString("Mean ± standard deviation over seeds; *diverged* marks runs whose training loss became non-finite (recorded as failed; " +
		"the figure counts them at chance accuracy, 10%). Windows: s = round(f·(k−r)), PiSSA f = 0, MiLoRA f = 1.\n\n")
	rates := lrRates(r.runs)
	type row struct {
		label string
		f     float64
		cells map[float64]*group
		order int
	}
	rows := map[string]*row{}
	var list []*row
	for i, g := range r.groups(func(c experiment.RunConfig) string { return c.Series() + "\x00" + fmt.Sprint(c.LearningRate) }) {
		s := g.config.Series()
		rw, ok := rows[s]
		if !ok {
			rw = &row{label: seriesLabel(g.config), f: windowFraction(g.config), cells: map[float64]*group{}, order: i}
			rows[s] = rw
			list = append(list, rw)
		}
		rw.cells[g.config.LearningRate] = g
	}
	sort.SliceStable(list, func(i, j int) bool {
		fi, fj := list[i].f, list[j].f
		switch {
		case !math.IsNaN(fi) && !math.IsNaN(fj):
			return fi < fj
		case !math.IsNaN(fi):
			return true
		case !math.IsNaN(fj):
			return false
		}
		return list[i].order < list[j].order
	})
	table := func(title, metric string, decimals int) {
		fmt.Fprintf(&b, "**%s**\n\n| method |", title)
		for _, lr := range rates {
			fmt.Fprintf(&b, " lr %g |", lr)
		}
		b.WriteString("\n|---|")
		for range rates {
			b.WriteString("---:|")
		}
		b.WriteString("\n")
		for _, rw := range list {
			fmt.Fprintf(&b, "| %s |", rw.label)
			for _, lr := range rates {
				g := rw.cells[lr]
				cell := "—"
				if g != nil {
					cell = g.metric(metric).format(decimals)
					if g.failed > 0 {
						if len(g.runs) == 0 {
							cell = "diverged"
						} else {
							cell += fmt.Sprintf(" (%d diverged)", g.failed)
						}
					}
				}
				fmt.Fprintf(&b, " %s |", cell)
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	table("Task-B accuracy (%)", experiment.MetricTaskBAcc, 2)
	table("Task-A forgetting (points)", experiment.MetricForgetting, 2)

	// Robustness at the highest learning rate: each series' accuracy there
	// against its own best, and its forgetting there.
	if len(rates) >= 2 {
		top := rates[len(rates)-1]
		b.WriteString("**What the tables show** (computed from the numbers above):\n\n")
		fmt.Fprintf(&b, "Per method: the learning rate with the best mean task-B accuracy, and at the highest learning rate (%g) the accuracy (its change from that best) and the forgetting.\n\n", top)
		for _, rw := range list {
			best, bestLR := math.Inf(-1), math.NaN()
			var bestStat stat
			for _, lr := range rates {
				if g := rw.cells[lr]; g != nil && len(g.runs) > 0 {
					if st := g.metric(experiment.MetricTaskBAcc); st.mean > best {
						best, bestLR, bestStat = st.mean, lr, st
					}
				}
			}
			g := rw.cells[top]
			if g == nil || math.IsNaN(bestLR) {
				continue
			}
			if len(g.runs) == 0 {
				fmt.Fprintf(&b, "- %s: best at lr %g (%s%%); diverged at lr %g\n", rw.label, bestLR, bestStat.format(2), top)
				continue
			}
			acc := g.metric(experiment.MetricTaskBAcc)
			fmt.Fprintf(&b, "- %s: best at lr %g (%s%%); at lr %g: %s%% (%+.2f), forgetting %s points\n", rw.label, bestLR,
				bestStat.format(2), top, acc.format(2), acc.mean-best, g.metric(experiment.MetricForgetting).format(2))
		}
		b.WriteString("\n")
	}
	b.WriteString(failedText(r))
	b.WriteString("\n## Figure\n\n")
	for _, f := range r.figures {
		caption := "(a) task-B accuracy and (b) task-A forgetting against the learning rate (log scale), mean ± std over seeds; diverged runs count as chance accuracy in (a)"
		fmt.Fprintf(&b, "![%s](figures/%s.png)\n\n*%s.* (`figures/%s.svg`, `.pdf`)\n\n", caption, f, caption, f)
	}
	return b.String()
}
