// Package faultpoint stops a process at named points of crash-safety-critical
// code so tests can kill it exactly there. It is inert unless the environment
// variable PRISM_FAULTPOINTS is set:
//
//	PRISM_FAULTPOINTS="store.before-commit@3=pause,run.epoch=sleep:50ms"
//
// Each item is NAME[@N][=ACTION]: at the N-th time (default: every time) this
// process reaches point NAME, do ACTION:
//
//	pause      print "FAULTPOINT NAME N" on stderr, then block forever (the
//	           test kills the process with SIGKILL when it sees the line)
//	sleep:DUR  print the line, sleep DUR, continue
//	kill       print the line, then SIGKILL this process
//
// The default action is pause.
package faultpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Env is the environment variable that arms fault points.
const Env = "PRISM_FAULTPOINTS"

type rule struct {
	nth    int // 0: every hit
	action string
	sleep  time.Duration
}

var (
	once  sync.Once
	rules map[string][]rule
	mu    sync.Mutex
	hits  map[string]int
)

func load() {
	spec := os.Getenv(Env)
	if spec == "" {
		return
	}
	rules = map[string][]rule{}
	hits = map[string]int{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, action, _ := strings.Cut(item, "=")
		r := rule{action: "pause"}
		if action != "" {
			r.action = action
		}
		if n, at, ok := strings.Cut(name, "@"); ok {
			k, err := strconv.Atoi(at)
			if err != nil || k < 1 {
				fmt.Fprintf(os.Stderr, "faultpoint: bad count in %q\n", item)
				os.Exit(2)
			}
			name, r.nth = n, k
		}
		if d, ok := strings.CutPrefix(r.action, "sleep:"); ok {
			dur, err := time.ParseDuration(d)
			if err != nil {
				fmt.Fprintf(os.Stderr, "faultpoint: bad duration in %q\n", item)
				os.Exit(2)
			}
			r.action, r.sleep = "sleep", dur
		}
		switch r.action {
		case "pause", "sleep", "kill":
		default:
			fmt.Fprintf(os.Stderr, "faultpoint: unknown action in %q (pause, sleep:DUR, kill)\n", item)
			os.Exit(2)
		}
		rules[name] = append(rules[name], r)
	}
}

// Hit marks that the process reached point name.
func Hit(name string) {
	once.Do(load)
	if rules == nil {
		return
	}
	rs, ok := rules[name]
	if !ok {
		return
	}
	mu.Lock()
	hits[name]++
	n := hits[name]
	mu.Unlock()
	for _, r := range rs {
		if r.nth != 0 && r.nth != n {
			continue
		}
		fmt.Fprintf(os.Stderr, "FAULTPOINT %s %d\n", name, n)
		switch r.action {
		case "pause":
			for {
				time.Sleep(time.Hour)
			}
		case "sleep":
			time.Sleep(r.sleep)
		case "kill":
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Hour)
		}
	}
}
