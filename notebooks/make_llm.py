"""Regenerate llm.ipynb (kept as code so its cells stay reviewable): python make_llm.py

LLM work with jupyter_mv: a tiny GPT-2 built from a config, a tokenizer trained here, LoRA steps with
peft, two prompt versions, an eval table, and the diff between them. Nothing is downloaded."""

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

cells = [
    new_markdown_cell("# LLM work with jupyter_mv\n\nA base model, a LoRA adapter, a prompt template, generation "
                      "settings and an eval table, versioned together: which prompt and settings produced which "
                      "scores, and the version that worked, back in one line. Everything here is tiny and local "
                      "(a 2-layer GPT-2 built from a config, a tokenizer trained in the notebook)."),
    new_code_cell("%load_ext jupyter_mv"),
    new_code_cell(
        "import torch\n"
        "from tokenizers import Tokenizer, models, pre_tokenizers, trainers\n"
        "from transformers import GPT2Config, GPT2LMHeadModel, GenerationConfig, PreTrainedTokenizerFast\n"
        "from peft import LoraConfig, get_peft_model\n\n"
        "corpus = ['the capital of france is paris', 'the capital of italy is rome', 'two plus two is four',\n"
        "          'the sky is blue', 'water is wet', 'context question answer'] * 10\n"
        "raw = Tokenizer(models.BPE(unk_token='<unk>'))\n"
        "raw.pre_tokenizer = pre_tokenizers.Whitespace()\n"
        "raw.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=120, special_tokens=['<unk>', '<eos>']))\n"
        "tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token='<unk>', eos_token='<eos>', pad_token='<eos>')\n\n"
        "torch.manual_seed(0)\n"
        "config = GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=128, vocab_size=len(tok),\n"
        "                    bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id)\n"
        "model = get_peft_model(GPT2LMHeadModel(config), LoraConfig(r=4, lora_alpha=8, target_modules=['c_attn'],\n"
        "                                                         fan_in_fan_out=True))\n"
        "model.print_trainable_parameters()"),
    new_markdown_cell("Generation settings are recorded as params by themselves (a `GenerationConfig`, or a dict "
                      "holding `temperature`, `top_p`, `max_new_tokens`, …)."),
    new_code_cell("gen_cfg = GenerationConfig(max_new_tokens=4, do_sample=False, temperature=1.0, top_k=50,\n"
                  "                           repetition_penalty=1.0, pad_token_id=tok.eos_token_id)"),
    new_markdown_cell("A prompt template: any string with `{name}` / `{{ name }}` placeholders and some prose, "
                      "a chat message list, or a LangChain / Jinja2 template object."),
    new_code_cell("qa_prompt = 'Answer from the context.\\nContext: {context}\\nQuestion: {question}\\nAnswer:'"),
    new_code_cell(
        "import pandas as pd\n\n"
        "examples = pd.DataFrame({\n"
        "    'id': ['q1', 'q2', 'q3', 'q4'],\n"
        "    'context': ['the capital of france is paris', 'the capital of italy is rome', 'two plus two is four',\n"
        "                'the sky is blue'],\n"
        "    'question': ['capital of france', 'capital of italy', 'two plus two', 'color of the sky'],\n"
        "    'reference': ['paris', 'rome', 'four', 'blue'],\n"
        "})\n\n"
        "def train_steps(model, n, lr=5e-3):\n"
        "    \"\"\"n LoRA steps on the corpus (only the adapter's weights train).\"\"\"\n"
        "    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)\n"
        "    batch = tok(corpus[:12], return_tensors='pt', padding=True)\n"
        "    model.train()\n"
        "    for _ in range(n):\n"
        "        loss = model(**batch, labels=batch['input_ids']).loss\n"
        "        loss.backward(); opt.step(); opt.zero_grad()\n"
        "    model.eval()\n"
        "    return float(loss)\n\n"
        "def evaluate(prompt):\n"
        "    \"\"\"One row per example: the output, exact match, and the reference's loss given the prompt.\"\"\"\n"
        "    rows = []\n"
        "    for ex in examples.itertuples():\n"
        "        text = prompt.format(context=ex.context, question=ex.question)\n"
        "        ids = tok(text, return_tensors='pt')['input_ids']\n"
        "        with torch.no_grad():\n"
        "            out = model.generate(input_ids=ids, generation_config=gen_cfg)\n"
        "            full = tok(text + ' ' + ex.reference, return_tensors='pt')['input_ids']\n"
        "            labels = full.clone(); labels[:, :ids.shape[1]] = -100\n"
        "            loss = float(model(input_ids=full, labels=labels).loss)\n"
        "        answer = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()\n"
        "        rows.append({'id': ex.id, 'question': ex.question, 'output': answer,\n"
        "                     'exact_match': float(answer.split()[:1] == [ex.reference]), 'loss': round(loss, 4)})\n"
        "    return pd.DataFrame(rows)"),
    new_markdown_cell("Train a few LoRA steps, evaluate, snapshot. A DataFrame named `eval_*` (or with an id "
                      "column and score columns, or given with `--eval NAME`) is an eval table: its mean scores "
                      "become metrics, its dataset hash a param."),
    new_code_cell("train_loss = train_steps(model, 3)\n"
                  "eval_results = evaluate(qa_prompt)\n"
                  "eval_results"),
    new_code_cell("%mv_snapshot model tok gen_cfg qa_prompt eval_results -m \"prompt v1\" -t v1_prompt"),
    new_markdown_cell("A second prompt and two more LoRA steps (each version writes only the adapter's bytes)."),
    new_code_cell("qa_prompt = ('You answer questions in one word.\\nContext: {context}\\nQuestion: {question}\\n'\n"
                  "             'One-word answer:')\n"
                  "train_loss = train_steps(model, 2)\n"
                  "eval_results = evaluate(qa_prompt)\n"
                  "eval_results"),
    new_code_cell("%mv_snapshot model tok gen_cfg qa_prompt eval_results -m \"prompt v2\""),
    new_markdown_cell("The diff shows the prompt's line diff and placeholders, and the eval table by example id: "
                      "regressions first, then improvements, new and removed examples, and each score's mean delta."),
    new_code_cell("%mv_diff v1 v2"),
    new_code_cell("import jupyter_mv as mv\n\n"
                  "d = mv.diff('v1', 'v2')\n"
                  "changed = {v['name']: v.get('analysis', {}) for v in d.variables['changed']}\n"
                  "assert changed['qa_prompt']['kind'] == 'prompt'\n"
                  "assert '+You answer questions in one word.' in changed['qa_prompt']['line_diff']\n"
                  "assert changed['eval_results']['kind'] == 'eval' and changed['eval_results']['comparable']\n"
                  "print(d)"),
    new_code_cell("mv.history()[['version', 'message', 'params', 'metrics']]"),
    new_markdown_cell("Go back to the first prompt and its adapter: the same prompt text, the same scores."),
    new_code_cell("%mv_restore v1_prompt qa_prompt model eval_results\n"
                  "assert qa_prompt.startswith('Answer from the context.')\n"
                  "assert evaluate(qa_prompt).equals(eval_results)"),
]
nb = new_notebook(cells=cells, metadata={
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"},
})

if __name__ == "__main__":
    nbformat.write(nb, "llm.ipynb")
