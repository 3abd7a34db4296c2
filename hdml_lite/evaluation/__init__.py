"""Evaluation (METHOD §4): Recall@K, MAP@R, R-precision, NMI, F1."""
from .clustering import cluster_metrics, kmeans_labels, pair_f1
from .eval_set import EvalTensors, eval_tensors, materialise
from .evaluate import compute_embeddings, evaluate, evaluate_embeddings, kmeans_args, ks_for
from .retrieval import knn, map_at_r, r_precision, recall_at_k, retrieval_metrics

__all__ = ["knn", "recall_at_k", "map_at_r", "r_precision", "retrieval_metrics",
           "cluster_metrics", "kmeans_labels", "pair_f1",
           "EvalTensors", "eval_tensors", "materialise",
           "compute_embeddings", "evaluate_embeddings", "evaluate", "kmeans_args", "ks_for"]
