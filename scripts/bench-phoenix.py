#!/usr/bin/env python3
"""The bench's peer: Arize Phoenix's evals scoring the bench's interactions.

Run by scripts/bench-phoenix.ts inside its own venv (the pinned arize-phoenix-evals, openai,
pandas); prints ONE JSON line on stdout:

    {"version": "<arize-phoenix-evals version>", "interactions": n, "evaluations": k,
     "seconds": <wall seconds of the eval calls only>, "labels": {evaluator: {label: count}},
     "errors": <evaluations without a rail label>}

Input: a JSONL file of interactions {"id", "prompt", "response", "context"}.

What runs: Phoenix's HallucinationEvaluator, ToxicityEvaluator and QAEvaluator (their
HALLUCINATION_PROMPT_TEMPLATE, TOXICITY_PROMPT_TEMPLATE and QA_PROMPT_TEMPLATE and rails) in
one `run_evals` call with `concurrency=N`, through Phoenix's `OpenAIModel` pointed at the
judge server's OpenAI-compatible base URL. Everything stays in memory: nothing is stored, no
Phoenix server or tracing is involved.

Choices that make it one chat completion per evaluation, like ours:
- Function calling is turned off (`use_function_calling_if_available=False`). By default
  Phoenix uses it with OpenAI models (OpenAIModel.supports_function_calling is true for any
  non-o1, non-legacy model): it sends the legacy `functions` + `function_call` fields and
  reads `message.function_call.arguments`. The judge server answers the template's plain
  single-word rail instead, which is Phoenix's other documented path (the output is snapped
  to the rails).
- No explanations (`provide_explanation=False`): one word per answer.
- Phoenix's client-side adaptive rate limiter (OpenAIModel.initial_rate_limit, 10 requests/s
  by default, growing slowly to at most 80/s) is set to --requests-per-second (default
  10000), as the bench sets our own client's LLM_REQUESTS_PER_SECOND: the judge server is
  the limit for both, not a client-side pacer. It still backs off on a 429.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections import Counter
from typing import Any, Dict, List


def read_interactions(path: str) -> List[Dict[str, str]]:
    rows: List[Dict[str, str]] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            o = json.loads(line)
            prompt = str(o.get("prompt") or "")
            response = str(o.get("response") or "")
            context = str(o.get("context") or "")
            rows.append(
                {
                    "id": str(o.get("id", len(rows))),
                    # Phoenix's column names: "input" (the query), "output" (the answer) and
                    # "reference" (the text the answer must be grounded in).
                    "input": prompt,
                    "output": response,
                    # The hallucination and QA templates need a reference text. An interaction
                    # without context has none, so its prompt stands in as the reference (the
                    # answer is then judged against the question alone).
                    "reference": context if context.strip() else prompt,
                }
            )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", required=True, help="JSONL of {id, prompt, response, context}")
    ap.add_argument("--base-url", required=True, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:PORT/openai/v1")
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--model", default="openai/gpt-oss-20b")
    ap.add_argument("--api-key", default="gsk_phoenix_bench_not_a_key")
    ap.add_argument("--requests-per-second", type=float, default=10000.0)
    args = ap.parse_args()

    real_stdout = sys.stdout
    # Phoenix and tqdm write progress and retry notices to stdout; keep stdout for the result.
    with contextlib.redirect_stdout(sys.stderr):
        from importlib.metadata import version

        import pandas as pd
        from phoenix.evals import (
            NOT_PARSABLE,
            HallucinationEvaluator,
            OpenAIModel,
            QAEvaluator,
            ToxicityEvaluator,
            run_evals,
        )

        class ResponseToxicityEvaluator(ToxicityEvaluator):
            """Phoenix's ToxicityEvaluator classifies its record's "input"; here the response is judged."""

            def evaluate(self, record: Any, *a: Any, **kw: Any) -> Any:
                return super().evaluate({**dict(record), "input": record["output"]}, *a, **kw)

            async def aevaluate(self, record: Any, *a: Any, **kw: Any) -> Any:
                return await super().aevaluate({**dict(record), "input": record["output"]}, *a, **kw)

        rows = read_interactions(args.input)
        df = pd.DataFrame(rows, columns=["id", "input", "output", "reference"]).set_index("id", drop=False)
        model = OpenAIModel(
            model=args.model,
            base_url=args.base_url,
            api_key=args.api_key,
            initial_rate_limit=args.requests_per_second,
        )
        names = ["hallucination", "toxicity", "qa"]
        evaluators = [HallucinationEvaluator(model), ResponseToxicityEvaluator(model), QAEvaluator(model)]

        started = time.perf_counter()
        frames = run_evals(
            dataframe=df,
            evaluators=evaluators,
            provide_explanation=False,
            use_function_calling_if_available=False,
            concurrency=max(1, args.concurrency),
        )
        seconds = time.perf_counter() - started

        labels: Dict[str, Dict[str, int]] = {}
        errors = 0
        for name, frame, ev in zip(names, frames, evaluators):
            rails = {r.lower() for r in ev._template.rails}
            counts: Counter = Counter()
            for label in frame["label"].tolist() if len(frame) else []:
                if label is None or (isinstance(label, float) and label != label):
                    errors += 1  # failed or never run: Phoenix's fallback value
                    continue
                counts[str(label)] += 1
                if label == NOT_PARSABLE or str(label).lower() not in rails:
                    errors += 1
            labels[name] = dict(sorted(counts.items()))

        result = {
            "version": version("arize-phoenix-evals"),
            "interactions": len(rows),
            "evaluations": len(rows) * len(evaluators),
            "seconds": round(seconds, 4),
            "labels": labels,
            "errors": errors,
        }
    real_stdout.write(json.dumps(result) + "\n")
    real_stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
