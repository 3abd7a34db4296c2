"""How much does one HDML training step cost over its N-pair baseline?

    python bench/step_overhead.py                    # GoogLeNet 224x224 + lab setting
    python bench/step_overhead.py --quick            # fewer steps
    python bench/step_overhead.py --skip-googlenet   # lab setting only (seconds on a CPU)

Same backbone, same N-pair batch (64 images = 32 classes x 2), one process for the
timings: warm-up steps, then the median of several timed steps, the two methods
interleaved so that drift (thermal, other load) hits both alike. Device auto (CUDA
with AMP when available, else CPU).

Cases: "googlenet" = GoogLeNet (random init, model.pretrained=false), 3x224x224,
embedding 512; "lab" = small_cnn width 32, 1x32x32, embedding 64.

Memory, what is measured:
- CUDA: torch.cuda.max_memory_allocated() during a timed step minus the memory
  allocated just before it ("step_mem_mb": activations, gradients, transients), plus
  the method's resident parameters and optimizer state ("state_mb").
- CPU: torch has no allocator statistics on CPU, and the peak RSS of a process only
  grows, so each (case, method) runs in a fresh child process: "step_mem_mb" is the
  child's peak resident set size (VmHWM) during its training steps minus its RSS
  just before them (after building the model and the batch). It includes the
  optimizer state created by the first step and the C allocator's slack.

Time: wall-clock median ("*_ms", "ratio_*"); on CPU also the median process CPU
time ("*_cpu_ms", "ratio_*_cpu_time"), which other jobs sharing the CPU disturb
less (wall times on a loaded CPU inflate the method with more small ops).

The last line printed is one JSON object (ratios = HDML time / baseline time).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchenv import bench_env, load_avg  # noqa: E402

from hdml_lite.config import Config  # noqa: E402
from hdml_lite.device import pick_device  # noqa: E402
from hdml_lite.hdml import HDMLMethod  # noqa: E402
from hdml_lite.training.method import BaselineMethod  # noqa: E402

CASES = {
    "googlenet": dict(backbone="googlenet", width=32, in_ch=3, size=224, emb=512, num_classes=98),
    "lab": dict(backbone="small_cnn", width=32, in_ch=1, size=32, emb=64, num_classes=100),
}
CLASSES = 32  # N-pair batch: 32 classes x 2 = 64 images
METHODS = {"baseline": BaselineMethod, "hdml": HDMLMethod}


def build(case: str, method: str, device: torch.device):
    c = CASES[case]
    cfg = Config()
    cfg.model.backbone, cfg.model.width, cfg.model.embedding_size = c["backbone"], c["width"], c["emb"]
    cfg.model.pretrained = False
    cfg.loss.name, cfg.data.sampler = "npair", "npair"
    cfg.train.method = method
    cfg.hdml.form, cfg.hdml.j_avg_mode = "official", "block"
    torch.manual_seed(0)
    m = METHODS[method](cfg, c["num_classes"], c["in_ch"], device)
    g = torch.Generator().manual_seed(0)
    labels = torch.randperm(c["num_classes"], generator=g)[:CLASSES].repeat_interleave(2)  # class-major pairs
    x = torch.randn(2 * CLASSES, c["in_ch"], c["size"], c["size"], generator=g)
    return m, x.to(device), labels.to(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def state_mb(m) -> float:
    """Parameters, buffers and optimizer state of a method, in MiB."""
    n = sum(t.numel() * t.element_size() for mod in m.modules.values() for t in mod.state_dict().values())
    for opt in m.optimizers.values():
        for st in opt.state.values():
            n += sum(v.numel() * v.element_size() for v in st.values() if torch.is_tensor(v))
    return n / 2**20


def time_case(case: str, device: torch.device, warmup: int, steps: int) -> dict:
    runs = {name: build(case, name, device) for name in METHODS}
    times = {name: [] for name in METHODS}
    cpu_times = {name: [] for name in METHODS}   # process CPU time: robust to other load on a shared CPU
    mem = {name: 0.0 for name in METHODS}
    for k in range(warmup + steps):
        for name, (m, x, labels) in runs.items():          # interleaved
            sync(device)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
                base = torch.cuda.memory_allocated(device)
            t0, c0 = time.perf_counter(), time.process_time()
            m.train_step(x, labels, k)
            sync(device)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if k >= warmup:
                times[name].append(dt)
                cpu_times[name].append(dc)
                if device.type == "cuda":
                    mem[name] = max(mem[name], (torch.cuda.max_memory_allocated(device) - base) / 2**20)
    out = {}
    for name, (m, _, _) in runs.items():
        out[f"{case}_{name}_ms"] = 1000 * statistics.median(times[name])
        if device.type == "cpu":
            out[f"{case}_{name}_cpu_ms"] = 1000 * statistics.median(cpu_times[name])
        out[f"{case}_{name}_state_mb"] = state_mb(m)
        if device.type == "cuda":
            out[f"{case}_{name}_step_mem_mb"] = mem[name]
    out[f"ratio_{case}"] = out[f"{case}_hdml_ms"] / out[f"{case}_baseline_ms"]
    if device.type == "cpu":
        out[f"ratio_{case}_cpu_time"] = out[f"{case}_hdml_cpu_ms"] / out[f"{case}_baseline_cpu_ms"]
    return out


def _proc_status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024  # kB -> MiB
    raise KeyError(key)


def child(case: str, method: str, steps: int) -> None:
    """CPU memory of one (case, method) in a fresh process; prints one JSON line."""
    device = torch.device("cpu")
    m, x, labels = build(case, method, device)
    before = _proc_status_mb("VmRSS")
    for k in range(steps):
        m.train_step(x, labels, k)
    print(json.dumps({"before_mb": before, "peak_mb": _proc_status_mb("VmHWM")}))


def cpu_memory(case: str, steps: int) -> dict:
    out = {}
    if not os.path.exists("/proc/self/status"):
        return out  # not Linux: no honest per-process peak; leave it out
    for name in METHODS:
        res = subprocess.run([sys.executable, __file__, "--threads", str(torch.get_num_threads()),
                              "--child", case, name, str(steps)],
                             capture_output=True, text=True, check=True)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        out[f"{case}_{name}_step_mem_mb"] = r["peak_mb"] - r["before_mb"]
        out[f"{case}_{name}_peak_rss_mb"] = r["peak_mb"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 warm-up + 3 timed steps (default 2 + 7)")
    ap.add_argument("--skip-googlenet", action="store_true", help="only the lab setting")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda")
    ap.add_argument("--threads", type=int, default=0, help="train.threads (0: auto, one thread on a CPU)")
    ap.add_argument("--child", nargs=3, metavar=("CASE", "METHOD", "STEPS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        torch.set_num_threads(args.threads or 1)   # the parent's setting (it passes torch's thread count)
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    device = pick_device(args.device)
    env = bench_env(args.threads, device)
    warmup, steps = (1, 3) if args.quick else (2, 7)
    cases = ["lab"] if args.skip_googlenet else ["googlenet", "lab"]
    amp = device.type == "cuda"
    result = {"device": str(device), "gpu": torch.cuda.get_device_name(device) if amp else None, "amp": amp,
              "batch": 2 * CLASSES, "warmup": warmup, "timed_steps": steps, **env, "ratio_googlenet": None}
    for case in cases:
        t0 = time.perf_counter()
        result.update(time_case(case, device, warmup, steps))
        if device.type == "cpu":
            result.update(cpu_memory(case, 1 if args.quick else 2))
        b, h = result[f"{case}_baseline_ms"], result[f"{case}_hdml_ms"]
        mem = "".join(f", {name} step mem {result[f'{case}_{name}_step_mem_mb']:.0f} MiB" for name in METHODS
                      if f"{case}_{name}_step_mem_mb" in result)
        print(f"{case:9s} baseline {b:8.1f} ms  hdml {h:8.1f} ms  ratio {h / b:.2f}{mem}  "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    result["mem_measure"] = ("cuda: max_memory_allocated during a step minus allocated before it" if amp else
                             "cpu: child-process VmHWM during training steps minus VmRSS before them")
    result["load_avg_end"] = load_avg()
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in result.items()}))


if __name__ == "__main__":
    main()
