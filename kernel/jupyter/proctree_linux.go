//go:build linux

package jupyter

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// process identifies a process by pid and start time (clock ticks since boot),
// so a pid reused later is not mistaken for it.
type process struct {
	pid   int
	start string
}

// alive reports whether the same process still exists.
func (p process) alive() bool {
	_, start, ok := readStat(p.pid)
	return ok && start == p.start
}

// descendants lists every process below root, from /proc.
func descendants(root int) []process {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	children := map[int][]process{}
	for _, s := range stats {
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(s)))
		if err != nil {
			continue
		}
		ppid, start, ok := readStat(pid)
		if ok {
			children[ppid] = append(children[ppid], process{pid, start})
		}
	}
	var out []process
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out
}

// readStat returns the parent pid and start time of a process.
func readStat(pid int) (ppid int, start string, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", false
	}
	// The command name is in parentheses and may hold spaces: parse after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, "", false
	}
	f := strings.Fields(s[i+1:])
	// Fields after the name: state(0) ppid(1) … starttime(19).
	if len(f) < 20 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(f[1])
	if err != nil {
		return 0, "", false
	}
	return ppid, f[19], true
}
