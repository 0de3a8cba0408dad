"""Python baselines for bench-lowrank: time numpy.linalg.svd or torch.linalg.svd
(and the same window initialisation written in numpy) on the matrices the Go
benchmark wrote.

    /usr/bin/python3 baseline.py JOB.json RESULT.json

JOB.json: {"matrices": [{"name", "rows", "cols", "file"}], "rank", "scale",
"starts": [s per matrix], "mode": "numpy-svd" | "numpy-init" | "torch-svd"}.
Each file holds rows*cols little-endian float32 values, row-major.
RESULT.json gets the wall and CPU seconds (all threads) per matrix, the
window's singular values (for a cross-check) and the library version.

Note: numpy.linalg computes float32 input in double precision (dgesdd) and
casts the result back; torch.linalg.svd keeps float32 (sgesdd). Both link the
system LAPACK, which is OpenBLAS when libopenblas0-pthread is installed.
"""
import json
import sys
import time

import numpy as np


def main(job_path, result_path):
    with open(job_path) as f:
        job = json.load(f)
    r, scale, mode = job["rank"], job["scale"], job["mode"]
    if mode == "torch-svd":
        import torch
        version = "torch " + torch.__version__
    else:
        version = "numpy " + np.__version__
    seconds, cpu, windows = [], [], []
    for spec, s in zip(job["matrices"], job["starts"]):
        w = np.fromfile(spec["file"], dtype="<f4").reshape(spec["rows"], spec["cols"])
        if mode == "torch-svd":
            tw = torch.from_numpy(w)
            c0, t0 = time.process_time(), time.perf_counter()
            _, sv, _ = torch.linalg.svd(tw, full_matrices=False)
            seconds.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            sv = sv.numpy()
        else:
            c0, t0 = time.process_time(), time.perf_counter()
            u, sv, vt = np.linalg.svd(w, full_matrices=False)
            if mode == "numpy-init":
                root = np.sqrt(sv[s:s + r] / scale)
                b = u[:, s:s + r] * root
                a = root[:, None] * vt[s:s + r]
                wres = w - scale * (b @ a)
            seconds.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        windows.append([float(x) for x in sv[s:s + r]])
    with open(result_path, "w") as f:
        json.dump({"seconds": seconds, "cpu_seconds": cpu, "windows": windows,
                   "version": version}, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
