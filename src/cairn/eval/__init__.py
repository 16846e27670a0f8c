"""Retrieval quality on BEIR-format evaluation sets: loader, metrics and the `cairn eval` runner."""

from cairn.eval.dataset import EvalDataset, load_dataset
from cairn.eval.metrics import QueryMetrics, collapse_to_documents, mean_metrics, score_ranking

__all__ = ["EvalDataset", "QueryMetrics", "collapse_to_documents", "load_dataset", "mean_metrics", "score_ranking"]
