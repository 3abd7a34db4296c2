"""Command line: ``python -m hdml_lite {demo,train,compare,eval,download,presets,config,handout}``.

    python -m hdml_lite demo                                # the main job (embedded data, CPU minutes)
    python -m hdml_lite train --preset lab_hdml_npair hdml.alpha=1.0 train.steps=300
    python -m hdml_lite compare lab_hdml_npair lab_npair --data folder:~/my_images   # fair: lr selected for each
    python -m hdml_lite eval --checkpoint runs/lab_hdml_npair/checkpoint.pt
    python -m hdml_lite download cub --root data/
    python -m hdml_lite presets
    python -m hdml_lite config --preset lab_hdml_npair      # every key, its value and what it means
    python -m hdml_lite config --keys                       # only the key names
    python -m hdml_lite handout DIR                         # the students' copy, without solutions, zipped

Bad input (a key, a value, a file, a folder) gets one line on stderr and exit code 2.
Ctrl-C gets one line (where the run stopped, which checkpoint is kept) and exit code 130.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .config import Config, ConfigError, apply_overrides, describe, valid_keys
from .metrics_table import format_table
from .presets import get_preset, list_presets

def cmd_train(args) -> int:
    from .training.trainer import train

    cfg = apply_overrides(get_preset(args.preset), args.overrides)
    res = train(cfg, resume=not args.no_resume)
    print(format_table({cfg.name: res.metrics}, extra={cfg.name: res.train_s}))
    print(f"checkpoint, history and metrics in {res.out_dir}")
    return 0


def cmd_eval(args) -> int:
    from .data import config_channels, load_dataset
    from .device import pick_device
    from .evaluation import evaluate, kmeans_args
    from .training.checkpoint import (checkpoint_config, load_checkpoint, load_error_text, nonfinite_tensors,
                                      state_mismatch)
    from .training.trainer import build_method, ks_for

    state = load_checkpoint(args.checkpoint, purpose="eval")
    if not isinstance(state["config"], dict) or not isinstance(state["method"], dict):
        raise ConfigError(f"{args.checkpoint!r} is not an hdml_lite checkpoint: its config/method entries are "
                          f"not dicts; expected a checkpoint.pt written by `python -m hdml_lite train`")
    bad = nonfinite_tensors(state["method"])        # before any data is read or embedded
    if bad:
        more = f" and {len(bad) - 1} more tensors" if len(bad) > 1 else ""
        raise ConfigError(f"checkpoint {args.checkpoint!r} (step {state['step']}) holds NaN or inf weights "
                          f"({bad[0]}{more}): the run diverged, so it cannot be evaluated; expected finite "
                          f"weights: use an earlier checkpoint or retrain (e.g. with a lower optim.lr)")
    saved = checkpoint_config(state, args.checkpoint)   # every key's type and range, as on the command line
    cfg = apply_overrides(saved, args.overrides)
    if args.split == "val" and cfg.data.val_classes <= 0:
        raise ConfigError(f"eval --split val: the run in {args.checkpoint!r} was trained without validation "
                          f"classes (data.val_classes=0), so there is no val split; expected --split test "
                          f"(or train with data.val_classes=0.2)")
    device = pick_device(cfg.train.device)
    in_ch = config_channels(cfg)
    train_ds = load_dataset(cfg.data, "train", in_channels=in_ch)
    method = build_method(cfg, train_ds.num_classes, in_ch, device, steps_per_epoch=1)  # eval only
    why = state_mismatch(method.modules, state["method"])   # names the tensor and both shapes
    try:
        if why:
            raise ValueError(why)
        method.load_state_dict(state["method"])
    except (KeyError, RuntimeError, ValueError, TypeError) as exc:
        if args.overrides:   # speak of overrides only when some were given
            built, hint = f"config and the overrides {' '.join(args.overrides)}", \
                "; expected the overrides to leave the model unchanged"
        else:
            built, hint = "config", "; the file was changed after training, or written by another version"
        raise ConfigError(f"checkpoint {args.checkpoint!r} does not fit the {cfg.train.method} model built from its "
                          f"{built} ({why or load_error_text(exc)}){hint}") from None
    ds = load_dataset(cfg.data, args.split, in_channels=in_ch, train_transform=False)
    m = evaluate(method.embed, ds, ks=ks_for(cfg), batch_size=cfg.train.eval_batch, device=device,
                 **kmeans_args(cfg))
    keys = tuple(k for k in m if k.startswith("r") and k[1:].isdigit()) + ("nmi", "f1", "map_r")
    print(format_table({f"{cfg.name} ({args.split}, step {state['step']})": m}, keys=keys))
    if args.json:
        print(json.dumps(m))
    return 0


def cmd_download(args) -> int:
    from .data import data_root
    from .data.download import dataset_info, download_dataset, listing

    from .training.checkpoint import ensure_writable_dir

    if args.list:                          # offline: the registry only, nothing fetched or created
        print("\n".join(listing()))
        return 0
    if not args.name:
        raise ValueError("download: name a data set (cub, sop, omniglot, cars196) or use --list")
    info = dataset_info(args.name)         # an unknown name is refused before any folder is made
    root = Path(args.root) if args.root else data_root()
    if all(f.url is not None for f in info.files):   # a set fetched by hand: its instructions first
        ensure_writable_dir(root, "download --root" if args.root else "the data folder ($HDML_DATA or the cache)")
    path = download_dataset(args.name, str(root))
    print(f"{args.name} ready in {path}")
    return 0


def cmd_presets(args) -> int:
    for name in list_presets():
        print(name)
    return 0


def cmd_config(args) -> int:
    if args.keys:
        print("\n".join(valid_keys(Config())))
        return 0
    cfg = get_preset(args.preset) if args.preset else None
    print(f"# {'preset ' + args.preset if args.preset else 'defaults'}: key = value  # meaning;"
          f" override with key=value, e.g. train.steps=300")
    print("\n".join(describe(cfg)))
    return 0


def cmd_demo(args) -> int:
    from .demo import demo_configs, run_demo
    from .training.checkpoint import ensure_writable_dir

    demo_configs(args.fast, args.out, args.seed, args.overrides)   # bad overrides fail here, before any folder
    ensure_writable_dir(Path(args.out), "demo --out")
    run_demo(fast=args.fast, out_dir=args.out, seed=args.seed, overrides=args.overrides)
    return 0


def _float_list(text: str) -> tuple:
    """argparse type: '3e-4,1e-3' -> (0.0003, 0.001); one clear line otherwise."""
    try:
        vals = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected numbers separated by commas, e.g. 3e-4,1e-3") from None
    if not vals or not all(0 < v < 1 for v in vals):
        raise argparse.ArgumentTypeError(f"{text!r}: expected learning rates in (0, 1), e.g. 3e-4,1e-3")
    return vals


def cmd_compare(args) -> int:
    from .study.compare import run_compare

    presets = [a for a in args.items if "=" not in a]
    overrides = [a for a in args.items if "=" in a]
    run_compare(presets, args.data, overrides, seeds=args.seeds, margin=args.margin, out=args.out, jobs=args.jobs,
                plan=args.plan, max_seeds=args.max_seeds, runs=args.runs, lrs=args.lrs,
                select_seeds=args.select_seeds)
    return 0


def cmd_handout(args) -> int:
    from .handout import write_handout

    folder, archive, n = write_handout(args.dir, name=args.name)
    print(f"wrote {archive} ({n} files, {archive.stat().st_size / 1e6:.1f} MB, without notebooks/solutions/) "
          f"and the same files in {folder}/")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hdml_lite", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a preset (resumes from its checkpoint)")
    t.add_argument("--preset", default="lab_npair", help="preset name (see `presets`)")
    t.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint")
    t.add_argument("overrides", nargs="*", help="config overrides key=value, e.g. hdml.alpha=1.0")
    t.set_defaults(func=cmd_train)
    e = sub.add_parser("eval", help="evaluate a checkpoint")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--split", default="test", choices=["test", "val", "train"])
    e.add_argument("--json", action="store_true", help="also print the metrics as JSON")
    e.add_argument("overrides", nargs="*", help="config overrides key=value (e.g. data.root=...)")
    e.set_defaults(func=cmd_eval)
    d = sub.add_parser("download", help="download and verify a real dataset")
    d.add_argument("name", nargs="?", default="", help="cub | sop (manual) | omniglot | cars196 (manual)")
    d.add_argument("--list", action="store_true", help="print every data set's files, sizes, md5 and URL; "
                   "fetch nothing")
    d.add_argument("--root", default="", help="data folder (default: $HDML_DATA if set, else "
                   "$XDG_CACHE_HOME/hdml_lite (default ~/.cache/hdml_lite)); the dataset goes to ROOT/NAME")
    d.set_defaults(func=cmd_download)
    m = sub.add_parser("demo", help="the main job: N-pair vs HDML(N-pair) on the embedded glyphs")
    m.add_argument("--fast", action="store_true", help="tiny settings (seconds), for tests")
    m.add_argument("--out", default="runs/demo")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("overrides", nargs="*", help="config overrides applied to every demo run")
    m.set_defaults(func=cmd_demo)
    cp = sub.add_parser("compare", help="a fair comparison of presets on any data set: the same lr/alpha selection "
                        "on validation classes for every method, paired seeds, verdicts",
                        description="Compare PRESET_A against each other preset: lr (and HDML's alpha, HDC's "
                        "fractions) selected for every method the same way on a validation split of the train "
                        "classes, then paired seeds on the test classes; verdicts A - B: supported / contradicted / "
                        "equivalent (90%% interval inside +-margin) / undecided. Resumes when rerun.")
    cp.add_argument("items", nargs="+", metavar="PRESET_or_key=value",
                    help="two or more presets (the first is A), then config overrides for every run")
    cp.add_argument("--data", default="glyphs", help="glyphs (default) or folder:PATH (one sub-folder per class)")
    cp.add_argument("--seeds", type=int, default=5, help="paired final seeds (>= 2; default 5)")
    cp.add_argument("--max-seeds", type=int, default=10, help="seeds added one at a time up to this while a verdict "
                    "is undecided (default 10)")
    cp.add_argument("--margin", type=float, default=1.0, help="equivalence margin in points of R@1/NMI (default 1)")
    cp.add_argument("--out", default="runs/compare", help="selection.csv, table.csv, verdicts.csv and the runs")
    cp.add_argument("--runs", default="", help="run folders (default <out>/runs; the study's, runs/study/lab, to "
                    "reuse its finished runs on the glyphs)")
    cp.add_argument("--jobs", type=int, default=2, help="parallel processes, one thread each (0: in this process)")
    cp.add_argument("--lrs", type=_float_list, default=(3e-4, 1e-3, 3e-3), metavar="LR,LR,...",
                    help="the lr grid every method selects from (default 3e-4,1e-3,3e-3; the lab study's "
                    "per-replicate grid: 3e-4,1e-3)")
    cp.add_argument("--select-seeds", type=int, default=3, help="seeds per pull target of HDML's alpha selection "
                    "(default 3; the lab study's: 1). A baseline's lr grid gets as many runs as HDML's lr x alpha "
                    "grid (one selection budget)")
    cp.add_argument("--plan", action="store_true", help="print the runs and stop")
    cp.set_defaults(func=cmd_compare)
    ps = sub.add_parser("presets", help="list the named presets")
    ps.set_defaults(func=cmd_presets)
    c = sub.add_parser("config", help="list every config key with its default (or a preset's value) and meaning")
    c.add_argument("--preset", default="", help="show this preset's values (see `presets`)")
    c.add_argument("--keys", action="store_true", help="only the key names, one per line")
    c.set_defaults(func=cmd_config)
    h = sub.add_parser("handout", help="the students' copy of the lab: the repository without notebooks/solutions/, "
                       "in one top-level folder, and zipped")
    h.add_argument("dir", help="where to write NAME/ and NAME.zip")
    h.add_argument("--name", default="hdml_lite_lab", help="the top-level folder's name (default hdml_lite_lab)")
    h.set_defaults(func=cmd_handout)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:   # compare: key=value overrides may follow the options (argparse stops its positionals there)
        if args.command != "compare" or any("=" not in e or e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.items += extra
    try:
        return args.func(args)
    except KeyboardInterrupt as exc:   # Ctrl-C: one line (RunInterrupted says where), no traceback
        print(str(exc) if str(exc) else "interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:   # e.g. `python -m hdml_lite config | head`: the reader is gone, nothing to say
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (ConfigError, OSError, ValueError, FloatingPointError, RuntimeError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__   # always one line
        print(f"error: {text}", file=sys.stderr)
        return 2
