package host

import (
	"errors"
	"fmt"
	"strings"

	"github.com/prism-lora/prism/plugins/protocol"
)

// Fault classifies what went wrong with a plugin. An experiment runner
// records a failed run with the fault and Error's message as its reason.
type Fault string

// The faults a plugin can show.
const (
	// FaultNotFound: no plugin of that kind and name on the search path.
	FaultNotFound Fault = "not-found"
	// FaultMissing: a manifest pins a binary that is not there.
	FaultMissing Fault = "missing"
	// FaultNotExecutable: the binary is not an executable file.
	FaultNotExecutable Fault = "not-executable"
	// FaultUnpinned: the binary has no SHA-256 pin in its directory's manifest.
	FaultUnpinned Fault = "unpinned"
	// FaultChecksum: the binary's SHA-256 differs from its pin.
	FaultChecksum Fault = "checksum-mismatch"
	// FaultProtocolVersion: the plugin speaks another protocol version.
	FaultProtocolVersion Fault = "protocol-version"
	// FaultHandshake: the plugin did not complete go-plugin's handshake
	// (garbage on stdout, exit before the handshake, no answer in time).
	FaultHandshake Fault = "handshake"
	// FaultCrash: the plugin process died during a call.
	FaultCrash Fault = "crash"
	// FaultTimeout: the plugin did not answer within the call's deadline
	// and was killed.
	FaultTimeout Fault = "timeout"
	// FaultProtocol: the plugin sent frames that break the protocol
	// (missing header, chunks out of order or overflowing, wrong tensors).
	FaultProtocol Fault = "protocol"
	// FaultInvalidOutput: well-formed frames, wrong content: shapes, dtypes,
	// non-finite values, or an identity that does not hold.
	FaultInvalidOutput Fault = "invalid-output"
	// FaultPluginError: the plugin answered with an error of its own.
	FaultPluginError Fault = "plugin-error"
)

// Error is a plugin failure: which plugin, where it lives, what it was
// asked, what it did. Use errors.As to get it from a wrapped error.
type Error struct {
	Kind   protocol.Kind
	Plugin string // the plugin's name
	Path   string // the binary (or where it was expected)
	Op     string // e.g. "start", "Metadata", `Init layer "blocks.0.attn.qkv"`
	Fault  Fault
	Err    error
	// Stderr is the tail of what the plugin wrote to its standard error.
	Stderr string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s plugin %q", e.Kind, e.Plugin)
	if e.Path != "" {
		fmt.Fprintf(&b, " (%s)", e.Path)
	}
	if e.Op != "" {
		fmt.Fprintf(&b, ": %s", e.Op)
	}
	fmt.Fprintf(&b, ": %s", e.Fault.describe())
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if s := strings.TrimSpace(e.Stderr); s != "" {
		fmt.Fprintf(&b, "\nplugin stderr (last lines):\n%s", s)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Reason is a one-line account for a results table: the fault, the plugin,
// the call and the first line of the cause (no path, no stderr).
func (e *Error) Reason() string {
	cause := ""
	if e.Err != nil {
		cause, _, _ = strings.Cut(e.Err.Error(), "\n")
		cause = ": " + cause
	}
	op := ""
	if e.Op != "" {
		op = " " + e.Op
	}
	return fmt.Sprintf("%s: %s plugin %q%s%s", e.Fault, e.Kind, e.Plugin, op, cause)
}

// describe says what a fault means, in words.
func (f Fault) describe() string {
	switch f {
	case FaultNotFound:
		return "not installed"
	case FaultMissing:
		return "binary is missing"
	case FaultNotExecutable:
		return "binary is not executable"
	case FaultUnpinned:
		return "binary has no SHA-256 pin (run `prism plugins pin PATH`)"
	case FaultChecksum:
		return "binary does not match its pinned SHA-256"
	case FaultProtocolVersion:
		return "speaks another plugin protocol version"
	case FaultHandshake:
		return "failed the plugin handshake"
	case FaultCrash:
		return "crashed"
	case FaultTimeout:
		return "did not answer in time and was killed"
	case FaultProtocol:
		return "broke the plugin protocol"
	case FaultInvalidOutput:
		return "returned an invalid result"
	case FaultPluginError:
		return "reported an error"
	}
	return string(f)
}

// FaultOf returns the fault of a plugin error anywhere in err's chain, or
// "" when err is not a plugin error.
func FaultOf(err error) Fault {
	var e *Error
	if errors.As(err, &e) {
		return e.Fault
	}
	return ""
}
