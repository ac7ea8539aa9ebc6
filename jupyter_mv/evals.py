"""Eval tables: a pandas DataFrame of one row per example, an example id and score columns.

Recognised by its columns (an id column such as ``id``/``example_id``/``qid`` and a numeric column named
like a score: ``score``, ``accuracy``, ``exact_match``, ``f1``, ``bleu``, ``rouge*``, ``reward``, ``loss``...),
by its variable name (``eval_*``, ``*_eval``, ``evals``) or because the user named it (``%mv_snapshot --eval
NAME``, ``snapshot(eval=NAME)``). Its record in the variable's summary (key "eval") holds the id column, the
score, input and output columns, the mean of each score (auto-extracted as the version's metrics
``<var>.<score>``) and the dataset hash: a hash of the id and input columns (everything but scores and
outputs), independent of row order, so two versions' scores are comparable only when it matches.

The diff of two versions of an eval table goes by example id: regressions first (a score got worse), then
improvements, new and removed examples, and each score's mean delta.
"""

from __future__ import annotations

import json
import math
import re

from .errors import UsageError

ID_COLUMNS = ("example_id", "id", "qid", "question_id", "sample_id", "item_id", "task_id", "case_id", "prompt_id",
              "instance_id", "uid", "idx")
_SCORE = re.compile(r"score|acc|correct|exact|(^|_)em($|_)|f1|bleu|rouge|chrf|meteor|bert_?score|pass|reward|"
                    r"rating|judge|(^|_)win|precision|recall|similarity|faithful|relevan|toxic|grade|match|"
                    r"perplexity|ppl|loss|error|(^|_)wer($|_)|(^|_)cer($|_)", re.I)
# scores where lower is better: an increase is a regression
_LOWER_BETTER = re.compile(r"loss|error|perplexity|ppl|(^|_)wer($|_)|(^|_)cer($|_)|toxic|latency|(^|_)time|cost",
                           re.I)
_OUTPUT = re.compile(r"output|prediction|(^|_)preds?($|_)|completion|response|generat|hypothesis|model_answer",
                     re.I)
_NAME = re.compile(r"(^|_)evals?($|_)", re.I)
MAX_EXAMPLES = 50  # examples listed per group (regressions, improvements, new, removed); counts are complete
MAX_TEXT = 200  # characters of an output cell shown beside a regression


def is_frame(obj) -> bool:
    t = type(obj)
    return t.__name__ == "DataFrame" and (t.__module__ or "").startswith("pandas")


def name_hinted(name: str) -> bool:
    return bool(_NAME.search(name))


def _id_column(df, loose: bool):
    """The example id column's name, "" for the index, None when there is none. An id must be unique
    and present in every row. `loose` (named or eval_*): any unique index will do."""
    named = False
    for want in ID_COLUMNS:
        for c in df.columns:
            if str(c).lower() == want:
                col = df[c]
                if col.notna().all() and col.is_unique:
                    return c
                named = True
    if named:  # an id column whose ids repeat: the row position is no example id either
        return None
    idx = df.index
    if idx.is_unique and not idx.hasnans and (loose or str(idx.name or "").lower() in ID_COLUMNS):
        return ""
    return None


def describe(name: str, df, forced: bool = False) -> dict | None:
    """The eval record of a DataFrame, or None when it is not an eval table. With `forced` (the user
    named it as one) a frame that cannot be one raises UsageError saying why."""
    import numpy as np
    import pandas as pd

    if not is_frame(df):
        if forced:
            raise UsageError(f"--eval {name}: an eval table is a pandas DataFrame, not {type(df).__name__}")
        return None
    loose = forced or name_hinted(name)
    id_col = _id_column(df, loose)
    numeric = [c for c in df.columns if c is not id_col and c != id_col
               and (pd.api.types.is_numeric_dtype(df[c].dtype) or pd.api.types.is_bool_dtype(df[c].dtype))
               and not pd.api.types.is_complex_dtype(df[c].dtype)]
    hinted = [c for c in numeric if _SCORE.search(str(c))]
    scores = hinted or (numeric if loose else [])
    if id_col is None or not scores:
        if forced:
            named = [c for c in df.columns if str(c).lower() in ID_COLUMNS]
            if id_col is None and named:
                why = f"its id column {str(named[0])!r} has repeated or missing values"
            elif id_col is None:
                why = "no example id column (one named " + "/".join(ID_COLUMNS[:4]) + "…, or a unique index)"
            else:
                why = "no numeric score column"
            raise UsageError(f"--eval {name}: not an eval table: {why}")
        return None
    rest = [c for c in df.columns if c != id_col and c not in scores]
    # a column named like a score that is not numeric ("good"/"bad" grades, a judge's verdict) is a result of
    # the run like an output: not part of the dataset, so a new grade does not make the datasets differ
    outputs = [c for c in rest if _OUTPUT.search(str(c)) or _grade_named(str(c))]
    inputs = [c for c in rest if c not in outputs]
    means = {}
    for c in scores:
        col = pd.to_numeric(df[c], errors="coerce").astype("float64").to_numpy()
        col = col[~np.isnan(col)]
        if len(col) and np.isfinite(col).all():
            # fsum is exactly rounded, so independent of row order: reordered rows keep the same mean
            means[str(c)] = math.fsum(col.tolist()) / len(col)
    return {"id_column": None if id_col == "" else str(id_col), "scores": [str(c) for c in scores],
            "lower_is_better": [str(c) for c in scores if _LOWER_BETTER.search(str(c))],
            "inputs": [str(c) for c in inputs], "outputs": [str(c) for c in outputs], "rows": int(len(df)),
            "means": means, "dataset_hash": dataset_hash(df, id_col, inputs)}


_GRADE_WORD = re.compile(r"scores?|acc(uracy)?|correct(ness)?|exact|em|f1|bleu|rouge\w*|chrf|meteor|bertscore|"
                         r"pass(ed)?|reward|rating|judge(ment)?|judgment|verdict|grade[ds]?|win|precision|recall|"
                         r"similarity|faithful(ness)?|relevan(ce|cy)|toxic(ity)?|match(es)?", re.I)


def _grade_named(name: str) -> bool:
    """A column name with a whole word naming a score or verdict ("score", "judge_verdict", "exact_match";
    not "passage", whose text merely contains one)."""
    return any(_GRADE_WORD.fullmatch(w) for w in re.split(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])", name) if w)


def why_not(name: str, df) -> str | None:
    """Why DataFrame `df` is not an eval table (the reason `--eval NAME` would give), None when it is one."""
    try:
        describe(name, df, forced=True)
    except UsageError as e:
        return str(e).split(": not an eval table: ", 1)[-1]
    except Exception as e:  # a frame that breaks the inspection
        return f"it cannot be read as one: {type(e).__name__}"
    return None


def dataset_hash(df, id_col, inputs: list) -> str:
    """xxh3-128 hex of the id and input columns: their names and the multiset of their rows (pandas'
    per-row hash, sorted, so reordering the rows is the same dataset)."""
    import numpy as np
    import pandas as pd
    import xxhash

    part = df[inputs].copy() if inputs else pd.DataFrame(index=df.index)
    part.insert(0, "__id", df.index if id_col == "" else df[id_col])
    try:
        rows = pd.util.hash_pandas_object(part, index=False).to_numpy()
    except (TypeError, ValueError):  # unhashable cells (lists, dicts; tuples make numpy raise ValueError): by text
        rows = pd.util.hash_pandas_object(part.astype(str), index=False).to_numpy()
    h = xxhash.xxh3_128()
    h.update(json.dumps(["" if id_col == "" else str(id_col)] + [str(c) for c in inputs]).encode())
    h.update(np.sort(rows).tobytes())
    return h.hexdigest()


def metrics(name: str, record: dict) -> dict:
    """{"<name>.<score>": mean} of an eval record: the version's auto-extracted metrics."""
    return {f"{name}.{k}": v for k, v in (record.get("means") or {}).items()}


def _jsonable(v):
    if v is None or isinstance(v, (bool, int, str)):
        return v
    try:
        import numpy as np

        if isinstance(v, np.generic):
            v = v.item()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(v, float):
        return v if math.isfinite(v) else repr(v)
    if isinstance(v, (bool, int, str)):
        return v
    return str(v)


def _ids(df, rec: dict) -> list:
    """The example ids in row order, by position (a frame's labels need not start at 0)."""
    col = rec.get("id_column")
    return list(df.index if col is None else df[_column(df, col)].to_numpy())


def _column(df, name: str):
    """The frame's column whose str() is `name` (records name columns as text)."""
    for c in df.columns:
        if str(c) == name:
            return c
    raise KeyError(name)


def _num(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f == f else None


def diff(old_df, new_df, old: dict, new: dict) -> dict:
    """The eval part of a changed eval table's diff (both records from `describe`; the frames None:
    from the records alone, no example lists):

    {"kind": "eval", "id_column", "comparable": dataset hashes equal, "dataset_hash": [old, new],
    "note": why not comparable or "", "mean_delta": {score: {"old", "new", "delta"}},
    "regressions" / "improvements": [{"id", "scores": {score: [old, new]}, "outputs": {col: [old, new]}}]
    worst / best first, "added" / "removed": [ids], "counts": {regressions, improvements, added, removed,
    unchanged}}. A score missing on one side (NaN) counts as worse when it disappears."""
    scores = [s for s in new["scores"] if s in old["scores"]]
    lower = set(old.get("lower_is_better") or []) | set(new.get("lower_is_better") or [])
    outputs = [c for c in new.get("outputs") or [] if c in (old.get("outputs") or [])]
    comparable = old.get("dataset_hash") == new.get("dataset_hash") and old.get("id_column") == new.get("id_column")
    out: dict = {"kind": "eval", "id_column": new.get("id_column"), "comparable": comparable,
                 "dataset_hash": [old.get("dataset_hash"), new.get("dataset_hash")], "note": "",
                 "scores": scores, "mean_delta": {}, "regressions": [], "improvements": [], "added": [],
                 "removed": []}
    if not comparable:
        out["note"] = (f"eval datasets differ ({str(old.get('dataset_hash'))[:12]} vs {str(new.get('dataset_hash'))[:12]}: "
                       "other examples or inputs), so their scores are not comparable")
    for s in scores:
        o, n = (old.get("means") or {}).get(s), (new.get("means") or {}).get(s)
        out["mean_delta"][s] = {"old": o, "new": n, "delta": None if o is None or n is None else n - o}
    if old_df is None or new_df is None:
        out["examples_note"] = "examples not compared: the tables are larger than a diff loads"
        return out
    cols_a = {s: old_df[_column(old_df, s)].to_numpy() for s in scores}
    cols_b = {s: new_df[_column(new_df, s)].to_numpy() for s in scores}
    outs_a = {c: old_df[_column(old_df, c)].to_numpy() for c in outputs}
    outs_b = {c: new_df[_column(new_df, c)].to_numpy() for c in outputs}
    ia, ib = _ids(old_df, old), _ids(new_df, new)
    pos_a = {_key(v): i for i, v in enumerate(ia)}
    pos_b = {_key(v): i for i, v in enumerate(ib)}
    regressions, improvements, unchanged = [], [], 0
    for k, j in pos_b.items():
        i = pos_a.get(k)
        if i is None:
            continue
        worst, best, changed = 0.0, 0.0, {}
        for s in scores:
            a, b = _num(cols_a[s][i]), _num(cols_b[s][j])
            if a == b:
                continue
            changed[s] = [a, b]
            if a is None or b is None:
                gain = math.inf if a is None else -math.inf  # a score appearing is better, vanishing worse
            else:
                gain = (a - b) if s in lower else (b - a)
            worst, best = min(worst, gain), max(best, gain)
        if not changed:
            unchanged += 1
            continue
        entry = {"id": _jsonable(ib[j]), "scores": changed,
                 "outputs": {c: [_cut(outs_a[c][i]), _cut(outs_b[c][j])] for c in outputs
                             if str(outs_a[c][i]) != str(outs_b[c][j])}}
        if worst < 0:
            regressions.append((worst, j, entry))
        else:
            improvements.append((-best, j, entry))
    regressions.sort(key=lambda x: (x[0], x[1]))
    improvements.sort(key=lambda x: (x[0], x[1]))
    added = [_jsonable(ib[j]) for k, j in pos_b.items() if k not in pos_a]
    removed = [_jsonable(ia[i]) for k, i in pos_a.items() if k not in pos_b]
    out["regressions"] = [e for *_, e in regressions[:MAX_EXAMPLES]]
    out["improvements"] = [e for *_, e in improvements[:MAX_EXAMPLES]]
    out["added"], out["removed"] = added[:MAX_EXAMPLES], removed[:MAX_EXAMPLES]
    out["counts"] = {"regressions": len(regressions), "improvements": len(improvements), "added": len(added),
                     "removed": len(removed), "unchanged": unchanged}
    return out


def _key(v):
    """A hashable id that matches across versions (numpy scalars as Python values)."""
    v = _jsonable(v)
    return (type(v).__name__ if isinstance(v, (bool,)) else "", v)


def _cut(v) -> str:
    t = str(_jsonable(v))
    return t if len(t) <= MAX_TEXT else t[: MAX_TEXT - 1] + "…"
