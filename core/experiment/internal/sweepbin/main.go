// Command sweepbin runs sweeps of the synthetic kind: the subprocess that the
// runner's crash tests start, SIGKILL and resume, and the controller and task
// binary of the Slurm executor's tests.
//
//	sweepbin -spec SPEC.yaml -db RESULTS.db [-workers N]
//	sweepbin -spec SPEC.yaml -db RESULTS.db -executor slurm -dir SHARED [-wait]
//	sweepbin sweep-task --dir SHARED --manifest M --index I   (what array tasks run)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prism-lora/prism/core/experiment"
	"github.com/prism-lora/prism/core/experiment/runner"
	"github.com/prism-lora/prism/core/experiment/slurm"
	"github.com/prism-lora/prism/core/experiment/store"
	"github.com/prism-lora/prism/core/experiment/synthetic"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "sweep-task" {
		err = task(ctx, os.Args[2:])
	} else {
		err = sweep(ctx, os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sweepbin:", err)
		var ec interface{ ExitCode() int }
		if errors.As(err, &ec) {
			os.Exit(ec.ExitCode())
		}
		os.Exit(1)
	}
}

func task(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sweep-task", flag.ContinueOnError)
	dir := fs.String("dir", "", "shared directory")
	manifest := fs.String("manifest", "", "array manifest")
	index := fs.Int("index", -1, "task index")
	if err := fs.Parse(args); err != nil {
		return err
	}
	kinds := &experiment.Registry{}
	if err := kinds.Register(synthetic.Kind); err != nil {
		return err
	}
	return slurm.RunTask(ctx, kinds, *dir, *manifest, *index, os.Stdout)
}

func sweep(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sweepbin", flag.ContinueOnError)
	specPath := fs.String("spec", "", "spec file")
	dbPath := fs.String("db", "", "results database")
	workers := fs.Int("workers", 1, "parallel runs (local)")
	executor := fs.String("executor", "local", "local or slurm")
	dir := fs.String("dir", "", "shared directory (slurm)")
	wait := fs.Bool("wait", false, "follow the arrays until they end (slurm)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	spec, err := experiment.LoadSpec(*specPath)
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
	st, err := store.Open(*dbPath)
	if err != nil {
		return err
	}
	defer st.Close()
	if *executor == "slurm" {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		opt := slurm.Options{Dir: *dir, Prism: self, Settings: spec.Executor.Slurm, Out: os.Stdout,
			Poll: 300 * time.Millisecond, Grace: 3 * time.Second}
		sub, err := slurm.Submit(ctx, st, spec, runs, opt)
		if err != nil {
			return err
		}
		fmt.Printf("submission: %+v\n", sub)
		if *wait {
			sum, err := slurm.Wait(ctx, st, spec, runs, opt)
			fmt.Printf("wait: %+v\n", sum)
			return err
		}
		return nil
	}
	sum, err := runner.Sweep(ctx, st, spec, runs, synthetic.Kind, runner.Options{Workers: *workers, Out: os.Stdout})
	fmt.Println(sum)
	return err
}
