// Command sweepbin runs a sweep of the synthetic kind with the local runner:
// the subprocess that the runner's crash tests start, SIGKILL and resume.
//
//	sweepbin -spec SPEC.yaml -db RESULTS.db [-workers N]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/runner"
	"github.com/prism-lora/prism/core/experiment/store"
	"github.com/prism-lora/prism/core/experiment/synthetic"
)

func main() {
	specPath := flag.String("spec", "", "spec file")
	dbPath := flag.String("db", "", "results database")
	workers := flag.Int("workers", 1, "parallel runs")
	flag.Parse()
	if err := run(*specPath, *dbPath, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "sweepbin:", err)
		os.Exit(1)
	}
}

func run(specPath, dbPath string, workers int) error {
	spec, err := experiment.LoadSpec(specPath)
	if err != nil {
		return err
	}
	runs, err := spec.Expand()
	if err != nil {
		return err
	}
	if err := spec.ValidateRuns(runs, synthetic.Kind); err != nil {
		return err
	}
	st, err := store.Open(dbPath)
	if err != nil {
		return err
	}
	defer st.Close()
	sum, err := runner.Sweep(context.Background(), st, spec, runs, synthetic.Kind, runner.Options{Workers: workers, Out: os.Stdout})
	fmt.Println(sum)
	return err
}
