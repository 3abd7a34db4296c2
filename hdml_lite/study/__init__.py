"""The reproduction study: lab runs on the embedded glyphs, the papers' numbers, reports.

    python -m hdml_lite.study lab --plan               # runs per stage, nothing trained (--fingerprint: its hash)
    python -m hdml_lite.study lab                      # the converged lab regime -> results/
    python -m hdml_lite.study lab --regime scratch     # the 200-step from-scratch regime -> results/scratch/
    python -m hdml_lite.study lab --fast --out /tmp/s  # the same code path on tiny settings (tests)
    python -m hdml_lite.study report                   # figures + README from the CSV files
    python -m hdml_lite.study compare results/lab_table.csv --dataset cars
    python -m hdml_lite.study collect runs/ --out results/paper_runs.csv   # GPU runs -> CSV
    python -m hdml_lite.study estimate                 # Colab T4 time estimate per paper preset
    python -m hdml_lite.study notebooks                # the notebooks' pinned runs -> hdml_lite/pinned/data

Modules (imports go one way, top to bottom): ``files`` (CSV columns, reader, writer), ``stats``
(alpha grid, paired verdicts with equivalence), ``keys`` (the study's methods, claims, start
values), ``plan`` (the comparison engine's stages and runs), ``engine`` (training the plan,
choices, verdicts), ``paper`` (METHOD §1.8 numbers, comparison table), ``collect``
(paper-protocol runs, time estimate), ``tables`` / ``figures`` / ``report`` (README),
``export`` (the study's CSV files), ``lab`` (the lab study), ``compare`` (``python -m hdml_lite
compare``: the engine on any presets and data), ``hdc`` (HDC routing study).
"""
