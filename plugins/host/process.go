package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/prism-lora/prism/plugins/protocol"
)

// process is one plugin binary and, while it runs, its go-plugin client.
// It starts the binary on first use and again after it died, so that one
// crash fails one call, not every later one.
type process struct {
	inst Installed
	opts Options

	mu     sync.Mutex
	client *plugin.Client
	raw    interface{}                  // prismpb.MethodClient or prismpb.DatasetClient
	stderr atomic.Pointer[tail]         // of the current (or last) process
	exit   atomic.Pointer[exitRecorder] // of the current (or last) process
}

func newProcess(inst Installed, opts Options) *process {
	return &process{inst: inst, opts: opts}
}

// fail builds an Error about this plugin.
func (p *process) fail(op string, fault Fault, err error) *Error {
	e := &Error{Kind: p.inst.Kind, Plugin: p.inst.Name, Path: p.inst.Path, Op: op, Fault: fault, Err: err}
	if t := p.stderr.Load(); t != nil {
		e.Stderr = t.String()
	}
	return e
}

// checkFile refuses a binary that is missing, not executable or unpinned,
// before go-plugin verifies its checksum and runs it.
func (p *process) checkFile() *Error {
	fi, err := os.Stat(p.inst.Path)
	if err != nil {
		return p.fail("start", FaultMissing, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return p.fail("start", FaultNotExecutable, fmt.Errorf("mode %v", fi.Mode()))
	}
	if p.inst.Pin == "" {
		return p.fail("start", FaultUnpinned, nil)
	}
	return nil
}

// get returns the running plugin's gRPC client, starting the binary if it
// is not running (never started, killed, or died).
func (p *process) get() (interface{}, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil && !p.client.Exited() {
		return p.raw, nil
	}
	if p.client != nil {
		p.client.Kill()
		p.client = nil
	}
	if e := p.checkFile(); e != nil {
		return nil, e
	}
	sum, err := hex.DecodeString(p.inst.Pin)
	if err != nil {
		return nil, p.fail("start", FaultChecksum, fmt.Errorf("pin %q is not hex", p.inst.Pin))
	}
	stderr, exit := newTail(64<<10), &exitRecorder{}
	p.stderr.Store(stderr)
	p.exit.Store(exit)
	logger := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "plugin", Output: io.Discard, Level: hclog.Error})
	logger.RegisterSink(exit)
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  protocol.Handshake,
		Plugins:          protocol.PluginSet(),
		Cmd:              exec.Command(p.inst.Path),
		SecureConfig:     &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()},
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		GRPCDialOptions:  protocol.DialOptions(),
		StartTimeout:     p.opts.StartTimeout,
		Stderr:           stderr,
		Logger:           logger,
	})
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, p.fail("start", classifyStart(err), err)
	}
	raw, err := rpc.Dispense(string(p.inst.Kind))
	if err != nil {
		client.Kill()
		return nil, p.fail("start", FaultHandshake, err)
	}
	p.client, p.raw = client, raw
	return raw, nil
}

// classifyStart maps a go-plugin start error to a fault.
func classifyStart(err error) Fault {
	msg := err.Error()
	switch {
	case errors.Is(err, plugin.ErrChecksumsDoNotMatch):
		return FaultChecksum
	case errors.Is(err, os.ErrPermission), strings.Contains(msg, "permission denied"), strings.Contains(msg, "exec format error"):
		return FaultNotExecutable
	case errors.Is(err, os.ErrNotExist):
		return FaultMissing
	case strings.Contains(msg, "incompatible API version"), strings.Contains(msg, "incompatible core API version"):
		return FaultProtocolVersion
	}
	return FaultHandshake
}

// kill ends the plugin process now: SIGKILL first (a hung plugin does not
// get go-plugin's 2-second grace period), then go-plugin's cleanup.
func (p *process) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client == nil {
		return
	}
	if rc := p.client.ReattachConfig(); rc != nil && rc.Pid > 0 {
		_ = syscall.Kill(rc.Pid, syscall.SIGKILL)
	}
	p.client.Kill()
	p.client = nil
}

// close stops the plugin gracefully (go-plugin's shutdown, then a kill).
func (p *process) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.client != nil {
		p.client.Kill()
		p.client = nil
	}
}

// exited waits up to d for the process to be seen dead and reports it with
// its exit status when known.
func (p *process) exited(d time.Duration) (bool, string) {
	p.mu.Lock()
	client, rec := p.client, p.exit.Load()
	p.mu.Unlock()
	if client == nil {
		return false, ""
	}
	deadline := time.Now().Add(d)
	for !client.Exited() {
		if time.Now().After(deadline) {
			return false, ""
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true, rec.String()
}

// callError classifies the error of a call (op) that was given deadline:
// our deadline passed → the plugin is killed (timeout); the process died →
// crash; a gRPC status from a live plugin → its own error; the caller's
// context ended → that error, unclassified.
func (p *process) callError(ctx context.Context, callCtx context.Context, op string, timeout time.Duration, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s plugin %q: %s: %w", p.inst.Kind, p.inst.Name, op, ctx.Err())
	}
	if callCtx.Err() != nil {
		p.kill()
		return p.fail(op, FaultTimeout, fmt.Errorf("no answer within %v", timeout))
	}
	st, isStatus := status.FromError(err)
	if isStatus && st.Code() != codes.Unavailable && st.Code() != codes.Canceled && st.Code() != codes.Unknown || isStatus && st.Code() == codes.Unknown && !strings.Contains(st.Message(), "EOF") {
		// The plugin answered with a status of its own (or gRPC refused its frames).
		if st.Code() == codes.ResourceExhausted || st.Code() == codes.Internal && strings.Contains(st.Message(), "grpc:") {
			return p.fail(op, FaultProtocol, err)
		}
		return p.fail(op, FaultPluginError, errors.New(st.Message()))
	}
	dead, how := p.exited(2 * time.Second)
	if how == "" {
		how = "the process exited"
	}
	if dead {
		return p.fail(op, FaultCrash, fmt.Errorf("%s (the call failed with: %v)", how, err))
	}
	// The connection broke but the process lives on: restart it next time.
	p.kill()
	return p.fail(op, FaultCrash, fmt.Errorf("the connection broke: %v", err))
}

// exitRecorder is an hclog sink that keeps go-plugin's report of how the
// plugin process ended ("exit status 2", "signal: killed").
type exitRecorder struct {
	mu  sync.Mutex
	how string
}

func (r *exitRecorder) Accept(_ string, _ hclog.Level, msg string, args ...interface{}) {
	if msg != "plugin process exited" {
		return
	}
	how := "the process exited"
	for i := 0; i+1 < len(args); i += 2 {
		if args[i] == "error" {
			how = fmt.Sprintf("the process exited: %v", args[i+1])
		}
	}
	r.mu.Lock()
	r.how = how
	r.mu.Unlock()
}

func (r *exitRecorder) String() string {
	if r == nil {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.how
}

// tail keeps the last max bytes written to it, as whole lines.
type tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newTail(max int) *tail { return &tail{max: max} }

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > t.max {
		cut := len(t.buf) - t.max
		if i := strings.IndexByte(string(t.buf[cut:]), '\n'); i >= 0 {
			cut += i + 1
		}
		t.buf = append([]byte(nil), t.buf[cut:]...)
	}
	return len(b), nil
}

// String returns the last lines kept: from the last "panic: " or "fatal
// error: " line if there is one (so a crash's cause is not cut off), at
// most 30 lines.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimRight(string(t.buf), "\n"), "\n")
	start := max(len(lines)-30, 0)
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "panic: ") || strings.HasPrefix(lines[i], "fatal error: ") {
			start = i
			break
		}
	}
	lines = lines[start:min(start+30, len(lines))]
	return strings.Join(lines, "\n")
}
