#!/usr/bin/env bash
# slurm-down.sh stops a cluster started by scripts/slurm-up.sh DIR: it cancels
# every job first (so no slurmstepd is orphaned), then stops slurmd, slurmctld
# and munged by the process IDs recorded in DIR, and removes DIR unless
# --keep is given.
#
#   scripts/slurm-down.sh DIR [--keep]
set -uo pipefail

dir="${1:-}"
[ -n "$dir" ] && [ -f "$dir/slurm.conf" ] || { echo "slurm-down: usage: slurm-down.sh DIR [--keep] (DIR from slurm-up.sh)" >&2; exit 2; }
keep="${2:-}"
export SLURM_CONF="$dir/slurm.conf"

# Cancel all jobs and wait for them to leave the node.
if scontrol ping >/dev/null 2>&1; then
	scancel --full --quiet $(squeue -h -o %A 2>/dev/null | sort -u) 2>/dev/null || true
	for _ in $(seq 100); do
		[ -z "$(squeue -h -t running,completing,configuring -o %i 2>/dev/null)" ] && break
		sleep 0.1
	done
fi

# stop PIDFILE...: SIGTERM the recorded processes, then SIGKILL stragglers.
stop() {
	local pids=()
	for f in "$@"; do
		[ -f "$f" ] && pids+=("$(cat "$f")")
	done
	[ ${#pids[@]} -eq 0 ] && return 0
	kill -TERM "${pids[@]}" 2>/dev/null || true
	for _ in $(seq 50); do
		local alive=0
		for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && return 0
		sleep 0.1
	done
	kill -KILL "${pids[@]}" 2>/dev/null || true
}
stop "$dir/slurmd.pid" "$dir/slurmd.launcher.pid"
stop "$dir/slurmctld.pid" "$dir/slurmctld.launcher.pid"
stop "$dir/munge/munged.pid"

if [ "$keep" != "--keep" ]; then
	rm -rf "$dir"
fi
