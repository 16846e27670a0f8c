"""Answer generation. Without an LLM, cairn answers extractively: cited sentences from the sources."""

from cairn.generate.extractive import extractive_answer

__all__ = ["extractive_answer"]
