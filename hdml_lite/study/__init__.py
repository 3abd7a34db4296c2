"""The reproduction study: lab runs on the embedded glyphs, the papers' numbers, reports.

    python -m hdml_lite.study lab --plan               # runs per stage, nothing trained
    python -m hdml_lite.study lab                      # the converged lab regime -> results/
    python -m hdml_lite.study lab --regime scratch     # the 200-step from-scratch regime -> results/scratch/
    python -m hdml_lite.study lab --fast --out /tmp/s  # the same code path on tiny settings (tests)
    python -m hdml_lite.study report                   # figures + README from the CSV files
    python -m hdml_lite.study compare results/lab_table.csv --dataset cars
    python -m hdml_lite.study collect runs/ --out results/paper_runs.csv   # GPU runs -> CSV
    python -m hdml_lite.study estimate                 # Colab T4 time estimate per paper preset

Modules (imports go one way, top to bottom): ``files`` (CSV columns, reader, writer), ``stats``
(alpha grid, paired t-interval verdicts), ``plan`` (regimes, stages, runs), ``verdicts`` (the
paper's claims), ``paper`` (METHOD §1.8 numbers, comparison table), ``collect`` (paper-protocol
runs, time estimate), ``report`` (figures, README), ``lab`` (running the plan, CSV export),
``hdc`` (HDC routing study).
"""
