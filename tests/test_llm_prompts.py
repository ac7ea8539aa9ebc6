"""LLM work (issue 15): prompts, generation settings and eval tables as first-class parts of a version,
in a real IPython shell with the extension loaded."""

from __future__ import annotations

import json
import string

import pytest

import jupyter_mv as mv
from jupyter_mv import api, prompts
from jupyter_mv.errors import UsageError


def _summary(name: str, ref: str = "latest") -> dict:
    st = api.session().store()
    v = api.resolve(ref)
    return next(x for x in st.variables(v) if x.name == name).summary


# -- detection -----------------------------------------------------------------------------------
PROMPTS = [
    ("qa", "Answer the question using only the context below.\nContext: {context}\nQuestion: {question}",
     "format", ["context", "question"]),
    ("rag_prompt", "Summarize {doc}", "format", ["doc"]),
    ("tmpl", "Hello {{ name }}, you asked about {{ topic|upper }}.", "jinja", ["name", "topic"]),
    ("mustache_template", "Hi {{name}}! {{#items}}- {{.}}\n{{/items}}", "jinja", ["name", "items"]),
    ("system_prompt", "You are a terse assistant. Never apologise.", "text", []),
    ("classify", "Classify the sentiment of the following review as positive or negative: {review}",
     "format", ["review"]),
    # str.format's escaped braces around a JSON example are literal text, not placeholders
    ("judge", 'Reply only as JSON like {{"label": "pos"}} for the following review text: {review}', "format",
     ["review"]),
    ("loop_template", "{% for d in docs %}[{{ loop.index }}] {{ d }}\n{% endfor %}Question: {{ q }}", "jinja",
     ["docs", "q"]),
]

NOT_PROMPTS = [
    ("payload", '{"model": "gpt2", "prompt": "{x}", "temperature": 0.7}'),  # JSON, even with braces inside
    ("fmt", "{:.2f}"),  # a format spec
    ("row", "{0} {1} {2}"),  # positional fields
    ("log_fmt", "{asctime} {levelname} {name} {message}"),  # a log format: no prose around the fields
    ("msg", "Training finished after {n} epochs with final loss {loss}"),  # a short f-string leftover
    ("css", "body {color: red} p {margin: 0} and then some more words about the page style here"),
    ("path", "runs/{model}/{seed}/checkpoint.pt"),
    ("url", "https://example.invalid/api/{user}/repos?page={page}"),
    ("code", "def f(x):\n    return {x: 1 for x in range(3)}"),
    ("braces", "a set literal {1, 2, 3} in some prose text that goes on for a while longer"),
    ("unbalanced", "an unbalanced { brace in a long enough sentence with words {name"),
    ("title", "Results"),
    ("template_name", "report.html"),  # a name hint alone is not enough: no placeholder
    # SQL statements with placeholders, upper or lower case, even when the name says template
    ("query", "SELECT * FROM users WHERE id = {user_id} AND name = '{name}' ORDER BY created_at DESC LIMIT 10"),
    ("sql", "select name, score from results where run_id = {run_id} and split = '{split}' order by score desc"),
    ("sql_template", "SELECT id, text FROM documents WHERE project = {project} LIMIT {n}"),
    ("cte", "-- recent events\nWITH recent AS (SELECT * FROM events WHERE day > '{day}') "
            "SELECT user_id, count(*) FROM recent GROUP BY user_id"),
    ("upsert", "INSERT INTO runs (name, lr, epochs) VALUES ('{name}', {lr}, {epochs}) ON CONFLICT DO NOTHING"),
    # text formatting values for display: an f-string that lost its f, a log line, a report line
    ("msg2", "Training finished after {n_epochs} epochs with final accuracy {acc:.2%} on the validation set"),
    ("logline", "epoch {epoch} of {total}: the loss is {loss:.4f} and the learning rate is {lr:.2e} now"),
    ("report", "Your score is {score:>10} and your answer was {answer!r} for the given question today"),
    # LaTeX (a plot label, a formula): braces are a command's argument or math, not placeholders
    ("xlabel", r"$\mathrm{loss}$ of the model over {epoch} epochs for the given validation question set"),
    ("formula", r"\frac{a}{b} is the ratio of the answer to the question given to you by the user here"),
    ("subscript", r"the answer $x_{t}$ to the question at step {step} given the context you see here"),
]

# prose that starts with a SQL verb, and a value format in a variable named as a prompt, stay prompts
PROMPTS += [
    ("ask", "Select the best answer from the options below for the question: {question}", "format", ["question"]),
    ("guide", "With the context below, answer the question as briefly as you can.\n{context}\n{question}",
     "format", ["context", "question"]),
    ("judge_prompt", "Rate the answer from 0 to 1; the last score was {last:.2f}. Answer: {answer}", "format",
     ["last", "answer"]),
]


@pytest.mark.parametrize("name, text, kind, names", PROMPTS)
def test_prompt_strings_recognised(name, text, kind, names):
    rec = prompts.describe(name, text)
    assert rec is not None, name
    assert rec["kind"] == kind and rec["placeholders"] == names and rec["text"] == text


@pytest.mark.parametrize("name, text", NOT_PROMPTS)
def test_strings_with_braces_are_not_all_prompts(name, text):
    assert prompts.describe(name, text) is None


def test_chat_lists_and_template_objects():
    chat = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Describe {thing}"}, {"type": "image"}]}]
    rec = prompts.describe("messages", chat)
    assert rec == {"kind": "chat", "placeholders": ["thing"],
                   "text": "[system]\nBe brief.\n[user]\nDescribe {thing}\n<image>"}
    tools = [{"role": "user", "content": "Weather in {city}?"},
             {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function"}]}]
    assert prompts.describe("turns", tools)["text"] == "[user]\nWeather in {city}?\n[assistant]\n"
    pairs = [("system", "You grade answers."), ("human", "Grade {answer} against {reference}")]
    assert prompts.describe("x", pairs)["placeholders"] == ["answer", "reference"]
    # lists that only look a bit like messages
    assert prompts.describe("rows", [{"role": "admin", "name": "ann"}]) is None
    assert prompts.describe("rows", [{"role": "user", "content": "hi"}, {"id": 3}]) is None
    assert prompts.describe("pairs", [("alice", "bob")]) is None
    assert prompts.describe("empty", []) is None
    t = string.Template("Dear $name, your order $order shipped.")
    assert prompts.describe("t", t) == {"kind": "string.Template", "placeholders": ["name", "order"],
                                        "text": t.template}


def test_long_prompt_is_cut_in_the_summary_and_says_so():
    text = "Answer the question about the context.\n{context}\n" + "word " * 30_000
    rec = prompts.describe("p", text)
    assert len(rec["text"]) == prompts.MAX_TEXT and rec["truncated"] == len(text)


# -- in a shell: stored exactly, shown as prompts ------------------------------------------------------
def test_prompt_versions_line_diff_and_exact_restore(shell, run, capsys):
    run('qa_prompt = "Answer the question.\\nContext: {context}\\nQuestion: {question}"')
    run('chat = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "{question}"}]')
    run("%mv_snapshot -m 'prompt v1'")
    rec = _summary("qa_prompt")["prompt"]
    assert rec == {"kind": "format", "placeholders": ["context", "question"],
                   "text": "Answer the question.\nContext: {context}\nQuestion: {question}"}
    assert _summary("chat")["prompt"]["kind"] == "chat"
    run('qa_prompt = "Answer the question briefly.\\nContext: {context}\\nQuestion: {question}\\nStyle: {style}"')
    run('chat[0]["content"] = "You are terse and polite."')
    run("%mv_snapshot -m 'prompt v2'")
    d = mv.diff("v1", "v2").to_dict()
    changed = {c["name"]: c for c in d["variables"]["changed"]}
    a = changed["qa_prompt"]["analysis"]
    assert a["kind"] == "prompt" and a["prompt_kind"] == ["format", "format"]
    assert a["placeholders"] == {"old": ["context", "question"], "new": ["context", "question", "style"],
                                 "added": ["style"], "removed": []}
    assert "-Answer the question." in a["line_diff"] and "+Answer the question briefly." in a["line_diff"]
    assert "+Style: {style}" in a["line_diff"] and " Context: {context}" in a["line_diff"]
    c = changed["chat"]["analysis"]
    assert c["line_diff"] == ["@@ -1,4 +1,4 @@", " [system]", "-You are terse.", "+You are terse and polite.",
                              " [user]", " {question}"]
    text = str(mv.diff("v1", "v2"))
    assert "prompt (format), placeholders: context, question, style  (+style)" in text
    assert "      -Answer the question.\n      +Answer the question briefly." in text
    capsys.readouterr()
    run("%mv_diff v1 v2")
    shown = capsys.readouterr().out
    assert "+Answer the question briefly." in shown or "qa_prompt" in shown
    # stored as the value itself: a str comes back a str, the list a list of dicts
    run("%mv_restore v1 qa_prompt chat")
    assert type(shell.user_ns["qa_prompt"]) is str
    assert shell.user_ns["qa_prompt"] == "Answer the question.\nContext: {context}\nQuestion: {question}"
    assert shell.user_ns["chat"][0] == {"role": "system", "content": "You are terse."}


def test_langchain_templates(shell, run):
    run("from langchain_core.prompts import PromptTemplate, ChatPromptTemplate, MessagesPlaceholder")
    run("pt = PromptTemplate.from_template('Translate {text} into {language}.')")
    run("chat_t = ChatPromptTemplate.from_messages([('system', 'You translate into {language}.'), "
        "MessagesPlaceholder('history'), ('human', '{text}')])")
    run("%mv_snapshot pt chat_t")
    p = _summary("pt")["prompt"]
    assert p["kind"] == "langchain.PromptTemplate" and sorted(p["placeholders"]) == ["language", "text"]
    assert p["text"] == "Translate {text} into {language}."
    c = _summary("chat_t")["prompt"]
    assert c["kind"] == "langchain.ChatPromptTemplate"
    assert sorted(c["placeholders"]) == ["history", "language", "text"]
    assert c["text"] == "[system]\nYou translate into {language}.\n[placeholder]\n{history}\n[human]\n{text}"
    run("pt = PromptTemplate.from_template('Translate {text} into {language}, formally.')")
    run("%mv_snapshot pt chat_t")
    a = {x["name"]: x for x in mv.diff("v1", "v2").to_dict()["variables"]["changed"]}["pt"]["analysis"]
    assert a["line_diff"][1:] == ["-Translate {text} into {language}.", "+Translate {text} into {language}, formally."]


def test_jinja2_template_source_from_its_loader(shell, run, tmp_path):
    (tmp_path / "ask.j2").write_text("Context:\n{{ context }}\nQuestion: {{ question }}\n")
    run(f"import jinja2; env = jinja2.Environment(loader=jinja2.FileSystemLoader({str(tmp_path)!r}))")
    run("ask = env.get_template('ask.j2')")
    assert prompts.describe("ask", shell.user_ns["ask"]) == {
        "kind": "jinja2.Template", "placeholders": ["context", "question"],
        "text": "Context:\n{{ context }}\nQuestion: {{ question }}\n"}
    run("inline = jinja2.Template('Hi {{ name }}')")  # compiled from a string: no source to show
    assert prompts.describe("inline", shell.user_ns["inline"]) is None


# -- generation settings -------------------------------------------------------------------------------
def test_generation_settings_become_params(shell, run):
    run("from transformers import GenerationConfig")
    run("gen_cfg = GenerationConfig(temperature=0.7, top_p=0.9, top_k=40, max_new_tokens=64, "
        "repetition_penalty=1.1, do_sample=True)")
    run("%mv_snapshot -m 'gen'")
    p = mv.history()["params"].iloc[-1]
    assert {k: p[k] for k in ("temperature", "top_p", "top_k", "max_new_tokens", "repetition_penalty")} == {
        "temperature": 0.7, "top_p": 0.9, "top_k": 40, "max_new_tokens": 64, "repetition_penalty": 1.1}
    assert p["do_sample"] is True
    # a second source of settings: each is named after its variable
    run("gen_kwargs = {'model': 'tiny-gpt2', 'temperature': 0.2, 'seed': 7, 'max_new_tokens': 16}")
    run("%mv_snapshot -m 'two'")
    p = mv.history()["params"].iloc[-1]
    assert p["gen_cfg.temperature"] == 0.7 and p["gen_kwargs.temperature"] == 0.2
    assert p["gen_kwargs.model_id"] == "tiny-gpt2" and p["gen_kwargs.seed"] == 7
    assert "temperature" not in p


def test_generation_dicts_only_when_they_hold_generation_names(shell, run):
    run("rng = {'seed': 3}")  # a seed alone is any RNG's
    run("layout = {'top': 1, 'bottom': 2}")
    run("%mv_snapshot")
    assert not {"seed", "top_k", "rng.seed"} & set(mv.history()["params"].iloc[-1])


def test_hf_token_in_generation_or_prompt_dicts_is_withheld(shell, run, tmp_path, capsys):
    from test_credentials import bundle_bytes

    token = "hf_" + "Zq8vR2mT5xL9wK3nB7cD1fG4hJ6pS0aY"
    run(f"gen = {{'model': 'org/tiny', 'temperature': 0.3, 'hf_token': {token!r}}}")
    run(f"cfg = {{'prompt': 'Answer {{question}} with care and cite the context given below.', 'api_key': {token!r}}}")
    run("%mv_snapshot -m 'auto'")  # argument-less: credential variables are left out, and named
    out = capsys.readouterr().out
    assert "skipped: gen, cfg" in out
    v = api.resolve("latest")
    assert v.params["temperature"] == 0.3 and v.params["model_id"] == "org/tiny"
    assert token not in json.dumps(v.params)
    run("%mv_snapshot gen cfg -m 'named'")  # named: stored (the user's disk), marked, masked in views
    assert token not in json.dumps(_summary("cfg")) and token not in json.dumps(_summary("gen"))
    capsys.readouterr()
    run(f"%mv_export latest {tmp_path / 'share.mvz'}")
    err = capsys.readouterr().err
    assert "credentials withheld" in err and "variable cfg" in err and "variable gen" in err
    for member, data in bundle_bytes(tmp_path / "share.mvz").items():
        assert token.encode() not in data, member


# -- eval tables ---------------------------------------------------------------------------------------
EVAL_V1 = """
import pandas as pd
eval_df = pd.DataFrame({
    "id": ["q1", "q2", "q3", "q4", "q5", "q6"],
    "question": ["2+2", "capital of France", "3*3", "color of sky", "largest planet", "h2o"],
    "output": ["4", "Paris", "9", "blue", "Mars", "water"],
    "exact_match": [1.0, 1.0, 1.0, 0.0, 0.0, 1.0],
    "loss": [0.1, 0.2, 0.1, 0.9, 0.8, 0.2],
})
"""


def test_eval_table_metrics_and_diff_by_example_id(shell, run, capsys):
    run(EVAL_V1)
    run("%mv_snapshot -m 'eval v1'")
    v1 = api.resolve("v1")
    assert v1.metrics["eval_df.exact_match"] == pytest.approx(4 / 6)
    assert v1.metrics["eval_df.loss"] == pytest.approx(2.3 / 6)
    rec = _summary("eval_df")["eval"]
    assert rec["id_column"] == "id" and rec["scores"] == ["exact_match", "loss"]
    assert rec["inputs"] == ["question"] and rec["outputs"] == ["output"] and rec["lower_is_better"] == ["loss"]
    assert v1.params["eval_df.dataset"] == rec["dataset_hash"][:16]
    # new outputs and scores on the same examples: comparable
    run("eval_df = eval_df.copy()")
    run("eval_df['output'] = ['4', 'Lyon', '6', 'blue', 'Jupiter', 'water']")
    run("eval_df['exact_match'] = [1.0, 0.0, 0.5, 1.0, 1.0, 1.0]")
    run("eval_df['loss'] = [0.1, 0.7, 0.3, 0.2, 0.1, 0.35]")
    run("%mv_snapshot -m 'eval v2'")
    d = mv.diff("v1", "v2").to_dict()
    assert d["metrics"]["changed"]["eval_df.exact_match"]["delta"] == pytest.approx(0.5 / 6)
    a = d["variables"]["changed"][0]["analysis"]
    assert a["kind"] == "eval" and a["comparable"] is True and a["note"] == ""
    # regressions first, worst first: q2 (em -1), q3 (em -0.5); q6 only got a worse loss (lower is better)
    assert [e["id"] for e in a["regressions"]] == ["q2", "q3", "q6"]
    assert a["regressions"][0]["scores"] == {"exact_match": [1.0, 0.0], "loss": [0.2, 0.7]}
    assert a["regressions"][0]["outputs"] == {"output": ["Paris", "Lyon"]}
    assert [e["id"] for e in a["improvements"]] == ["q4", "q5"]
    assert a["counts"] == {"regressions": 3, "improvements": 2, "added": 0, "removed": 0, "unchanged": 1}
    assert a["mean_delta"]["exact_match"]["delta"] == pytest.approx(0.5 / 6)
    text = str(mv.diff("v1", "v2"))
    lines = text.splitlines()
    first_reg = next(i for i, ln in enumerate(lines) if "regressed 'q2'" in ln)
    first_imp = next(i for i, ln in enumerate(lines) if "improved 'q4'" in ln)
    assert first_reg < first_imp
    assert "eval by id: 3 regressed, 2 improved, 0 new, 0 removed, 1 unchanged" in text
    assert "not comparable" not in text
    from mvtest import cli_in_process

    r = cli_in_process("--store", ".jupyter_mv", "diff", "v1", "v2")
    assert r.returncode == 0, r.stderr
    assert "regressed 'q2': exact_match 1 -> 0, loss 0.2 -> 0.7" in r.stdout


def test_eval_dataset_change_is_named_and_rows_order_is_not_one(shell, run):
    run(EVAL_V1)
    run("%mv_snapshot")
    h1 = _summary("eval_df")["eval"]["dataset_hash"]
    run("eval_df = eval_df.iloc[::-1].reset_index(drop=True)")  # same examples, other order
    run("%mv_snapshot")
    assert _summary("eval_df")["eval"]["dataset_hash"] == h1
    run("eval_df = eval_df[eval_df.id != 'q6']")
    run("eval_df = pd.concat([eval_df, pd.DataFrame({'id': ['q7'], 'question': ['1+1'], 'output': ['2'], "
        "'exact_match': [1.0], 'loss': [0.1]})], ignore_index=True)")
    run("%mv_snapshot")
    a = mv.diff("v2", "v3").to_dict()["variables"]["changed"][0]["analysis"]
    assert a["comparable"] is False and a["added"] == ["q7"] and a["removed"] == ["q6"]
    assert "not comparable" in a["note"]
    text = str(mv.diff("v2", "v3"))
    assert "! eval datasets differ" in text and "scores are not comparable" in text
    assert "new: 'q7'" in text and "removed: 'q6'" in text
    # an input changed under the same ids: another dataset too
    run("eval_df.loc[0, 'question'] = 'what is 2+2?'")
    run("%mv_snapshot")
    assert mv.diff("v3", "v4").to_dict()["variables"]["changed"][0]["analysis"]["comparable"] is False


def test_reordered_rows_and_new_grades_are_the_same_dataset_and_means(shell, run):
    """Reordering an eval table's rows changes nothing: not its dataset, not a mean (an exactly rounded
    sum, so no 1e-17 "change" in the metrics); a non-numeric column named like a score (a judge's verdict)
    is a result, not an input: a new verdict keeps the dataset comparable, and shows beside the example."""
    run("import numpy as np, pandas as pd\nrng = np.random.default_rng(0)\n"
        "eval_df = pd.DataFrame({'id': [f'q{i}' for i in range(2000)], 'question': ['x'] * 2000,"
        " 'score': rng.random(2000) * 1e3, 'verdict': ['good'] * 2000, 'passage': ['text'] * 2000})")
    run("%mv_snapshot")
    rec = _summary("eval_df")["eval"]
    assert rec["inputs"] == ["question", "passage"] and rec["outputs"] == ["verdict"]
    run("eval_df = eval_df.sample(frac=1, random_state=3)")
    run("%mv_snapshot")
    assert api.resolve("v1").metrics == api.resolve("v2").metrics
    d = mv.diff("v1", "v2").to_dict()
    assert d["metrics"]["changed"] == {}
    a = d["variables"]["changed"][0]["analysis"]
    assert a["comparable"] is True and a["counts"]["unchanged"] == 2000 and a["mean_delta"]["score"]["delta"] == 0
    run("eval_df = eval_df.copy(); eval_df.loc[eval_df.id == 'q5', ['score', 'verdict']] = [-1.0, 'bad']")
    run("%mv_snapshot")
    a = mv.diff("v2", "v3").to_dict()["variables"]["changed"][0]["analysis"]
    assert a["comparable"] is True and a["note"] == ""
    assert [e["id"] for e in a["regressions"]] == ["q5"] and a["regressions"][0]["outputs"]["verdict"] == ["good", "bad"]


def test_eval_detection_and_eval_flag(shell, run):
    run("import pandas as pd")
    # an id column and numeric columns not named as scores: ordinary data, no metrics
    run("table = pd.DataFrame({'id': [1, 2, 3], 'height': [1.2, 1.5, 1.7], 'weight': [60, 70, 80]})")
    run("%mv_snapshot")
    assert api.resolve("latest").metrics == {} and "eval" not in _summary("table")
    # named as an eval table: scores are its numeric columns, ids its index when it has no id column
    run("ratings = pd.DataFrame({'prompt': ['a', 'b'], 'helpfulness': [3, 5]}, index=['x1', 'x2'])")
    run("%mv_snapshot --eval ratings")
    v = api.resolve("latest")
    assert v.metrics == {"ratings.helpfulness": 4.0}
    assert _summary("ratings")["eval"]["id_column"] is None
    # the API flag, and a named table stored even when other variables are named
    run("import jupyter_mv as mv")
    run("v = mv.snapshot('table', eval='ratings')")
    v = shell.user_ns["v"]
    assert set(v.variables) == {"table", "ratings"} and v.metrics == {"ratings.helpfulness": 4.0}
    # a variable named eval_* is one without the flag
    run("eval_run = pd.DataFrame({'example_id': [1, 2], 'judge': [0.5, 1.0]})")
    run("%mv_snapshot eval_run")
    assert api.resolve("latest").metrics == {"eval_run.judge": 0.75}


def test_eval_flag_errors_are_one_line(shell, run):
    run("import pandas as pd")
    run("notes = 'not a table'")
    run("flat = pd.DataFrame({'a': [1, 1]}, index=[0, 0])")
    with pytest.raises(UsageError, match="an eval table is a pandas DataFrame, not str"):
        api.snapshot(eval="notes")
    with pytest.raises(UsageError, match="no example id column"):
        api.snapshot(eval="flat")
    run("twice = pd.DataFrame({'id': [1, 1], 'score': [0.5, 1.0]})")
    with pytest.raises(UsageError, match="its id column 'id' has repeated or missing values"):
        api.snapshot(eval="twice")
    run("scoreless = pd.DataFrame({'id': [1, 2], 'text': ['a', 'b']})")
    with pytest.raises(UsageError, match="no numeric score column"):
        api.snapshot(eval="scoreless")
    with pytest.raises(Exception, match="no variable named 'missing'"):
        api.snapshot(eval="missing")
    assert mv.history().empty


def test_eval_metrics_show_in_the_metrics_chart(shell, run):
    from jupyter_mv.widgets import HistoryWidget

    run(EVAL_V1)
    run("%mv_snapshot")
    run("eval_df = eval_df.assign(exact_match=[1.0] * 6)")
    run("%mv_snapshot")
    w = HistoryWidget()
    try:
        assert w.chart["series"]["eval_df.exact_match"] == [pytest.approx(4 / 6), 1.0]
        assert w.chart["series"]["eval_df.loss"] == [pytest.approx(2.3 / 6)] * 2
    finally:
        w.close()


def test_show_lists_prompts_and_eval_tables(shell, run, run_cli, tmp_path):
    run(EVAL_V1)
    run('qa_prompt = "Answer the question.\\nContext: {context}\\nQuestion: {question}"')
    run("%mv_snapshot")
    r = run_cli("--store", tmp_path / ".jupyter_mv", "show", "v1")
    assert r.returncode == 0, r.stderr
    assert "      prompt (format), placeholders: context, question\n      | Answer the question.\n" in r.stdout
    assert "      eval table: 6 examples by id; mean exact_match 0.6667, loss 0.3833; dataset " in r.stdout


def test_odd_frames_are_data_not_errors(shell, run):
    run("import pandas as pd")
    # an id and a score-named column, but cells pandas cannot hash and ids that repeat
    run("odd = pd.DataFrame({'id': [1, 2], 'score': [0.5, 1.0], 'tags': [['a'], ['b', 'c']]})")
    run("dup = pd.DataFrame({'id': [1, 1], 'score': [0.5, 1.0]})")
    run("%mv_snapshot")
    v = api.resolve("latest")
    assert set(v.variables) >= {"odd", "dup"}
    assert v.metrics == {"odd.score": 0.75}  # unhashable cells are hashed by their text
    assert "eval" not in _summary("dup")  # repeated ids: not an example id


def test_a_table_named_like_an_eval_that_is_not_one_says_why(shell, run, capsys):
    """eval_df with repeated ids or no score is stored as a plain table; the user is told why in one
    note (once per session in auto mode), not left wondering where its metrics went."""
    run("import pandas as pd\neval_df = pd.DataFrame({'id': [1, 1, 2], 'score': [1, 0, 1]})\n"
        "eval_text = pd.DataFrame({'id': [1, 2], 'answer': ['a', 'b']})\n"
        "table = pd.DataFrame({'id': [1, 1], 'x': [1, 2]})")
    capsys.readouterr()
    run("%mv_snapshot")
    err = capsys.readouterr().err
    assert "eval_df: named like an eval table but not one (its id column 'id' has repeated or missing values)" in err
    assert "eval_text: named like an eval table but not one (no numeric score column)" in err
    assert "note: table" not in err and api.resolve("latest").metrics == {}
    run("%mv_auto on")
    run("eval_df = eval_df.assign(score=0)")
    assert capsys.readouterr().err.count("eval_df: named like an eval table") == 1
    run("eval_df = eval_df.assign(score=1)")
    assert "named like an eval table" not in capsys.readouterr().err


def test_ids_of_mixed_types_and_cells_pandas_cannot_hash(shell, run):
    """Ids of several types (an int, its text, a float, a tuple) and input cells of lists, dicts and
    tuples: still an eval table (recognised, named with --eval), diffed by id with each id's own type."""
    run("import pandas as pd\neval_df = pd.DataFrame({'id': [1, '1', 2.5, 'x', (1, 2)],"
        " 'q': [(1,), 'a', [1], {'k': 1}, None], 'score': [1, 0, 1, 0, 1]})")
    run("%mv_snapshot")
    assert api.resolve("v1").metrics == {"eval_df.score": 0.6}
    run("eval_df['score'] = [0, 0, 1, 1, 1]")
    run("%mv_snapshot --eval eval_df")
    a = mv.diff("v1", "v2").to_dict()["variables"]["changed"][0]["analysis"]
    assert a["comparable"] is True
    assert [e["id"] for e in a["regressions"]] == [1] and [e["id"] for e in a["improvements"]] == ["x"]
    assert a["counts"]["unchanged"] == 3


def test_prompt_and_eval_analyses_follow_the_diff_schema(shell, run):
    from importlib import resources

    import jsonschema

    schema = json.loads((resources.files("jupyter_mv") / "schemas" / "diff.schema.json").read_text())
    run(EVAL_V1)
    run('qa_prompt = "Answer the question.\\nContext: {context}\\nQuestion: {question}"')
    run("%mv_snapshot")
    run("eval_df = eval_df.assign(exact_match=[0.0] * 6).iloc[1:]")
    run('qa_prompt = "Answer.\\nContext: {context}\\nQ: {q}"')
    run("%mv_snapshot")
    d = json.loads(json.dumps(mv.diff("v1", "v2").to_dict(), allow_nan=False))
    jsonschema.Draft202012Validator(schema).validate(d)
    kinds = {c["name"]: c["analysis"]["kind"] for c in d["variables"]["changed"]}
    assert kinds == {"eval_df": "eval", "qa_prompt": "prompt"}
    broken = json.loads(json.dumps(d))
    next(c for c in broken["variables"]["changed"] if c["name"] == "eval_df")["analysis"].pop("regressions")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(broken)


def test_diff_against_the_live_state(shell, run):
    run(EVAL_V1)
    run('qa_prompt = "Answer the question.\\nContext: {context}\\nQuestion: {question}"')
    run("%mv_snapshot")
    run("eval_df = eval_df.assign(exact_match=[0.0] * 6)")
    run('qa_prompt = "Answer.\\nContext: {context}\\nQuestion: {question}"')
    d = mv.diff("v1").to_dict()
    assert d["b"] == "current"
    assert d["metrics"]["changed"]["eval_df.exact_match"]["new"] == 0.0  # as a snapshot would record it
    a = {c["name"]: c["analysis"] for c in d["variables"]["changed"]}
    assert a["qa_prompt"]["line_diff"][1:3] == ["-Answer the question.", "+Answer."]
    assert a["eval_df"]["mean_delta"]["exact_match"]["new"] == 0.0 and "only the mean scores" in a["eval_df"]["examples_note"]
