"""MLflow bridge against a real `mlflow server` (SQLite backend, local artifacts) on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from jupyter_mv import api, bundle, mlflow_bridge
from jupyter_mv.errors import Untrusted, UsageError
from jupyter_mv.store import Store

from mvtest import cli

import mlflow

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A real tracking + registry server; stopped (and waited for) at teardown."""
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    exe = Path(sys.executable).with_name("mlflow")
    cmd = [str(exe) if exe.exists() else shutil.which("mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
           "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
           "--artifacts-destination", str(root / "artifacts"), "--serve-artifacts", "--workers", "1"]
    log = open(root / "server.log", "wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mlflow server exited: {(root / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not start within 90 s: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield uri
    finally:
        import signal

        with_group = proc.poll() is None
        if with_group:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and the workers it started, nothing else
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()


@pytest.fixture
def sk_version(tmp_path, monkeypatch):
    from sklearn.ensemble import RandomForestClassifier

    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", "projects/churn.ipynb")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 6))
    y = (X[:, 0] - X[:, 2] > 0).astype(int)
    clf = RandomForestClassifier(n_estimators=20, max_depth=4, random_state=0).fit(X, y)
    api.set_session(api.Session(namespace={"X": X, "y": y, "clf": clf, "note": "rf"}))
    st = Store(tmp_path / ".jupyter_mv")
    v = api.take_snapshot(message="forest", tags=["best"], metrics={"acc": 0.91, "auc": 0.95}, store=st).version
    yield st, v, X, clf
    st.close()


def test_push_sklearn_and_register(mlflow_server, sk_version):
    st, v, X, clf = sk_version
    info = api.to_mlflow(v, tracking_uri=mlflow_server, experiment="churn", register="churn-model", store=st)
    assert info["flavor"] == "sklearn" and info["variable"] == "clf"
    client = mlflow.MlflowClient(mlflow_server, registry_uri=mlflow_server)
    run = client.get_run(info["run_id"])
    assert run.data.metrics == {"acc": 0.91, "auc": 0.95}
    assert run.data.params["n_estimators"] == "20" and run.data.params["max_depth"] == "4"
    assert run.data.tags["jupyter_mv.version"] == "v1"
    assert run.data.tags["jupyter_mv.notebook"] == "projects/churn.ipynb"
    assert run.data.tags["jupyter_mv.content_hash"] == bundle.version_hash(st, v)
    assert run.data.tags["jupyter_mv.tag.best"] == "true" and run.data.tags["mlflow.note.content"] == "forest"
    arts = {a.path for a in client.list_artifacts(info["run_id"], "notebook")}
    arts |= {a.path for a in client.list_artifacts(info["run_id"], "environment")}
    assert {"notebook/churn.ipynb", "environment/requirements.txt", "environment/environment.json"} <= arts
    # the registry version links back to the jupyter_mv version
    mv = client.get_model_version("churn-model", info["registered_version"])
    assert mv.tags["jupyter_mv.version_id"] == "projects/churn.ipynb@v1"
    assert mv.tags["jupyter_mv.content_hash"] == info["content_hash"]
    found = client.search_model_versions(f"tags.`jupyter_mv.content_hash` = '{info['content_hash']}'")
    assert [m.version for m in found] == [mv.version]
    # and loads back through pyfunc, predicting identically
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_registry_uri(mlflow_server)
    try:
        loaded = mlflow.pyfunc.load_model(f"models:/churn-model/{info['registered_version']}")
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    np.testing.assert_array_equal(np.asarray(loaded.predict(X)), clf.predict(X))


def test_push_torch_and_pyfunc_flavors(mlflow_server, tmp_path, monkeypatch):
    import torch

    class Doubler:  # not a model class mlflow knows: logged through pyfunc
        def predict(self, x):
            return np.asarray(x) * 2

    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", "nets.ipynb")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1))
    api.set_session(api.Session(namespace={"net": net, "doubler": Doubler()}))
    with Store(tmp_path / ".jupyter_mv") as st:
        v = api.take_snapshot(store=st).version
        info = mlflow_bridge.push(st, v, tracking_uri=mlflow_server, register="net-model")
        assert info["flavor"] == "pytorch" and info["variable"] == "net"
        x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
        mlflow.set_tracking_uri(mlflow_server)
        mlflow.set_registry_uri(mlflow_server)
        try:
            back = mlflow.pytorch.load_model(f"models:/net-model/{info['registered_version']}")
            with torch.no_grad():
                assert torch.equal(back(torch.from_numpy(x)), net(torch.from_numpy(x)))
            info2 = mlflow_bridge.push(st, v, tracking_uri=mlflow_server, variable="doubler", register="doubler")
            assert info2["flavor"] == "pyfunc"
            served = mlflow.pyfunc.load_model(f"models:/doubler/{info2['registered_version']}")
            np.testing.assert_array_equal(np.asarray(served.predict(x)), x * 2)
        finally:
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)


def test_cli_push(mlflow_server, sk_version):
    st, v, X, clf = sk_version
    r = cli("--store", st.root, "mlflow", "push", "best", "--tracking-uri", mlflow_server, "--experiment", "cli",
            "--register", "cli-model")
    assert r.returncode == 0, r.stderr
    assert "logged v1 of projects/churn.ipynb as MLflow run" in r.stdout
    assert "registered 'cli-model' version 1" in r.stdout


def test_model_choice_and_refusals(sk_version, tmp_path, monkeypatch):
    st, v, X, clf = sk_version
    assert mlflow_bridge.model_variable(st, v) == ("clf", "sklearn")
    assert mlflow_bridge.model_variable(st, v, "note") == ("note", "pyfunc")
    with pytest.raises(UsageError, match="no variable 'nope'"):
        mlflow_bridge.model_variable(st, v, "nope")
    from sklearn.linear_model import LinearRegression

    api.set_session(api.Session(namespace={"a": LinearRegression(), "b": LinearRegression()}))
    two = api.take_snapshot(store=st).version
    with pytest.raises(UsageError, match="several models .* --variable"):
        mlflow_bridge.model_variable(st, two)
    # an imported model holding types skops does not trust needs trust before it is loaded to be logged
    # (a scikit-learn-only model, stored with skops, is logged without it)
    class OwnRegression(LinearRegression):
        pass

    OwnRegression.__module__, OwnRegression.__qualname__ = "mylab.models", "OwnRegression"
    api.set_session(api.Session(namespace={"clf": OwnRegression().fit(X, X[:, 0])}))
    own = api.take_snapshot(store=st).version
    path = bundle.export(st, own, tmp_path / "v.mvz")
    with Store(tmp_path / "other" / ".jupyter_mv") as other:
        imported = bundle.import_(other, path).version
        with pytest.raises(Untrusted):
            mlflow_bridge.push(other, imported, tracking_uri=f"file://{tmp_path / 'never'}")
    assert not (tmp_path / "never").exists()
    r = cli("--store", st.root, "mlflow", "push", "v1", "--tracking-uri", "http://127.0.0.1:9", "--experiment", "x",
            env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"})
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "MLflow" in r.stderr


def test_push_withholds_credentials(mlflow_server, tmp_path, monkeypatch):
    """Random fake credentials in a variable, a param, the message and a cell: none reaches the run
    (params, tags, artifacts); one warning names them; include_secrets=True sends them on purpose."""
    import json
    import secrets
    import string

    from sklearn.linear_model import LogisticRegression

    from jupyter_mv import capture
    from jupyter_mv.errors import CredentialsWithheld

    alnum = string.ascii_letters + string.digits
    key = "sk-" + "".join(secrets.choice(alnum) for _ in range(48))
    token = "hf_" + "".join(secrets.choice(alnum) for _ in range(34))
    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", "keys.ipynb")
    X = np.random.default_rng(0).normal(size=(40, 3))
    clf = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    log = capture.CellLog()
    log.start(f"OPENAI_API_KEY = '{key}'", 1, "c1")
    log.add({"output_type": "stream", "name": "stdout", "text": f"using {token}\n"})
    api.set_session(api.Session(namespace={"OPENAI_API_KEY": key, "clf": clf, "X": X}, cell_log=log))
    with Store(tmp_path / ".jupyter_mv") as st:
        v = api.take_snapshot(["OPENAI_API_KEY", "clf", "X"], message=f"key {token}", store=st).version
        with st.write():  # a param from before params were checked
            st.db.conn.execute("insert into params (version_id, key, value) values (?, 'api_key', ?)",
                               (v.id, json.dumps(key)))
        with pytest.warns(CredentialsWithheld) as caught:
            info = api.to_mlflow("v1", tracking_uri=mlflow_server, experiment="keys", store=st)
        assert len(caught) == 1
        warned = str(caught[0].message)
        assert "variable OPENAI_API_KEY" in warned and "param api_key" in warned and "source of cell 1" in warned
        assert key not in warned and token not in warned
        assert info["variable"] == "clf"
        client = mlflow.MlflowClient(mlflow_server)
        run = client.get_run(info["run_id"])
        seen = json.dumps([run.data.params, run.data.tags, run.info.run_name], ensure_ascii=False)
        dest = tmp_path / "artifacts"
        dest.mkdir()
        mlflow.artifacts.download_artifacts(run_id=info["run_id"], dst_path=str(dest), tracking_uri=mlflow_server)
        for f in dest.rglob("*"):
            if f.is_file():
                seen += f.read_bytes().decode("utf-8", "replace")
        assert key not in seen and token not in seen and key[3:20] not in seen
        assert "hf_…****" in seen and "sk-\\u2026****" in seen  # masked in the note and the notebook artifact
        assert "api_key" not in run.data.params
        # on purpose: the param is logged
        info2 = api.to_mlflow("v1", tracking_uri=mlflow_server, experiment="keys", store=st, include_secrets=True)
        assert client.get_run(info2["run_id"]).data.params["api_key"] == key
        # a credential-holding variable is never registered as the model without the override
        with pytest.raises(UsageError, match="holds a credential"):
            api.to_mlflow("v1", tracking_uri=mlflow_server, variable="OPENAI_API_KEY", store=st)


# -- LLM work (issue 15): transformers flavor and the prompt registry ---------------------------------
def _tiny_lm():
    """A 2-layer GPT-2 and a BPE tokenizer trained here (no download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    import torch

    raw = Tokenizer(models.BPE(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(["the cat sat on the mat", "answer the question from the context"] * 20,
                            trainers.BpeTrainer(vocab_size=80, special_tokens=["<unk>", "<eos>"]))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="<unk>", eos_token="<eos>")
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=2, n_embd=32, n_head=2, n_positions=64, vocab_size=raw.get_vocab_size(),
                     bos_token_id=1, eos_token_id=1)
    return GPT2LMHeadModel(cfg).eval(), tok


def test_push_transformers_flavor_and_prompt_registry(mlflow_server, tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", "llm/rag.ipynb")
    lm, tok = _tiny_lm()
    ns = {"lm": lm, "tok": tok,
          "qa_prompt": "Answer the question from the context.\nContext: {context}\nQuestion: {question}",
          "chat": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "{question}"}],
          "gen": {"temperature": 0.2, "max_new_tokens": 8}}
    api.set_session(api.Session(namespace=ns))
    with Store(tmp_path / ".jupyter_mv") as st:
        v = api.take_snapshot(message="first prompt", store=st).version
        info = mlflow_bridge.push(st, v, tracking_uri=mlflow_server, experiment="rag")
        assert info["flavor"] == "transformers" and info["variable"] == "lm" and info["task"] == "text-generation"
        client = mlflow.MlflowClient(mlflow_server, registry_uri=mlflow_server)
        run = client.get_run(info["run_id"])
        assert run.data.params["temperature"] == "0.2" and run.data.params["max_new_tokens"] == "8"
        arts = {a.path for a in client.list_artifacts(info["run_id"], "prompts")}
        assert {"prompts/qa_prompt.txt", "prompts/qa_prompt.json", "prompts/chat.txt"} <= arts
        mlflow.set_tracking_uri(mlflow_server)
        mlflow.set_registry_uri(mlflow_server)
        try:
            parts = mlflow.transformers.load_model(info["model_uri"], return_type="components")
            regs = {p["variable"]: p for p in info["prompts"]}
            qa = mlflow.genai.load_prompt(regs["qa_prompt"]["uri"])
            chat = mlflow.genai.load_prompt(regs["chat"]["uri"])
        finally:
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)
        # the logged model is the version's: same logits on the same ids
        ids = torch.tensor([tok("the cat sat on the mat")["input_ids"]])
        with torch.no_grad():
            torch.testing.assert_close(parts["model"](ids).logits, lm(ids).logits, rtol=1e-5, atol=1e-6)
        assert parts["tokenizer"]("the cat")["input_ids"] == tok("the cat")["input_ids"]
        # prompts in MLflow's template syntax, linked back to the version
        assert regs["qa_prompt"]["name"] == "rag.qa_prompt"
        assert qa.template == "Answer the question from the context.\nContext: {{context}}\nQuestion: {{question}}"
        assert qa.tags["jupyter_mv.version_id"] == "llm/rag.ipynb@v1" and qa.tags["jupyter_mv.prompt_kind"] == "format"
        assert chat.template == [{"role": "system", "content": "You are terse."},
                                 {"role": "user", "content": "{{question}}"}]
        assert "prompts_note" not in info
        # a second version of the prompt is the registry's next version of the same prompt
        ns["qa_prompt"] = "Answer briefly from the context.\nContext: {context}\nQuestion: {question}"
        v2 = api.take_snapshot(message="briefer", store=st).version
        info2 = mlflow_bridge.push(st, v2, tracking_uri=mlflow_server, experiment="rag")
        regs2 = {p["variable"]: p for p in info2["prompts"]}
        reg2 = regs2["qa_prompt"]
        assert reg2["name"] == "rag.qa_prompt" and int(reg2["version"]) == int(regs["qa_prompt"]["version"]) + 1
        assert reg2["unchanged"] is False and regs2["chat"]["unchanged"] is True
        assert regs2["chat"]["uri"] == regs["chat"]["uri"]  # an unchanged prompt is not registered again
        tags = client.get_run(info2["run_id"]).data.tags
        assert tags["jupyter_mv.prompt.qa_prompt"] == reg2["uri"] and tags["jupyter_mv.prompt.chat"] == regs["chat"]["uri"]


def test_prompt_with_a_credential_stays_home_and_old_servers_get_a_note(mlflow_server, tmp_path, monkeypatch):
    from jupyter_mv.errors import CredentialsWithheld

    token = "hf_" + "Qm4xT8vN2bR6kL1pW9sD3fH7jC5gZ0aY"
    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", "leaky.ipynb")
    ns = {"system_prompt": f"You are a helper. Use token {token} for the hub.",
          "qa_prompt": "Answer the question from the context.\nContext: {context}\nQuestion: {question}"}
    api.set_session(api.Session(namespace=ns))
    with Store(tmp_path / ".jupyter_mv") as st:
        v = api.take_snapshot(["system_prompt", "qa_prompt"], store=st).version
        with pytest.warns(CredentialsWithheld, match="system_prompt"):
            info = mlflow_bridge.push(st, v, tracking_uri=mlflow_server, experiment="leaky")
        assert [p["variable"] for p in info["prompts"]] == ["qa_prompt"]
        client = mlflow.MlflowClient(mlflow_server)
        arts = {a.path for a in client.list_artifacts(info["run_id"], "prompts")}
        assert arts == {"prompts/qa_prompt.txt", "prompts/qa_prompt.json"}
        from mvtest import cli_in_process

        r = cli_in_process("--store", tmp_path / ".jupyter_mv", "mlflow", "push", "v1", "--tracking-uri", mlflow_server,
                           "--experiment", "leaky")
        assert r.returncode == 0, r.stderr
        # the same text again: the registry's version 1, not a copy
        assert "prompt qa_prompt: unchanged since 'leaky.qa_prompt' version 1 (prompts:/leaky.qa_prompt/1)" in r.stdout
        assert token not in r.stdout + r.stderr and "system_prompt" in r.stderr

        # a tracking server without the prompt registry answers the registration with an error (as an
        # MLflow 2 server does: ENDPOINT_NOT_FOUND); the run is still logged, with the prompts as
        # artifacts, and the info says why they are not in a registry
        def refuse(**kw):
            raise mlflow.exceptions.MlflowException("API request to endpoint /api/2.0/mlflow/registered-models/"
                                                    "create failed with error code 404", error_code="ENDPOINT_NOT_FOUND")

        monkeypatch.setattr(mlflow.genai, "register_prompt", refuse)
        monkeypatch.setattr(mlflow.genai, "load_prompt", lambda *a, **kw: refuse())
        with pytest.warns(CredentialsWithheld):
            info = mlflow_bridge.push(st, v, tracking_uri=mlflow_server, experiment="leaky")
        assert info["prompts"] == [] and "did not register them" in info["prompts_note"]
        assert "prompts/qa_prompt.txt" in {a.path for a in client.list_artifacts(info["run_id"], "prompts")}
