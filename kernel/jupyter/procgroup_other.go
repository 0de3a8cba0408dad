//go:build !unix

package jupyter

import (
	"os/exec"
	"time"
)

func setProcessGroup(cmd *exec.Cmd) {}

func stopTree(cmd *exec.Cmd, grace time.Duration) error {
	if cmd.Process == nil {
		return nil
	}
	return cmd.Process.Kill()
}
