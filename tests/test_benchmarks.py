"""Smoke test of the notebook benchmark: tiny data, plain and jupyter_mv only, real kernels."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mvtest import REPO

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


def test_notebook_benchmark_quick(tmp_path):
    out_json = tmp_path / "raw.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "notebooks.py"), "--quick", "--tools", "plain,jupyter_mv",
         "--json", str(out_json), "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "| workload (10 cells) | plain | jupyter_mv |" in out
    for w in ("sklearn", "arrays", "torch", "many"):
        assert f"restore after cell 6, {w}" in out
    raw = json.loads(out_json.read_text())
    mv = [r for r in raw["results"] if r["tool"] == "jupyter_mv"]
    assert sorted(r["workload"] for r in mv) == ["arrays", "many", "sklearn", "torch"], mv
    assert all(r["error"] is None for r in mv), mv
    assert all(r["exact"] == "exact" for r in mv), [(r["workload"], r.get("wrong_vars"), r.get("restore_error"))
                                                     for r in mv]
    assert all(len(r["cells"]) == 10 and r["bytes"] > 0 for r in mv)
    assert "| target | measured |" in out


def test_llm_benchmark_quick(tmp_path):
    """benchmarks/llm.py on a tiny model: every step runs, restores give the same logits (the script
    asserts it), a LoRA version writes about the adapter's bytes, and the target table is printed."""
    pytest.importorskip("peft")
    out_json = tmp_path / "llm.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "llm.py"), "--quick", "--reps", "2",
                           "--json", str(out_json)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| target | measured |" in proc.stdout and "| restore <= 1.3x from_pretrained |" in proc.stdout
    raw = json.loads(out_json.read_text())
    assert len(raw["raw_s"]["snapshot"]) == 2 and all(t > 0 for t in raw["raw_s"]["restore"])
    assert len(raw["raw_s"]["fresh"]) == 2 and raw["ratios"]["fresh/restore"] > 0  # the fresh-memory floor
    assert "faulting in fresh memory" in proc.stdout
    assert 0 < raw["ratios"]["lora bytes/adapter"] <= 1.2, raw["lora_bytes"]
