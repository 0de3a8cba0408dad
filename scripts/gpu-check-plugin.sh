#!/usr/bin/env bash
# gpu-check-plugin.sh arranges a PJRT plugin folder for prism's XLA backend
# from JAX's CUDA PJRT plugin (the pip package jax-cuda13-pjrt, or
# jax-cuda12-pjrt) and NVIDIA's pip libraries (nvidia-*), without copying the
# libraries and without downloading anything:
#
#   scripts/gpu-check-plugin.sh [--python PY | --site SITE_PACKAGES] DEST
#
# It makes
#
#   DEST/pjrt/pjrt_c_api_cuda_plugin.so   JAX's xla_cuda_plugin.so, hard-linked (or copied):
#                                         not a symbolic link, because the plugin finds its
#                                         libraries relative to its own folder ($ORIGIN)
#   DEST/nvidia/<x> -> SITE/nvidia/<x>    one link per entry of the pip "nvidia" folder: gopjrt
#                                         (v0.10 pjrt/cuda_linux.go) expects the NVIDIA libraries
#                                         in $ORIGIN/../nvidia and passes that folder to XLA as
#                                         --xla_gpu_cuda_data_dir
#   DEST/nvidia/bin, DEST/nvidia/nvvm     links to the CUDA folders holding ptxas and
#                                         libdevice (pip's nvidia/cu13 or cuda_nvcc, $CUDA_HOME,
#                                         /usr/local/cuda, or nvcc's), which XLA looks for there
#   DEST/env.sh                           exports PJRT_PLUGIN_LIBRARY_PATH, LD_LIBRARY_PATH (every
#                                         DEST/nvidia/*/lib), XLA_FLAGS and PRISM_CUDA_PLUGIN
#
# then `. DEST/env.sh` and use --backend xla:cuda (or xla:$PRISM_CUDA_PLUGIN).
# SITE is found from PY (default: /opt/torch/.venv/bin/python3 when present,
# else python3) by importlib, without importing JAX. Re-running replaces
# what it made. Exit status 1, with a message saying where it looked, when
# there is no plugin.
set -euo pipefail

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
	exit 2
}

python=""
site=""
while [ $# -gt 0 ]; do
	case "$1" in
	--python) python="$2"; shift 2 ;;
	--site) site="$2"; shift 2 ;;
	-h | --help) usage ;;
	-*) echo "gpu-check-plugin: unknown option $1" >&2; usage ;;
	*) break ;;
	esac
done
[ $# -eq 1 ] || usage
dest="$1"
mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"

say() { echo "gpu-check-plugin: $*" >&2; }

plugin=""
searched=()
if [ -n "$site" ]; then
	site="$(cd "$site" && pwd)"
	for v in 13 12; do
		p="$site/jax_plugins/xla_cuda$v/xla_cuda_plugin.so"
		searched+=("$p")
		if [ -f "$p" ]; then plugin="$p"; break; fi
	done
else
	if [ -z "$python" ]; then
		if [ -x /opt/torch/.venv/bin/python3 ]; then python=/opt/torch/.venv/bin/python3; else python=python3; fi
	fi
	if ! command -v "$python" >/dev/null 2>&1; then
		say "no Python interpreter '$python' to look for JAX's plugin with (give --python PY or --site DIR)"
		exit 1
	fi
	# Prints the plugin file, then the folders of the "nvidia" namespace package.
	found="$("$python" - <<'EOF' || true
import importlib.util, os
for mod in ("jax_plugins.xla_cuda13", "jax_plugins.xla_cuda12"):
    try:
        spec = importlib.util.find_spec(mod)
    except (ImportError, ValueError):
        spec = None
    for d in (spec.submodule_search_locations or []) if spec else []:
        p = os.path.join(d, "xla_cuda_plugin.so")
        if os.path.isfile(p):
            print("plugin", p)
            break
try:
    spec = importlib.util.find_spec("nvidia")
except (ImportError, ValueError):
    spec = None
for d in (spec.submodule_search_locations or []) if spec else []:
    print("nvidia", d)
import site, sys
print("searched", " ".join(sys.path))
EOF
)"
	plugin="$(printf '%s\n' "$found" | sed -n 's/^plugin //p' | head -1)"
	searched+=("$(printf '%s\n' "$found" | sed -n 's/^searched //p') (sys.path of $python)")
	if [ -n "$plugin" ]; then
		site="$(cd "$(dirname "$plugin")/../.." && pwd)"
		nv="$(printf '%s\n' "$found" | sed -n 's/^nvidia //p' | head -1)"
		if [ ! -d "$site/nvidia" ] && [ -n "$nv" ]; then site_nvidia="$nv"; fi
	fi
fi
if [ -z "$plugin" ]; then
	say "no JAX CUDA PJRT plugin (jax_plugins/xla_cuda13/xla_cuda_plugin.so or xla_cuda12) found; looked in: ${searched[*]}"
	say "install it with: scripts/setup.sh cuda   (pip package jax-cuda13-pjrt), or pass --site SITE_PACKAGES"
	exit 1
fi
nvidia="${site_nvidia:-$site/nvidia}"
say "plugin: $plugin ($(du -h "$plugin" | cut -f1))"

# The plugin: a hard link when DEST is on the same file system, else a copy.
mkdir -p "$dest/pjrt"
target="$dest/pjrt/pjrt_c_api_cuda_plugin.so"
rm -f "$target"
if ln "$plugin" "$target" 2>/dev/null; then
	say "linked (hard) to $target"
else
	cp "$plugin" "$target"
	say "copied to $target"
fi

# The NVIDIA libraries, one link per entry, in a folder of our own.
rm -rf "$dest/nvidia"
mkdir -p "$dest/nvidia"
if [ -d "$nvidia" ]; then
	for e in "$nvidia"/*; do
		[ -e "$e" ] || continue
		ln -s "$e" "$dest/nvidia/$(basename "$e")"
	done
	say "nvidia: $nvidia ($(ls "$nvidia" | tr '\n' ' '))"
else
	say "warning: no pip 'nvidia' folder next to the plugin ($nvidia): the plugin must find the CUDA libraries elsewhere (LD_LIBRARY_PATH, the system)"
fi

# ptxas and libdevice for XLA's --xla_gpu_cuda_data_dir.
cuda_roots=("$nvidia/cu13" "$nvidia/cu12" "$nvidia/cuda_nvcc")
[ -n "${CUDA_HOME:-}" ] && cuda_roots+=("$CUDA_HOME")
cuda_roots+=(/usr/local/cuda)
if command -v nvcc >/dev/null 2>&1; then cuda_roots+=("$(cd "$(dirname "$(command -v nvcc)")/.." && pwd)"); fi
link_first() { # link_first NAME FILE-INSIDE: link DEST/nvidia/NAME to the first root holding NAME/FILE-INSIDE
	local name="$1" inside="$2" r
	if [ -e "$dest/nvidia/$name/$inside" ]; then
		say "$name/$inside: present"
		return 0
	fi
	for r in "${cuda_roots[@]}"; do
		if [ -e "$r/$name/$inside" ]; then
			rm -f "$dest/nvidia/$name"
			ln -s "$r/$name" "$dest/nvidia/$name"
			say "$name/$inside: from $r"
			return 0
		fi
	done
	say "warning: no $name/$inside in ${cuda_roots[*]}: XLA may fail to compile for the GPU"
}
link_first bin ptxas
link_first nvvm libdevice/libdevice.10.bc

# The environment.
libdirs=""
for d in "$dest"/nvidia/*/lib; do
	[ -d "$d" ] && libdirs="${libdirs:+$libdirs:}$d"
done
cat >"$dest/env.sh" <<EOF
# Written by scripts/gpu-check-plugin.sh: source it to use JAX's CUDA PJRT plugin with prism.
export PJRT_PLUGIN_LIBRARY_PATH="$dest/pjrt"
export PRISM_CUDA_PLUGIN="$target"
export LD_LIBRARY_PATH="$libdirs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
export XLA_FLAGS="--xla_gpu_cuda_data_dir=$dest/nvidia\${XLA_FLAGS:+ \$XLA_FLAGS}"
EOF
say "wrote $dest/env.sh: . $dest/env.sh; then prism --backend xla:cuda doctor"

# What the plugin links against, and whether the loader finds it.
if command -v readelf >/dev/null 2>&1; then
	rp="$(readelf -d "$target" 2>/dev/null | grep -E 'RPATH|RUNPATH' | sed 's/.*\[\(.*\)\]/\1/' || true)"
	say "plugin RUNPATH: ${rp:-none}"
fi
if command -v ldd >/dev/null 2>&1 && missing="$(LD_LIBRARY_PATH="$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$target" 2>&1 | grep 'not found' || true)" && [ -n "$missing" ]; then
	say "warning: libraries the loader cannot find for the plugin:"
	echo "$missing" >&2
fi
echo "$dest"
