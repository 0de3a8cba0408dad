// Package host finds, verifies, starts and talks to prism plugins: method
// plugins (adapter initialisers, used as core/method.Method) and dataset
// plugins (used as datasets.Dataset).
//
// Plugins are executables named prism-method-NAME or prism-dataset-NAME in
// the directories of SearchPath ($PRISM_PLUGIN_PATH, then DefaultDirs). Each
// directory's manifest (prism-plugins.json) pins every binary's SHA-256; a
// binary is run only if it matches its pin (go-plugin's SecureConfig). Every
// call has a deadline: a plugin that does not answer in time is killed. A
// plugin that crashes, hangs, breaks the protocol or returns a bad result
// gives an *Error naming the plugin, the call and the Fault; the host goes
// on, and the next call starts the plugin afresh.
package host

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/prism-lora/prism/core/method"
	"github.com/prism-lora/prism/core/method/builtin"
	"github.com/prism-lora/prism/plugins/protocol"
)

// EnvTimeout names the environment variable that overrides the default
// per-call deadline (a Go duration, e.g. "90s").
const EnvTimeout = "PRISM_PLUGIN_TIMEOUT"

// Options configure a Host. The zero value works.
type Options struct {
	// Dirs are searched in order; nil means SearchPath().
	Dirs []string
	// StartTimeout bounds a plugin's start and handshake (default 30 s).
	StartTimeout time.Duration
	// CallTimeout bounds each call: one Init, one batch of a dataset pass,
	// a Metadata or Spec (default $PRISM_PLUGIN_TIMEOUT, else 10 min).
	CallTimeout time.Duration
	// ChunkBytes is the data size of each tensor frame the host sends
	// (default protocol.ChunkBytes).
	ChunkBytes int
	// ComputeSVD computes the thin SVD that a method with NeedsSVD gets
	// when the request brings none (default: builtin.ThinSVD, LAPACK).
	ComputeSVD func(w method.Matrix) (*method.SVD, error)
}

func (o Options) withDefaults() (Options, error) {
	if o.Dirs == nil {
		o.Dirs = SearchPath()
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 30 * time.Second
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Minute
		if s := os.Getenv(EnvTimeout); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				return o, fmt.Errorf("%s=%q: want a positive Go duration such as 90s", EnvTimeout, s)
			}
			o.CallTimeout = d
		}
	}
	if o.ChunkBytes <= 0 {
		o.ChunkBytes = protocol.ChunkBytes
	}
	if o.ComputeSVD == nil {
		o.ComputeSVD = builtin.ThinSVD
	}
	return o, nil
}

// Host finds plugins and keeps their processes. It is safe for concurrent
// use. Close it to stop every plugin it started.
type Host struct {
	opts  Options
	mu    sync.Mutex
	procs map[string]*process // by kind/name
}

// New returns a host with the given options.
func New(opts Options) (*Host, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Host{opts: o, procs: map[string]*process{}}, nil
}

// Dirs are the directories this host searches, in order.
func (h *Host) Dirs() []string { return h.opts.Dirs }

// Installed lists the plugins on the host's search path (see Discover).
func (h *Host) Installed() ([]Installed, error) { return Discover(h.opts.Dirs) }

// Find returns the installed plugin of that kind and name, or an *Error
// with FaultNotFound.
func (h *Host) Find(kind protocol.Kind, name string) (Installed, error) {
	all, err := h.Installed()
	if err != nil {
		return Installed{}, err
	}
	for _, in := range all {
		if in.Kind == kind && in.Name == name {
			return in, nil
		}
	}
	return Installed{}, &Error{Kind: kind, Plugin: name, Fault: FaultNotFound,
		Err: fmt.Errorf("no %s%s in %v", kind.FilePrefix(), name, h.opts.Dirs)}
}

// process returns the (shared) process of an installed plugin.
func (h *Host) process(in Installed) *process {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := string(in.Kind) + "/" + in.Name
	if p, ok := h.procs[key]; ok {
		if p.inst.Path == in.Path && p.inst.Pin == in.Pin {
			return p
		}
		p.close() // the binary or its pin changed: stop the old process
	}
	p := newProcess(in, h.opts)
	h.procs[key] = p
	return p
}

// Close stops every plugin process this host started.
func (h *Host) Close() error {
	h.mu.Lock()
	procs := h.procs
	h.procs = map[string]*process{}
	h.mu.Unlock()
	for _, p := range procs {
		p.close()
	}
	return nil
}

// withDeadline derives the context of one call.
func (h *Host) withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, h.opts.CallTimeout)
}
