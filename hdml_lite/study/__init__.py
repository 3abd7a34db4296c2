"""The reproduction study: lab runs on the embedded glyphs, the papers' numbers, reports.

    python -m hdml_lite.study lab                      # the whole lab study -> results/
    python -m hdml_lite.study lab --fast --out /tmp/s  # the same code path on tiny settings (tests)
    python -m hdml_lite.study report                   # figures + README from the CSV files
    python -m hdml_lite.study compare results/lab_table.csv --dataset cars
    python -m hdml_lite.study collect runs/ --out results/paper_runs.csv   # GPU runs -> CSV
    python -m hdml_lite.study estimate                 # Colab T4 time estimate per paper preset

Modules: ``lab`` (plan, runs, CSV), ``paper`` (HDML_SPEC 1.8 numbers, comparison table),
``report`` (figures, results/README.md), ``collect`` (paper-protocol runs, time estimate).
"""
