"""numpy baseline for bench-lowrank: times numpy.linalg.svd (and the same window
initialisation done in numpy) on the matrices the Go benchmark wrote.

    /usr/bin/python3 numpy_baseline.py JOB.json RESULT.json

JOB.json: {"matrices": [{"name", "rows", "cols", "file"}], "rank", "scale",
"starts": [s per matrix], "mode": "svd" | "init", "threads_note"}. Each file
holds rows*cols little-endian float32 values, row-major. RESULT.json gets the
seconds per matrix and the window's singular values (for a cross-check).
"""
import json
import sys
import time

import numpy as np


def main(job_path, result_path):
    with open(job_path) as f:
        job = json.load(f)
    r, scale, mode = job["rank"], job["scale"], job["mode"]
    seconds, windows = [], []
    for spec, s in zip(job["matrices"], job["starts"]):
        w = np.fromfile(spec["file"], dtype="<f4").reshape(spec["rows"], spec["cols"])
        t0 = time.perf_counter()
        u, sv, vt = np.linalg.svd(w, full_matrices=False)
        if mode == "init":
            root = np.sqrt(sv[s:s + r] / scale)
            b = u[:, s:s + r] * root
            a = root[:, None] * vt[s:s + r]
            wres = w - scale * (b @ a)
        seconds.append(time.perf_counter() - t0)
        windows.append([float(x) for x in sv[s:s + r]])
    with open(result_path, "w") as f:
        json.dump({"seconds": seconds, "windows": windows,
                   "numpy": np.__version__}, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
