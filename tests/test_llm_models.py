"""Hugging Face models, PEFT adapters, tokenizers and generation configs as first-class versions
(codecs.transformers): stored as config JSON + safetensors-layout tensors (never pickled), restored
from the config + weights with the same logits, shipped in bundles that restore without --trust; a
LoRA step writes only the adapter's bytes and the diff names the adapter layers that changed.

Everything is built locally from tiny configs and a tokenizer trained here: no hub download."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")
tokenizers = pytest.importorskip("tokenizers")

import jupyter_mv  # noqa: E402
from jupyter_mv import api, codecs  # noqa: E402
from jupyter_mv import loading  # noqa: E402
from jupyter_mv.errors import DecodeError  # noqa: E402
from jupyter_mv.store import Store  # noqa: E402
from mvtest import run_cell, two_stores_in  # noqa: E402

transformers.logging.set_verbosity_error()
VOCAB = 96
IDS = torch.tensor([[1, 5, 9, 23, 42, 7, 3, 88], [0, 2, 4, 6, 8, 10, 12, 14]])


def gpt2(seed: int = 0, width: int = 32):
    torch.manual_seed(seed)
    cfg = transformers.GPT2Config(n_layer=2, n_embd=width, n_head=2, vocab_size=VOCAB, n_positions=32,
                                  bos_token_id=0, eos_token_id=0)
    return transformers.AutoModelForCausalLM.from_config(cfg)


def llama(seed: int = 0, dtype=None):
    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(num_hidden_layers=2, hidden_size=32, intermediate_size=64, num_attention_heads=4,
                                   num_key_value_heads=2, vocab_size=VOCAB, max_position_embeddings=32,
                                   bos_token_id=0, eos_token_id=0, pad_token_id=0, tie_word_embeddings=False)
    m = transformers.AutoModelForCausalLM.from_config(cfg)
    return m.to(dtype) if dtype is not None else m


def lora(base=None, r: int = 4):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft's note that GPT-2's Conv1D needs fan_in_fan_out
        return peft.get_peft_model(base if base is not None else gpt2(),
                                   peft.LoraConfig(r=r, lora_alpha=8, target_modules=["c_attn"], task_type="CAUSAL_LM"))


def logits(model, ids=IDS):
    with torch.no_grad():
        return model(ids).logits


def train_step(model, seed: int = 1):
    torch.manual_seed(seed)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.5)
    loss = model(IDS, labels=IDS).loss
    loss.backward()
    opt.step()
    opt.zero_grad()
    model.eval()


def trained_tokenizer():
    """A byte-level BPE tokenizer trained here on a few sentences, wrapped as transformers does."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = ["the model learns the adapter", "versions of the notebook are exact",
              "a prompt, a model and an eval table", "low rank adapters train quickly"] * 20
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=120, special_tokens=["<unk>", "<pad>", "<s>"]))
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>",
                                                bos_token="<s>", model_max_length=64)
    return tok, fast


@pytest.fixture
def two_stores(tmp_path, monkeypatch):
    """(store A, store B): B is a colleague's store on the same machine."""
    yield from two_stores_in(tmp_path, monkeypatch, "work/llm.ipynb")


def snap(ns: dict, store: Store, names=(), message="v"):
    api.set_session(api.Session(namespace=ns))
    return api.take_snapshot(names, message=message, store=store)


# -- models --------------------------------------------------------------------------------------
def bert():
    torch.manual_seed(0)
    cfg = transformers.BertConfig(num_hidden_layers=2, hidden_size=32, num_attention_heads=2, intermediate_size=64,
                                  vocab_size=VOCAB, max_position_embeddings=32, num_labels=3)
    return transformers.BertForSequenceClassification(cfg)


@pytest.mark.parametrize("make", [gpt2, llama, lambda: llama(dtype=torch.bfloat16), bert],
                         ids=["gpt2", "llama", "llama-bf16", "bert"])
def test_model_restores_in_a_fresh_store_with_the_same_logits(make, tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_MV_NOTEBOOK", "llm.ipynb")
    model = make().eval()
    model(IDS)  # a forward pass first: caches it fills must not make the stored model differ
    root = tmp_path / ".jupyter_mv"
    with Store(root) as st:
        r = snap({"model": model}, st)
        (var,) = st.variables(r.version)
        assert var.codec == "transformers.model" and var.safe
        assert var.summary["architecture"] == type(model).__name__
    api.set_session(None)
    with Store(root) as st:  # a fresh Store and session: nothing cached from the snapshot
        (v,) = st.versions("llm.ipynb")
        got = loading.load(st, v)["model"]
    assert type(got) is type(model)
    assert got.config.to_dict() == model.config.to_dict()
    assert {k: (t.dtype, t.shape) for k, t in got.state_dict().items()} == \
        {k: (t.dtype, t.shape) for k, t in model.state_dict().items()}
    assert all(torch.equal(a, b) for a, b in zip(got.state_dict().values(), model.state_dict().values()))
    assert torch.equal(logits(got), logits(model))
    assert [vars(t) for t in got.buffers()] == [vars(t) for t in model.buffers()]  # torch.nn.Buffer's persistence
    assert got.training is False
    if getattr(model, "generation_config", None) is not None:  # generative models only
        assert got.generation_config.to_dict() == model.generation_config.to_dict()
    else:
        assert getattr(got, "generation_config", None) is None
    if isinstance(model, transformers.GPT2LMHeadModel):  # tied input and output embeddings stay one Parameter
        assert got.lm_head.weight is got.transformer.wte.weight
    elif isinstance(model, transformers.LlamaForCausalLM):
        assert got.lm_head.weight is not got.model.embed_tokens.weight


def test_snapshot_in_a_real_shell_and_restore_in_another(shell, tmp_path):
    run_cell(shell, "import torch, transformers\n"
                    "transformers.logging.set_verbosity_error()\n"
                    "torch.manual_seed(0)\n"
                    "cfg = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=96, n_positions=32,"
                    " bos_token_id=0, eos_token_id=0)\n"
                    "model = transformers.AutoModelForCausalLM.from_config(cfg)\n"
                    "model.train()\n"
                    "gen = transformers.GenerationConfig(do_sample=True, temperature=0.7, top_p=0.9,"
                    " max_new_tokens=12)")
    run_cell(shell, "%mv_snapshot model gen -m 'tiny gpt2'")
    want = logits(shell.user_ns["model"].eval())
    shell.user_ns["model"].train()
    run_cell(shell, "del model, gen")
    run_cell(shell, "%mv_restore v1")
    got = shell.user_ns["model"]
    assert type(got) is transformers.GPT2LMHeadModel and got.training is True  # its mode, as stored
    assert torch.equal(logits(got.eval()), want)
    gen = shell.user_ns["gen"]
    assert isinstance(gen, transformers.GenerationConfig)
    assert (gen.do_sample, gen.temperature, gen.top_p, gen.max_new_tokens) == (True, 0.7, 0.9, 12)


def test_mixed_training_flags_and_untied_weights_are_kept(two_stores):
    a, _ = two_stores
    model = gpt2().train()
    model.transformer.h[1].eval()  # one block frozen in eval mode (dropout off there only)
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())  # untied by the user
    model.transformer.wpe.weight.requires_grad_(False)
    r = snap({"model": model}, a)
    got = loading.load(a, r.version)["model"]
    assert [m.training for m in got.modules()] == [m.training for m in model.modules()]
    assert got.lm_head.weight is not got.transformer.wte.weight
    assert torch.equal(got.lm_head.weight, model.lm_head.weight)
    assert got.transformer.wpe.weight.requires_grad is False and got.transformer.wte.weight.requires_grad is True


def test_activation_checkpointing_is_kept(two_stores):
    """gradient_checkpointing_enable (common when training adapters) is part of the model's state: the
    checkpointed layers, torch checkpoint's arguments and the input-embedding hook come back."""
    a, _ = two_stores
    model = gpt2()
    with warnings.catch_warnings():  # transformers 5 renames it activation_checkpointing_enable
        warnings.simplefilter("ignore", FutureWarning)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    r = snap({"model": model}, a)
    (var,) = a.variables(r.version)
    assert var.codec == "transformers.model" and not r.notes
    got = loading.load(a, r.version)["model"]
    assert any(getattr(m, "gradient_checkpointing", False) for m in got.modules())
    assert [getattr(m, "gradient_checkpointing", None) for m in got.modules()] == \
        [getattr(m, "gradient_checkpointing", None) for m in model.modules()]
    assert got.transformer.h[0]._gradient_checkpointing_func.keywords == {"use_reentrant": False}
    assert len(got.get_input_embeddings()._forward_hooks) == len(model.get_input_embeddings()._forward_hooks) == 1
    got.train()
    got(IDS, labels=IDS).loss.backward()  # checkpointed backward runs
    assert got.transformer.h[0].attn.c_attn.weight.grad is not None


def test_a_model_holding_more_than_config_and_weights_is_stored_whole(two_stores):
    """State a rebuild from the config would drop (an attribute, a hook) is not silently lost: the
    model is stored by the torch module codec (pickled) instead, and restores with it."""
    a, _ = two_stores
    model = gpt2()
    model.transformer.h[0].attn.note = "patched"
    r = snap({"model": model}, a)
    (var,) = a.variables(r.version)
    assert var.codec == "torch.module"
    (note,) = [n.reason for n in r.notes]  # named: why it is pickled, and what that means for sharing
    assert "transformer.h.0.attn holds state beyond its config and weights (note)" in note and "--trust" in note
    got = loading.load(a, r.version)["model"]
    assert got.transformer.h[0].attn.note == "patched"
    assert torch.equal(logits(got.eval()), logits(model.eval()))


def test_a_merged_adapter_is_never_restored_unmerged(two_stores):
    """merge_adapter() folds the adapter into the base weights and flags the layers merged: rebuilt from
    its config the flag would be lost and the adapter applied twice, so it is stored whole, named."""
    a, _ = two_stores
    model = lora()
    train_step(model)
    model.merge_adapter()
    r = snap({"model": model}, a)
    (var,) = a.variables(r.version)
    assert var.codec == "torch.module" and "merged_adapters" in r.notes[0].reason
    got = loading.load(a, r.version)["model"]
    assert torch.equal(logits(got.eval()), logits(model.eval()))


def test_disabled_and_second_adapters_restore_from_a_bundle_without_trust(two_stores, tmp_path):
    """disable_adapter_layers() (or a snapshot inside `with model.disable_adapter():`) is a flag on every
    adapter layer: kept in the safe format, so a bundle restores without --trust, runs as the base does,
    and enable_adapter_layers() brings the trained adapter back. A second adapter and the active one too."""
    a, b = two_stores
    model = lora()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.add_adapter("second", peft.LoraConfig(r=2, lora_alpha=4, target_modules=["c_attn"], task_type="CAUSAL_LM"))
    train_step(model)
    model.set_adapter("second")
    train_step(model, seed=2)
    enabled = logits(model.eval())
    model.base_model.disable_adapter_layers()
    base_only = logits(model)
    assert not torch.equal(base_only, enabled)
    with model.disable_adapter():  # the context manager of the same flag, inside a loop of evals say
        v_ctx = snap({"model": model}, a).version
    v = snap({"model": model}, a).version
    assert {x.codec for x in a.variables(v)} == {x.codec for x in a.variables(v_ctx)} == {"peft.model"}
    assert a.variables(v)[0].summary["adapters_disabled"] is True  # a diff names it
    got = loading.load(b, api.import_bundle(api.export(v, tmp_path / "off.mvz", store=a), store=b).version,
                       trust=False)["model"]
    assert got.active_adapter == "second" and set(got.peft_config) == {"default", "second"}
    assert torch.equal(logits(got.eval()), base_only)
    got.base_model.enable_adapter_layers()
    assert torch.equal(logits(got), enabled)
    model.base_model.enable_adapter_layers()  # an enabled one is stored enabled (the flag is not sticky)
    v_on = snap({"model": model}, a).version
    assert "adapters_disabled" not in a.variables(v_on)[0].summary
    got = loading.load(a, v_on)["model"]
    assert torch.equal(logits(got.eval()), enabled)


def test_model_and_its_optimizer_restore_together_sharing_parameters(two_stores):
    a, _ = two_stores
    model = gpt2()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss = model(IDS, labels=IDS).loss
    loss.backward()
    opt.step()
    r = snap({"model": model, "opt": opt}, a, names=["opt"])  # the model comes with it (co-variables)
    assert sorted(r.version.variables) == ["model", "opt"]
    # the model keeps its safe format; the optimizer's pickle refers to its parameters by path
    assert {x.name: x.codec for x in a.variables(r.version)} == {"model": "transformers.model",
                                                                "opt": "torch.optimizer"}
    got = loading.load(a, r.version, ["model"])
    assert sorted(got) == ["model", "opt"]
    m, o = got["model"], got["opt"]
    assert type(m) is transformers.GPT2LMHeadModel
    ids = {id(p) for p in m.parameters()}
    assert all(id(p) in ids for g in o.param_groups for p in g["params"])  # it steps the restored model
    assert torch.equal(logits(m.eval()), logits(model.eval()))
    assert torch.equal(o.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


def test_variables_that_are_parts_of_a_model_stay_its_parts_through_a_bundle(two_stores, tmp_path):
    """`cfg` the model was built from, a layer and a weight of it: restored as those parts of the
    restored model (one object, as in the notebook), with the model still in its safe format."""
    a, b = two_stores
    model = gpt2()
    ns = {"cfg": model.config, "model": model, "block": model.transformer.h[1], "w": model.lm_head.weight}
    v = snap(ns, a).version
    assert {x.name for x in a.variables(v) if x.codec == "transformers.model"} == set(ns)
    imported = api.import_bundle(api.export(v, tmp_path / "parts.mvz", store=a), store=b).version
    got = loading.load(b, imported, ["w"], trust=False)  # a part brings its model back
    assert sorted(got) == ["block", "cfg", "model", "w"]
    m = got["model"]
    assert got["cfg"] is m.config and got["block"] is m.transformer.h[1] and got["w"] is m.lm_head.weight
    assert type(got["cfg"]) is transformers.GPT2Config and got["cfg"].to_dict() == model.config.to_dict()
    assert torch.equal(logits(m.eval()), logits(model.eval()))


def test_a_config_alone_round_trips(two_stores):
    a, _ = two_stores
    cfg = transformers.LlamaConfig(num_hidden_layers=3, hidden_size=48, num_attention_heads=4, vocab_size=VOCAB)
    r = snap({"cfg": cfg}, a)
    (var,) = a.variables(r.version)
    assert var.codec == "transformers.config" and var.safe
    got = loading.load(a, r.version)["cfg"]
    assert type(got) is transformers.LlamaConfig and got.to_dict() == cfg.to_dict()


def test_a_lora_model_its_base_and_optimizer_from_a_bundle(two_stores, tmp_path):
    """The usual notebook: `base`, `model = get_peft_model(base, ...)`, `opt` over the adapter. The models
    keep their safe format and the optimizer's pickle refers to their parameters; restoring the model
    from a bundle brings its optimizer back with it, so it needs trust, and the message names the
    optimizer as the reason."""
    from jupyter_mv.errors import Untrusted

    a, b = two_stores
    base = gpt2(width=64)
    model = lora(base, r=8)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    ns = {"base": base, "model": model, "opt": opt}
    train_step(model)
    loss = model(IDS, labels=IDS).loss
    loss.backward()
    opt.step()
    v = snap(ns, a).version
    assert {x.name: x.codec for x in a.variables(v)} == {"base": "peft.model", "model": "peft.model",
                                                          "opt": "torch.optimizer"}
    imported = api.import_bundle(api.export(v, tmp_path / "lora.mvz", store=a), store=b).version
    with pytest.raises(Untrusted, match="opt would unpickle"):
        loading.load(b, imported, ["model"])
    got = loading.load(b, imported, ["model"], trust=True)
    assert sorted(got) == ["base", "model", "opt"]
    m, o = got["model"], got["opt"]
    assert m.base_model.model is got["base"]
    assert {id(p) for g in o.param_groups for p in g["params"]} == {id(p) for p in m.parameters() if p.requires_grad}
    assert torch.equal(logits(m.eval()), logits(model.eval()))
    got = loading.load(a, v, ["opt"])  # locally: no trust needed
    assert got["opt"].param_groups[0]["params"][0] is got["model"].base_model.model.transformer.h[0].attn.c_attn \
        .lora_A.default.weight


@pytest.mark.parametrize("make", [gpt2, llama, lambda: lora(gpt2(width=64), r=8)], ids=["gpt2", "llama", "lora"])
def test_weights_only_load_into_a_live_model(make, two_stores, tmp_path):
    """`mv.load(ref, name, into=model)` (`%mv_restore --weights-only`): the stored weights copied into
    the live model in place, from an imported version too, without trust."""
    from jupyter_mv.errors import UsageError

    a, b = two_stores
    model = make()
    if hasattr(model, "peft_config"):
        train_step(model)
    v = snap({"model": model}, a).version
    imported = api.import_bundle(api.export(v, tmp_path / "w.mvz", store=a), store=b).version
    live = make()  # same architecture, other weights (another seed for the adapter: it starts at zero anyway)
    with torch.no_grad():
        for p in live.parameters():
            p.add_(1.0)
    assert not torch.equal(logits(live.eval()), logits(model.eval()))
    ids_before = {k: id(t) for k, t in live.state_dict(keep_vars=True).items()}
    got = loading.load_weights(b, imported, "model", live)
    assert got is live and {k: id(t) for k, t in live.state_dict(keep_vars=True).items()} == ids_before  # in place
    assert torch.equal(logits(live.eval()), logits(model.eval()))
    with pytest.raises(UsageError, match="architecture differs"):
        loading.load_weights(b, imported, "model", gpt2(width=48))


def test_a_model_loaded_with_from_pretrained_is_stored_safe_and_exact(two_stores, tmp_path):
    """from_pretrained marks what it loaded (each weight, no hub kernels, no weight conversions): a
    model read from a local directory still takes the safe format, and comes back with those marks."""
    import transformers.utils.logging as hf_logging

    a, b = two_stores
    hf_logging.disable_progress_bar()
    gpt2().save_pretrained(tmp_path / "ckpt")
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt")
    adapted = lora(transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "ckpt"))
    r = snap({"model": model, "adapted": adapted}, a)
    assert {x.name: x.codec for x in a.variables(r.version)} == {"model": "transformers.model", "adapted": "peft.model"}
    assert not r.notes and "base_model" not in r.version.params  # a local directory is not a model id
    imported = api.import_bundle(api.export(r.version, tmp_path / "fp.mvz", store=a), store=b).version
    got = loading.load(b, imported)
    m = got["model"]
    assert torch.equal(logits(m.eval()), logits(model.eval()))
    assert torch.equal(logits(got["adapted"].eval()), logits(adapted.eval()))
    assert [vars(p) for p in m.parameters()] == [vars(p) for p in model.parameters()]
    assert (m._use_kernels, m._weight_conversions) == (False, [])
    assert m.name_or_path == model.name_or_path


def test_a_model_pickled_with_what_reaches_inside_it_is_named(two_stores):
    """A variable holding a module's own dict (not a layer, a weight or the config) shares what a part
    reference cannot restore: the two are pickled together, exact, and the model's note says so."""
    a, _ = two_stores
    model = gpt2()
    holder = {"blocks": model.transformer.h._modules}
    r = snap({"model": model, "holder": holder}, a)
    assert {x.name: x.codec for x in a.variables(r.version)} == {"model": "pickle", "holder": "pickle"}
    assert any("model: stored pickled together with holder" in n.reason for n in r.notes)
    got = loading.load(a, r.version, ["model"])
    assert got["holder"]["blocks"] is got["model"].transformer.h._modules


def test_hub_base_name_and_revision_become_params(two_stores):
    a, _ = two_stores
    model = gpt2()
    model.name_or_path = "openai-community/gpt2"
    model.config._name_or_path = "openai-community/gpt2"
    model.config._commit_hash = "607a30d783dfa663caf39e06633721c8d4cfcd7e"
    r = snap({"model": model}, a)
    assert r.version.params["base_model"] == "openai-community/gpt2"
    assert r.version.params["base_revision"] == "607a30d783dfa663caf39e06633721c8d4cfcd7e"
    got = loading.load(a, r.version)["model"]
    assert got.name_or_path == "openai-community/gpt2"
    assert got.config._commit_hash == "607a30d783dfa663caf39e06633721c8d4cfcd7e"
    adapted = lora(model)  # an adapter on that base: the base's id and revision, and the adapter's name
    r = snap({"adapted": adapted}, a)
    assert (r.version.params["base_model"], r.version.params["base_revision"], r.version.params["adapter"]) == (
        "openai-community/gpt2", "607a30d783dfa663caf39e06633721c8d4cfcd7e", "default")


def test_stored_class_names_never_import_anything_else():
    model = gpt2()
    enc = codecs.encode(model)
    for bad in ("system", "os.system", "PreTrainedTokenizerFast", "__class__"):
        meta = {**enc.meta, "model": {**enc.meta["model"], "class": bad}}
        with pytest.raises(DecodeError):
            codecs.decode(enc.codec, meta, [bytearray(b) for b in enc.buffers])
    # a config naming a hub kernel as its attention implementation: never applied (it would download code)
    cfg = {**enc.meta["model"]["config"], "_attn_implementation": "kernels-community/flash-attn",
           "attn_implementation": "kernels-community/flash-attn"}
    hostile = {**enc.meta, "model": {**enc.meta["model"], "config": cfg, "attn_implementation": "kernels-community/x"}}
    got = codecs.decode(enc.codec, hostile, [bytearray(b) for b in enc.buffers])
    assert got.config._attn_implementation in ("eager", "sdpa")
    short = [bytearray(b) for b in enc.buffers]
    short[3] = short[3][:-4]
    with pytest.raises(DecodeError, match="size"):
        codecs.decode(enc.codec, enc.meta, short)
    missing = {**enc.meta, "keys": {k: i for k, i in enc.meta["keys"].items() if not k.endswith("ln_f.bias")}}
    with pytest.raises(DecodeError, match="ln_f.bias"):  # never an uninitialised weight left in place
        codecs.decode(enc.codec, missing, [bytearray(b) for b in enc.buffers])


# -- tokenizers and generation configs --------------------------------------------------------------
def test_tokenizers_round_trip_and_encode_identically(two_stores):
    a, _ = two_stores
    raw, fast = trained_tokenizer()
    fast.add_special_tokens({"additional_special_tokens": ["<tool>"]})
    fast.padding_side = "left"
    fast.chat_template = "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    r = snap({"raw": raw, "tok": fast}, a)
    assert {x.name: x.codec for x in a.variables(r.version)} == {"raw": "tokenizers.tokenizer",
                                                                "tok": "transformers.tokenizer"}
    got = loading.load(a, r.version)
    text = "the notebook learns a low rank <tool> adapter quickly"
    assert type(got["tok"]) is type(fast)
    assert got["tok"](text)["input_ids"] == fast(text)["input_ids"]
    assert got["tok"].decode(fast(text)["input_ids"]) == fast.decode(fast(text)["input_ids"])
    assert got["tok"].get_vocab() == fast.get_vocab()
    assert (got["tok"].pad_token, got["tok"].bos_token, got["tok"].model_max_length) == ("<pad>", "<s>", 64)
    assert got["tok"].padding_side == "left"
    chat = [{"role": "user", "content": "a model"}, {"role": "assistant", "content": "an adapter"}]
    assert got["tok"].apply_chat_template(chat, tokenize=False) == fast.apply_chat_template(chat, tokenize=False)
    assert got["tok"]([text, "a"], padding=True)["input_ids"] == fast([text, "a"], padding=True)["input_ids"]
    assert type(got["raw"]) is tokenizers.Tokenizer
    assert got["raw"].encode(text).ids == raw.encode(text).ids
    assert got["raw"].to_str() == raw.to_str()


def test_a_tokenizer_snapshot_imports_no_model_code(tmp_path):
    """transformers' top-level names are lazy: a notebook that only made a tokenizer must not pay for
    importing torch and every modeling module at its first snapshot (seconds)."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from tokenizers import Tokenizer, models\n"
            "from transformers import PreTrainedTokenizerFast\n"
            "tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({'a': 0, '<unk>': 1}, "
            "unk_token='<unk>')))\n"
            "from jupyter_mv import codecs\n"
            "assert codecs.encode(tok).codec == 'transformers.tokenizer'\n"
            "codecs.encode(object())\n"
            "print(sorted(m for m in ('torch', 'transformers.modeling_utils') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_generation_config_round_trip(two_stores):
    a, _ = two_stores
    gen = transformers.GenerationConfig(do_sample=True, temperature=0.3, top_k=20, repetition_penalty=1.1,
                                        max_new_tokens=64, eos_token_id=[0, 2])
    r = snap({"gen": gen}, a)
    (var,) = a.variables(r.version)
    assert var.codec == "transformers.generation_config" and var.safe
    got = loading.load(a, r.version)["gen"]
    assert type(got) is transformers.GenerationConfig and got.to_dict() == gen.to_dict()


# -- bundles ------------------------------------------------------------------------------------
def test_a_bundle_restores_models_tokenizers_and_adapters_without_trust(two_stores, tmp_path):
    a, b = two_stores
    model, adapted = llama(), lora()
    raw, tok = trained_tokenizer()
    gen = transformers.GenerationConfig(temperature=0.5, do_sample=True)
    ns = {"model": model, "adapted": adapted, "tok": tok, "raw": raw, "gen": gen}
    v = snap(ns, a).version
    path = api.export(v, tmp_path / "llm.mvz", store=a)
    imported = api.import_bundle(path, store=b).version
    assert {x.name: x.codec for x in b.variables(imported)} == {
        "model": "transformers.model", "adapted": "peft.model", "tok": "transformers.tokenizer",
        "raw": "tokenizers.tokenizer", "gen": "transformers.generation_config"}
    assert all(x.safe for x in b.variables(imported))
    got = loading.load(b, imported, None, trust=False)  # the default: no trust asked
    assert torch.equal(logits(got["model"].eval()), logits(model.eval()))
    assert torch.equal(logits(got["adapted"].eval()), logits(adapted.eval()))
    assert got["tok"]("a model")["input_ids"] == tok("a model")["input_ids"]
    assert got["gen"].temperature == 0.5


def test_a_pulled_model_and_adapter_restore_without_trust(two_stores, tmp_path):
    a, b = two_stores
    model, adapted = gpt2(), lora(gpt2(width=64), r=8)
    train_step(adapted)
    raw, tok = trained_tokenizer()
    v = snap({"model": model, "adapted": adapted, "tok": tok}, a).version
    url = (tmp_path / "remote").as_uri()
    api.remote_add("origin", url, store=a)
    api.push(v.label, notebook=v.notebook, store=a)
    api.remote_add("origin", url, store=b)
    api.pull(store=b)
    (pulled,) = b.versions(v.notebook)
    assert b.is_imported(pulled)
    got = loading.load(b, pulled, None, trust=False)
    assert torch.equal(logits(got["model"].eval()), logits(model.eval()))
    assert torch.equal(logits(got["adapted"].eval()), logits(adapted.eval()))
    assert got["tok"]("a model")["input_ids"] == tok("a model")["input_ids"]


def test_bundle_import_refuses_a_malformed_model_row(two_stores, tmp_path):
    import json
    import zipfile

    from jupyter_mv.errors import BundleError

    a, b = two_stores
    v = snap({"model": gpt2()}, a).version
    path = api.export(v, tmp_path / "m.mvz", store=a)
    bad = tmp_path / "bad.mvz"
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "manifest.json":
                m = json.loads(data)
                m["variables"][0]["manifest"]["meta"]["keys"] = {"lm_head.weight": 10**6}
                data = json.dumps(m).encode()
            zout.writestr(info, data)
    with pytest.raises(BundleError, match="weight table"):
        api.import_bundle(bad, store=b)


# -- PEFT adapters ------------------------------------------------------------------------------
def adapter_bytes(model) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)


def test_a_lora_step_writes_only_the_adapter_and_restores_exactly(two_stores):
    a, _ = two_stores
    # wide enough that each adapter matrix (4-12 kB) is a chunk of its own, not inlined in the manifest
    model = lora(gpt2(width=128), r=8)
    ns = {"model": model}
    r1 = snap(ns, a, message="adapter init")
    before = logits(model.eval())
    train_step(model)
    r2 = snap(ns, a, message="one step")
    (var,) = a.variables(r2.version)
    assert var.codec == "peft.model"
    size = adapter_bytes(model)
    assert 0 < r2.version.new_bytes <= 1.2 * size + 4096, (r2.version.new_bytes, size)
    assert var.nbytes > 10 * size  # the base is part of the version, just not written again
    api.set_session(None)
    got2 = loading.load(a, r2.version)["model"]
    got1 = loading.load(a, r1.version)["model"]
    assert type(got2) is type(model)
    assert torch.equal(logits(got2.eval()), logits(model.eval()))
    assert torch.equal(logits(got1.eval()), before)
    trainable = sorted(n for n, p in got2.named_parameters() if p.requires_grad)
    assert trainable == sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert all("lora_" in n for n in trainable)
    assert got2.peft_config["default"].r == 8 and got2.active_adapter == "default"


def test_a_base_variable_and_its_adapter_model_restore_sharing_the_base(two_stores):
    a, _ = two_stores
    base = gpt2()
    lcfg = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"], task_type="CAUSAL_LM")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = peft.get_peft_model(base, lcfg)  # wraps (and changes) `base` in place, and keeps `lcfg` itself
    train_step(model)
    r = snap({"base": base, "lcfg": lcfg, "model": model}, a)
    assert {x.name: x.codec for x in a.variables(r.version)} == {
        "base": "peft.model", "lcfg": "peft.model", "model": "peft.model"}
    got = loading.load(a, r.version, ["model"])
    assert sorted(got) == ["base", "lcfg", "model"]
    assert got["model"].base_model.model is got["base"]
    assert got["model"].peft_config["default"] is got["lcfg"] and type(got["lcfg"]) is peft.LoraConfig
    assert torch.equal(logits(got["model"].eval()), logits(model.eval()))


def test_diff_names_the_adapter_layers_that_changed(two_stores, tmp_path):
    import json

    import jsonschema

    from jupyter_mv.diffview import render_html

    a, b = two_stores
    model = lora(gpt2(width=64), r=8)
    ns = {"model": model}
    r1 = snap(ns, a)
    layer = model.base_model.model.transformer.h[1].attn.c_attn
    with torch.no_grad():  # only block 1's adapter moves: A by 10 % of its norm, B from zero
        layer.lora_A.default.weight.mul_(1.1)
        layer.lora_B.default.weight.add_(0.01)
    r2 = snap(ns, a)
    api.set_session(api.Session(namespace=ns))
    d = api.diff(r1.version.label, r2.version.label, store=a)
    data = d.to_dict()
    schema = json.loads((Path(jupyter_mv.__file__).parent / "schemas" / "diff.schema.json").read_text())
    jsonschema.validate(data, schema)
    (ch,) = data["variables"]["changed"]
    ad = ch["analysis"]["adapters"]
    prefix = "base_model.model.transformer.h.1.attn.c_attn."
    assert [x["name"] for x in ad["changed"]] == [prefix + "lora_A.default.weight", prefix + "lora_B.default.weight"]
    assert ad["changed"][0]["relative"] == pytest.approx(0.1, rel=1e-5)
    assert ad["changed"][1]["relative"] is None and ad["changed"][1]["delta_norm"] > 0  # B was zero
    assert ad["unchanged"] == 2 and ad["base_changed"] == 0
    text = str(d)
    assert "adapter: 2 of 4 weights changed: transformer.h.1.attn.c_attn.lora_A.default.weight 10%" in text
    assert "base unchanged" in text and "lora_B.default.weight from zero" in text
    assert "lora_A.default.weight 10%" in render_html(d)
    # an imported copy diffs the same way, from raw tensors (nothing unpickled, no trust)
    imported = [api.import_bundle(api.export(r.version, tmp_path / f"{r.version.label}.mvz", store=a),
                                  store=b).version for r in (r1, r2)]
    d2 = api.diff(imported[0].label, imported[1].label, store=b).to_dict()
    assert d2["variables"]["changed"][0]["analysis"]["adapters"] == ad
