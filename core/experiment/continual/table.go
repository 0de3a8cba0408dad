package continual

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/prism-lora/prism/core/experiment"
)

// WriteMarkdown writes the comparison table of the series: ACC, BWT and
// mean forgetting at the end of the sequence, each task's forgetting and
// final accuracy (mean ± std over seeds), trainable parameters per stage
// and the number of seeds; then every series' mean accuracy matrix.
func WriteMarkdown(w io.Writer, series []Series) error {
	if len(series) == 0 {
		return fmt.Errorf("continual table: no finished runs")
	}
	tasks := series[0].Tasks
	T := len(tasks)
	var b strings.Builder
	fmt.Fprintf(&b, "Task sequence: %s. Accuracies in %%, transfers and forgetting in points; mean ± std over seeds.\n\n",
		strings.Join(numbered(tasks), " → "))
	head := []string{"method", "ACC", "BWT", "mean forgetting"}
	for j := 0; j < T-1; j++ {
		head = append(head, "forgetting "+ShortTask(tasks[j]))
	}
	for j := 0; j < T; j++ {
		head = append(head, "final "+ShortTask(tasks[j]))
	}
	head = append(head, "trainable params", "seeds")
	row(&b, head)
	sep := make([]string, len(head))
	for i := range sep {
		sep[i] = "---:"
	}
	sep[0] = "---"
	row(&b, sep)
	for _, s := range series {
		cells := []string{s.Name, s.ACC.String(2), s.BWT.String(2), s.MeanForgetting.String(2)}
		for _, f := range s.Forgetting {
			cells = append(cells, f.String(2))
		}
		for _, f := range s.Final {
			cells = append(cells, f.String(2))
		}
		cells = append(cells, strconv.Itoa(int(s.Runs[0].Metrics[experiment.MetricTrainableParams])), strconv.Itoa(len(s.Runs)))
		row(&b, cells)
	}

	fmt.Fprintf(&b, "\nAccuracy matrices R[i][j] (%%, mean over seeds): row i after training task i, column j the task evaluated.\n\n")
	head = []string{"method", "after"}
	for j := 0; j < T; j++ {
		head = append(head, ShortTask(tasks[j]))
	}
	row(&b, head)
	sep = make([]string, len(head))
	for i := range sep {
		sep[i] = "---:"
	}
	sep[0], sep[1] = "---", "---"
	row(&b, sep)
	for _, s := range series {
		for i := 0; i < T; i++ {
			name := ""
			if i == 0 {
				name = s.Name
			}
			cells := []string{name, fmt.Sprintf("%d %s", i, ShortTask(tasks[i]))}
			for j := 0; j < T; j++ {
				if j <= i {
					cells = append(cells, fmt.Sprintf("%.2f", 100*s.Mean[i][j]))
				} else {
					cells = append(cells, "")
				}
			}
			row(&b, cells)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func numbered(tasks []string) []string {
	out := make([]string, len(tasks))
	for i, t := range tasks {
		out[i] = fmt.Sprintf("%d %s", i, t)
	}
	return out
}

func row(b *strings.Builder, cells []string) {
	b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
}

// WriteCSV writes one row per run: its ID, series, seed and every metric
// (ACC, BWT, forgetting, R[i][j], …) at full precision.
func WriteCSV(w io.Writer, series []Series) error {
	names := map[string]bool{}
	for _, s := range series {
		for _, r := range s.Runs {
			for k := range r.Metrics {
				names[k] = true
			}
		}
	}
	var metrics []string
	for k := range names {
		metrics = append(metrics, k)
	}
	sortMetrics(metrics)
	cw := csv.NewWriter(w)
	if err := cw.Write(append([]string{"id", "series", "method", "seed", "lr", "rank"}, metrics...)); err != nil {
		return err
	}
	for _, s := range series {
		for _, r := range s.Runs {
			rec := []string{r.ID, s.Key, r.Config.Method, strconv.FormatUint(r.Config.Seed, 10),
				strconv.FormatFloat(r.Config.LearningRate, 'g', -1, 64), strconv.Itoa(r.Config.Rank)}
			for _, m := range metrics {
				v, ok := r.Metrics[m]
				if !ok {
					rec = append(rec, "")
					continue
				}
				rec = append(rec, strconv.FormatFloat(v, 'g', -1, 64))
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// sortMetrics orders the summary metrics first, then the rest by name.
func sortMetrics(ms []string) {
	rank := map[string]int{MetricACC: 0, MetricBWT: 1, MetricMeanForgetting: 2}
	less := func(a, b string) bool {
		ra, oka := rank[a]
		rb, okb := rank[b]
		switch {
		case oka && okb:
			return ra < rb
		case oka != okb:
			return oka
		}
		return a < b
	}
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && less(ms[j], ms[j-1]); j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
}
