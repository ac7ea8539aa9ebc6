"""MLflow bridge: log a version as an MLflow run (params, metrics, tags, the notebook at that
version, the environment) with its model in the matching flavor, and optionally register it.

`mlflow` is an optional extra (`pip install 'jupyter_mv[mlflow]'`), imported only here and only
when a push happens. The run and the registry version carry the jupyter_mv version id and content
hash as tags, so either side finds the other (`search_model_versions("tags.`jupyter_mv.content_hash`
= '…'")`, or the run's tags back to the notebook and version).
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import tempfile
from pathlib import Path

from . import bundle, loading
from .errors import MVError, UsageError
from .model import Version
from .store import Store

__all__ = ["push", "model_variable"]

MODEL_CODECS = {"sklearn": "sklearn", "sklearn.skops": "sklearn", "torch.module": "pytorch",
                "transformers.model": "transformers", "peft.model": "pytorch"}
TOKENIZER_CODECS = ("transformers.tokenizer", "tokenizers.tokenizer")
# transformers model class suffixes -> the pipeline task MLflow's transformers flavor serves them with
_TASKS = (("ForCausalLM", "text-generation"), ("LMHeadModel", "text-generation"),
          ("ForSequenceClassification", "text-classification"), ("ForTokenClassification", "token-classification"),
          ("ForQuestionAnswering", "question-answering"), ("ForMaskedLM", "fill-mask"),
          ("ForSeq2SeqLM", "text2text-generation"))
_PROMPT_NAME = re.compile(r"[^A-Za-z0-9_\-.]")
_PARAM_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")
MAX_PARAM_VALUE = 6000


def _mlflow():
    try:
        return importlib.import_module("mlflow")
    except ImportError:
        raise MVError("the MLflow bridge needs mlflow: pip install 'jupyter_mv[mlflow]'") from None


def model_variable(store: Store, version: Version, variable: str | None = None) -> tuple[str | None, str]:
    """(name, flavor) of the version's model: `variable` when given, else its only model-like
    variable (a scikit-learn estimator or a torch module); (None, "") when it has none."""
    refs = store.variables(version)
    if variable:
        ref = next((r for r in refs if r.name == variable), None)
        if ref is None:
            have = ", ".join(r.name for r in refs) or "none"
            raise UsageError(f"{version.label} has no variable {variable!r} (it has: {have})")
        return ref.name, MODEL_CODECS.get(ref.codec, "pyfunc")
    models = [r for r in refs if r.codec in MODEL_CODECS]
    if len(models) > 1:
        raise UsageError(f"{version.label} holds several models ({', '.join(r.name for r in models)}); "
                         "choose one with --variable NAME")
    if not models:
        return None, ""
    return models[0].name, MODEL_CODECS[models[0].codec]


def _requirements(env: dict, flavor: str) -> list[str]:
    """Pinned requirements for the logged model, from the version's own environment (so MLflow
    does not have to guess them by importing the model in a subprocess)."""
    pk = env.get("packages") or {}
    want = {"sklearn": ["scikit-learn", "numpy", "scipy", "cloudpickle"],
            "pytorch": ["torch", "numpy", "cloudpickle"],
            "transformers": ["transformers", "torch", "tokenizers", "safetensors"],
            "pyfunc": ["cloudpickle", "numpy", "pandas", "scikit-learn", "torch"]}[flavor]
    return [f"{n}=={pk[n]}" for n in want if n in pk] or [n for n in want[:1]]


def _input_example(store: Store, version: Version, model, trust: bool):
    """A few rows of a stored array/frame whose width matches the model's inputs, for the signature."""
    n = getattr(model, "n_features_in_", None)
    if not isinstance(n, int):
        return None
    for ref in store.variables(version):
        shape = (ref.summary or {}).get("shape")
        if ref.safe and not ref.credential and isinstance(shape, list) and len(shape) == 2 and shape[1] == n and shape[0] > 0:
            try:
                value = loading.load(store, version, [ref.name], trust)[ref.name]
            except MVError:
                continue
            return value[:5]
    return None


def _pyfunc_wrapper(obj):
    import mlflow.pyfunc

    class JupyterMVModel(mlflow.pyfunc.PythonModel):
        """A stored object with a predict method (or callable), served through pyfunc."""

        def __init__(self, model):
            self.model = model

        def predict(self, context, model_input, params=None):
            if hasattr(self.model, "predict"):
                return self.model.predict(model_input)
            return self.model(model_input)

    return JupyterMVModel(obj)


def mlflow_uri() -> str:
    """MLflow's own tracking URI (MLFLOW_TRACKING_URI, else its default), for messages."""
    try:
        import mlflow

        return mlflow.get_tracking_uri()
    except Exception:
        return "(MLflow's default)"


@contextlib.contextmanager
def _tracking(mlflow, uri: str | None):
    """Point MLflow at `uri` for the push only, then put back what the user had. Unless the user set
    MLFLOW_HTTP_REQUEST_MAX_RETRIES, a push retries a failing request twice: MLflow's default (7, with
    exponential backoff) left `--tracking-uri http://host:WRONG_PORT` hanging for minutes before its one
    error line."""
    old_t = mlflow.get_tracking_uri()
    old_r = mlflow.get_registry_uri()
    retries = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"
    capped = retries not in os.environ
    if capped:
        os.environ[retries] = "2"
    if uri:
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(old_t)
        mlflow.set_registry_uri(old_r)
        if capped:
            os.environ.pop(retries, None)


def push(store: Store, version: Version, tracking_uri: str | None = None, experiment: str | None = None,
         register: str | None = None, variable: str | None = None, trust: bool = False,
         include_secrets: bool = False, prompts: bool = True) -> dict:
    """Log `version` as an MLflow run; returns ids and URIs of what was created.

    A transformers model is logged with MLflow's transformers flavor (with the version's tokenizer;
    without one, or for a PEFT model, with the pytorch flavor, said in info["note"]). With `prompts`, each
    prompt template of the version (prompts.py) is logged as run artifacts under prompts/ and registered
    in MLflow's prompt registry as `<experiment>.<variable>` (info["prompts"]); a server without a prompt
    registry gets the artifacts only and info["prompts_note"] says so.

    Credentials stay home as in a bundle (redaction.py): params holding one are not logged, the
    message and the notebook artifact are masked, a model variable holding one is not logged, and
    one CredentialsWithheld warning names each item; `include_secrets=True` logs them on purpose."""
    from . import redaction

    mlflow = _mlflow()
    version = store.version_by_id(version.id)
    shared = redaction.plan(store, version, include_secrets)
    name, flavor = model_variable(store, version, variable)
    held = {w["name"] for w in shared.withheld if w["kind"] == "variable"}
    if name in held:
        if variable or register:
            raise UsageError(f"{version.label} variable {name!r} holds a credential, so it is not sent to MLflow; "
                             "pass --include-secrets (include_secrets=True) to send it on purpose")
        name, flavor = None, ""
    if register and name is None:
        raise UsageError(f"{version.label} has no model variable to register (a scikit-learn estimator or torch "
                         "module); choose one with --variable NAME")
    model = loading.load(store, version, [name], trust)[name] if name else None  # Untrusted if imported
    env = store.environment(version)
    content_hash = bundle.version_hash(store, version)
    version_id = f"{version.notebook}@{version.label}"
    link_tags = {"jupyter_mv.version": version.label, "jupyter_mv.notebook": version.notebook,
                 "jupyter_mv.version_id": version_id, "jupyter_mv.content_hash": content_hash,
                 "jupyter_mv.created": version.created}
    exp_name = experiment or Path(version.notebook).stem or "jupyter_mv"
    info: dict = {"experiment": exp_name, "flavor": flavor or None, "variable": name}
    try:
        with _tracking(mlflow, tracking_uri), tempfile.TemporaryDirectory(prefix="jupyter_mv-mlflow-") as tmp:
            tmp = Path(tmp)
            mlflow.set_experiment(exp_name)
            run_name = f"{Path(version.notebook).stem} {version.label}" + (f" {shared.version.name}" if shared.version.name else "")
            with mlflow.start_run(run_name=run_name) as run:
                info["run_id"] = run.info.run_id
                params = {}
                for k, v in shared.version.params.items():
                    key = _PARAM_KEY.sub("_", str(k))[:250] or "_"
                    text = v if isinstance(v, str) else json.dumps(v, default=repr)
                    params[key] = text[:MAX_PARAM_VALUE]
                if params:
                    mlflow.log_params(params)
                if version.metrics:
                    mlflow.log_metrics({_PARAM_KEY.sub("_", k): float(v) for k, v in version.metrics.items()})
                tags = dict(link_tags)
                tags.update({f"jupyter_mv.tag.{t}": "true" for t in shared.version.tags})
                if shared.version.message:
                    tags["mlflow.note.content"] = shared.version.message
                if env.get("git") and env["git"].get("commit"):
                    tags["mlflow.source.git.commit"] = env["git"]["commit"]
                mlflow.set_tags(tags)
                nb_file = tmp / (Path(version.notebook).name if version.notebook.endswith(".ipynb")
                                 else "notebook.ipynb")
                nb_file.write_text(json.dumps(bundle.notebook_of(store, version, cells=shared.cells), indent=1))
                mlflow.log_artifact(str(nb_file), artifact_path="notebook")
                (tmp / "requirements.txt").write_text(bundle.requirements_txt(env))
                (tmp / "environment.json").write_text(json.dumps(env, indent=1, default=str))
                mlflow.log_artifact(str(tmp / "requirements.txt"), artifact_path="environment")
                mlflow.log_artifact(str(tmp / "environment.json"), artifact_path="environment")
                if model is not None:
                    info.update(_log_model(mlflow, store, version, model, flavor, env, trust))
                if prompts:
                    info.update(_log_prompts(mlflow, store, version, held, exp_name, link_tags, tmp))
            if register:
                mv = mlflow.register_model(info["model_uri"], register, tags=link_tags)
                client = mlflow.MlflowClient()
                client.update_model_version(register, mv.version, description=(
                    f"jupyter_mv {version_id} ({version.message or 'no message'}), content hash {content_hash}"))
                info.update({"registered_name": register, "registered_version": mv.version})
    except MVError:
        raise
    except Exception as e:  # MlflowException, connection errors: one line for the adapters
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if any(k in msg for k in ("Max retries exceeded", "NewConnectionError", "Connection refused",
                                  "Name or service not known", "Failed to resolve")):
            where = re.sub(r"//[^/@]*@", "//", tracking_uri or mlflow_uri())  # never a password on screen
            raise MVError(f"MLflow push failed: cannot reach the tracking server {where}; "
                          "check --tracking-uri (scheme, host, port) and that the server runs") from None
        if "maintenance mode" in msg:  # MLflow 3 refuses new runs in a file store ('./mlruns', a bare path)
            raise MVError("MLflow push failed: MLflow no longer writes to a folder tracking store; give a "
                          "database one, e.g. --tracking-uri sqlite:///mlflow.db, or a server's http:// URI") from None
        raise MVError(f"MLflow push failed ({type(e).__name__}): {msg[:300]}") from None
    info["content_hash"] = content_hash
    info["version_id"] = version_id
    info["withheld"] = shared.withheld
    redaction.warn(shared, f"the MLflow run {info.get('run_id', '')}".rstrip())
    return info


def _tokenizer(store: Store, version: Version, trust: bool):
    """The version's tokenizer as a transformers tokenizer (a bare `tokenizers.Tokenizer` wrapped in
    PreTrainedTokenizerFast), or None when it holds none."""
    refs = [r for r in store.variables(version) if r.codec in TOKENIZER_CODECS and not r.credential]
    if not refs:
        return None
    tok = loading.load(store, version, [refs[0].name], trust)[refs[0].name]
    if refs[0].codec == "tokenizers.tokenizer":
        from transformers import PreTrainedTokenizerFast

        tok = PreTrainedTokenizerFast(tokenizer_object=tok)
    return tok


def _task(model) -> str | None:
    name = type(model).__name__
    return next((task for suffix, task in _TASKS if name.endswith(suffix)), None)


def _log_transformers(mlflow, store, version, model, env, trust) -> dict | None:
    """MLflow's transformers flavor: the model and tokenizer saved with save_pretrained (safetensors),
    served as the pipeline of its task. None when the version has no tokenizer or the model no known
    task (the caller logs it with the pytorch flavor)."""
    import mlflow.transformers

    tok = _tokenizer(store, version, trust)
    task = _task(model)
    if tok is None or task is None:
        return None
    logged = mlflow.transformers.log_model(transformers_model={"model": model, "tokenizer": tok}, name="model",
                                           task=task, pip_requirements=_requirements(env, "transformers"))
    return {"model_uri": logged.model_uri, "flavor": "transformers", "task": task}


def _log_model(mlflow, store, version, model, flavor, env, trust) -> dict:
    note = {}
    if flavor == "transformers":
        done = _log_transformers(mlflow, store, version, model, env, trust)
        if done is not None:
            return done
        flavor = "pytorch"
        note = {"flavor": "pytorch", "note": "logged with the pytorch flavor: MLflow's transformers flavor needs a "
                                             "tokenizer in the version and a model class with a pipeline task"}
    reqs = _requirements(env, flavor)
    example = _input_example(store, version, model, trust) if flavor == "sklearn" else None
    common = {"name": "model", "pip_requirements": reqs}
    if flavor == "sklearn":
        import mlflow.sklearn

        logged = mlflow.sklearn.log_model(model, serialization_format="cloudpickle", input_example=example, **common)
    elif flavor == "pytorch":
        import mlflow.pytorch

        # "pickle": the whole module as torch.save writes it (pt2 export would need an input example)
        logged = mlflow.pytorch.log_model(model, serialization_format="pickle", **common)
    else:
        import mlflow.pyfunc

        logged = mlflow.pyfunc.log_model(python_model=_pyfunc_wrapper(model), **common)
    return {"model_uri": logged.model_uri, **note}


def mlflow_template(record: dict, value=None):
    """A prompt record (prompts.py) as MLflow's prompt registry takes it: `{{ name }}` placeholders
    (MLflow's template syntax), a chat message list as a list of {"role", "content"} dicts. A
    `str.format` template's fields become `{{ field }}` and its escaped braces single ones; Jinja2 and
    Mustache texts are already in that syntax; other kinds go as their text."""
    import string

    def convert(text: str) -> str:
        out = []
        for literal, field, spec, conv in string.Formatter().parse(text):
            out.append(literal)
            if field is not None:
                out.append("{{" + field + "}}")
        return "".join(out)

    kind = record.get("kind")
    if kind == "chat" and isinstance(value, list):
        msgs = []
        for m in value:
            role, content = (m["role"], m["content"]) if isinstance(m, dict) else m
            text = content if isinstance(content, str) else record["text"]
            msgs.append({"role": role, "content": convert(text) if "{" in text and "{{" not in text else text})
        return msgs
    text = record.get("text", "")
    if kind in ("format", "langchain.PromptTemplate"):
        try:
            return convert(text)
        except ValueError:  # not a str.format text after all (a LangChain jinja2 template)
            return text
    return text


def _log_prompts(mlflow, store, version, held: set, experiment: str, link_tags: dict, tmp: Path) -> dict:
    """Prompt templates of the version: artifacts prompts/<var>.txt (the text) and .json (the record),
    and prompt-registry versions when the server has a prompt registry."""
    refs = [r for r in store.variables(version) if (r.summary or {}).get("prompt") and r.name not in held
            and not r.credential]
    if not refs:
        return {}
    folder = tmp / "prompts"
    folder.mkdir(exist_ok=True)
    registered, note = [], ""
    for r in refs:
        rec = r.summary["prompt"]
        (folder / f"{r.name}.txt").write_text(rec["text"])
        (folder / f"{r.name}.json").write_text(json.dumps({"variable": r.name, **rec}, indent=1))
    mlflow.log_artifacts(str(folder), artifact_path="prompts")
    register = getattr(getattr(mlflow, "genai", None), "register_prompt", None) or getattr(mlflow, "register_prompt", None)
    if register is None:
        return {"prompts": [], "prompts_note": "this mlflow has no prompt registry: prompts logged as run artifacts "
                                               "(prompts/) only"}
    for r in refs:
        rec = r.summary["prompt"]
        value = None
        if rec.get("kind") == "chat" and r.codec == "plain":  # plain JSON: safe to load, even imported
            value = loading.load(store, version, [r.name], False)[r.name]
        name = _PROMPT_NAME.sub("_", f"{experiment}.{r.name}")[:200]
        tags = {**link_tags, "jupyter_mv.variable": r.name, "jupyter_mv.prompt_kind": str(rec.get("kind")),
                "jupyter_mv.placeholders": ",".join(rec.get("placeholders") or [])}
        template = mlflow_template(rec, value)
        try:
            # the same text as the registry's latest version: that version, not a copy of it
            pv = _latest_prompt(mlflow, name)
            unchanged = pv is not None and pv.template == template
            if not unchanged:
                pv = register(name=name, template=template, tags=tags,
                              commit_message=f"{version.notebook}@{version.label}" + (f": {version.message}" if version.message else ""))
        except Exception as e:  # a server without the prompt registry (older, or a plain file store)
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            note = f"prompts logged as run artifacts (prompts/) only: the tracking server did not register them ({msg[:200]})"
            break
        uri = f"prompts:/{pv.name}/{pv.version}"
        registered.append({"variable": r.name, "name": pv.name, "version": pv.version, "uri": uri, "unchanged": unchanged})
        mlflow.set_tag(f"jupyter_mv.prompt.{r.name}", uri)  # the run names the prompt versions it used
    return {"prompts": registered, **({"prompts_note": note} if note else {})}


def _latest_prompt(mlflow, name: str):
    """The registry's latest version of prompt `name`, or None (no such prompt, or no way to ask)."""
    load = getattr(getattr(mlflow, "genai", None), "load_prompt", None)
    if load is None:
        return None
    try:
        return load(f"prompts:/{name}@latest", allow_missing=True, link_to_model=False, cache_ttl_seconds=0)
    except TypeError:  # an older signature
        return load(f"prompts:/{name}@latest", allow_missing=True)
