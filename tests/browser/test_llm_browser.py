"""LLM work in a real JupyterLab and headless Chromium: a prompt and an eval table in two versions; the
sidebar's version details show the prompt's text and the eval table, the Diff tab and the %mv_diff widget
show the prompt's line diff and the eval regressions (fixtures: tests/browser/conftest.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

PANEL = "#jupyter-mv-versions"

CELLS = [
    "%load_ext jupyter_mv\nimport pandas as pd\n"
    "qa_prompt = 'Answer from the context.\\nContext: {context}\\nQuestion: {question}'\n"
    "eval_df = pd.DataFrame({'id': ['q1', 'q2'], 'question': ['a', 'b'], 'exact_match': [1.0, 0.0]})\n"
    "%mv_snapshot qa_prompt eval_df -m first",
    "qa_prompt = 'Answer in one word.\\nContext: {context}\\nQuestion: {question}'\n"
    "eval_df = eval_df.assign(exact_match=[0.0, 1.0])\n"
    "%mv_snapshot qa_prompt eval_df -m second",
    "%mv_diff v1 v2",
]


def test_prompts_and_evals_in_sidebar_diff_tab_and_widget(lab, lab_page):
    lp, page = lab_page, lab_page.page
    lab.write_notebook("llm_browser.ipynb", CELLS)
    lp.open("llm_browser.ipynb")
    page.locator(".jp-SideBar li[data-id='jupyter-mv-versions']").click()
    page.locator(PANEL).wait_for(state="visible")
    lp.run_cell(0)
    lp.run_cell(1)
    page.locator(f"{PANEL} tr.mv-row[data-version='v2']").wait_for()

    # the Diff tab (the last two versions): the prompt's line diff and the regressed example first
    page.locator(f"{PANEL} .jp-mv-action-diff").click()
    diff = page.locator(".jp-mv-diff:visible")
    diff.locator(".mv-prompt-diff").wait_for()
    assert diff.locator(".mv-prompt-diff div.mv-removed").inner_text() == "-Answer from the context."
    assert diff.locator(".mv-prompt-diff div.mv-added").inner_text() == "+Answer in one word."
    ev = diff.locator(".mv-analysis-eval")
    assert "1 regressed, 1 improved" in ev.inner_text()
    rows = ev.locator("tbody tr").evaluate_all("rs => rs.map(r => r.innerText.replace(/\\s+/g, ' ').trim())")
    assert rows[0].startswith("regressed q1") and rows[1].startswith("improved q2")
    lp.screenshot("1-diff-tab")

    # the sidebar's details: the prompt as text with its placeholders, the eval table's mean score
    page.locator(".lm-TabBar-tab:has-text('llm_browser.ipynb')").first.click()
    page.locator(f"{PANEL} tr.mv-row[data-version='v1']").click()
    details = page.locator(f"{PANEL} .mv-version-details[data-version='v1']")
    details.wait_for()
    prompt = details.locator(".mv-prompt[data-name='qa_prompt']")
    assert "placeholders: context, question" in prompt.locator("summary").inner_text()
    assert prompt.locator(".mv-prompt-text").inner_text() == \
        "Answer from the context.\nContext: {context}\nQuestion: {question}"
    evals = details.locator(".mv-llm table").inner_text()
    assert "eval_df" in evals and "exact_match 0.5" in evals
    lp.screenshot("2-details")

    # the %mv_diff widget
    lp.run_cell(2)
    w = page.locator(".mv-diff-widget")
    w.locator(".mv-prompt-diff").wait_for()
    assert "+Answer in one word." in w.locator(".mv-prompt-diff").inner_text()
    table = w.locator("table.mv-eval").inner_text()
    assert table.index("regressed") < table.index("improved")
    lp.screenshot("3-widget")
