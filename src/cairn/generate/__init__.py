"""Answer generation: extractive (offline, the default) or an OpenAI-compatible LLM, cited and verified.

`pipeline.Generation` is the entry point `Cairn` uses; `llm` is the LLM seam, `prompt` the grounded
prompt and token packing, `answer` the streamed answers, `verify` the citation check, `rerank` the
cross-encoder and MMR, `conversation` the follow-up rewrite.
"""

from cairn.generate.extractive import extractive_answer

__all__ = ["extractive_answer"]
