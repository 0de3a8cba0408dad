//go:build unix

package jupyter

import (
	"os/exec"
	"syscall"
	"time"
)

func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// stopTree stops nbconvert and everything it started. jupyter_client starts
// the kernel in a session of its own, so killing nbconvert's process group
// would leave the kernel (GoNB, gopls, a running cell) behind. First nbconvert
// gets SIGINT, which makes it shut its kernel down properly; whatever of the
// process tree (as it was at cancellation) still runs after grace is killed.
func stopTree(cmd *exec.Cmd, grace time.Duration) error {
	if cmd.Process == nil {
		return nil
	}
	pid := cmd.Process.Pid
	tree := descendants(pid)
	_ = syscall.Kill(pid, syscall.SIGINT)
	go func() {
		time.Sleep(grace)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		for _, p := range tree {
			if p.alive() { // same pid and start time: not a reused pid
				_ = syscall.Kill(p.pid, syscall.SIGKILL)
			}
		}
	}()
	return nil
}
