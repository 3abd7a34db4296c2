"""Visualisation for the notebooks: plots, the 2-D toy picture, t-SNE maps, slider update functions.

- ``palette.py``   one colour per method and per role (anchor, positive, real/synthetic negative)
- ``plots.py``     learning curves, losses, sample grids
- ``mechanism.py`` HDML's diagnostics over steps: classifier, synthetic weight, pull factor, hardness
- ``toy.py``       toy class manifolds and the hardness-aware augmentation drawn in 2-D
- ``tsne.py``      Barnes-Hut t-SNE (openTSNE), placing new points into a map, thumbnails
- ``synthetic.py`` a trained HDML model's synthetic negatives placed into its t-SNE map
- ``widgets.py``   slider update functions (plain, testable) and their ipywidgets wrappers
- ``mining.py``    HDC's selected pairs against HDML's synthetic negatives, step by step
- ``results.py``   the study's CSV files, summaries over seeds, the paper's numbers
- ``notebook.py``  fast mode, run/result folders and training budgets for the notebooks
"""
