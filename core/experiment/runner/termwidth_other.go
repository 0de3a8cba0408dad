//go:build !linux

package runner

import "os"

func termWidth(*os.File) int { return 0 }
