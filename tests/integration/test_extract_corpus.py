"""Extractor quality on the shared dev corpus, scored by the corpus's own score.py."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from events.extract import candidates_to_jsonl_rows, extract_candidates

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
# The level reached when the extractor was written; a change may cost at most a little of it.
REACHED_F1 = 0.957
REACHED_FIELDS = {
    "kind": 0.977,
    "status": 0.977,
    "capacity_mw": 0.909,
    "value_usd": 1.0,
    "chip_count": 1.0,
}


def test_dev_corpus_score_does_not_drop_below_the_reached_level(tmp_path: Path) -> None:
    if not (CORPUS / "score.py").is_file() or not (CORPUS / "dev" / "gold.jsonl").is_file():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    preds = tmp_path / "preds.jsonl"
    rows = []
    for path in sorted((CORPUS / "dev" / "articles").glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        rows += candidates_to_jsonl_rows(str(path), extract_candidates(text))
    preds.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")

    run = subprocess.run(
        [
            sys.executable,
            str(CORPUS / "score.py"),
            str(CORPUS / "dev" / "gold.jsonl"),
            str(preds),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(run.stdout)

    assert result["f1"] >= REACHED_F1 - 0.02, result
    for name, reached in REACHED_FIELDS.items():
        assert result["field_accuracy"][name] >= reached - 0.03, (name, result)
