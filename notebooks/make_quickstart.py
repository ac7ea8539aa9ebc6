"""Regenerate quickstart.ipynb (kept as code so its cells stay reviewable): python make_quickstart.py"""

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

cells = [
    new_markdown_cell("# jupyter_mv quick start\n\nKeep every model you train, see what changed, and get any "
                      "earlier one back — one line each, stored beside this notebook in `.jupyter_mv/`."),
    new_code_cell("%load_ext jupyter_mv"),
    new_code_cell("from sklearn.datasets import load_breast_cancer\n"
                  "from sklearn.linear_model import LogisticRegression\n"
                  "from sklearn.model_selection import train_test_split\n"
                  "from sklearn.pipeline import make_pipeline\n"
                  "from sklearn.preprocessing import StandardScaler\n\n"
                  "X, y = load_breast_cancer(return_X_y=True)\n"
                  "X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)"),
    new_markdown_cell("Train a first model and snapshot it. `-m` is a message, `-t` a tag you can use "
                      "instead of the version number, `--metrics` any Python expression giving a dict."),
    new_code_cell("clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0)).fit(X_train, y_train)\n"
                  "acc = clf.score(X_test, y_test)\n"
                  "print(f'accuracy {acc:.3f}')"),
    new_code_cell("%mv_snapshot clf -m \"C=1\" -t baseline --metrics \"{'acc': acc}\""),
    new_markdown_cell("Change a hyperparameter, retrain, snapshot again."),
    new_code_cell("clf = make_pipeline(StandardScaler(), LogisticRegression(C=0.01)).fit(X_train, y_train)\n"
                  "acc = clf.score(X_test, y_test)\n"
                  "print(f'accuracy {acc:.3f}')"),
    new_code_cell("%mv_snapshot clf -m \"C=0.01\" -t small_C --metrics \"{'acc': acc}\""),
    new_markdown_cell("The history is a pandas DataFrame, one row a version (oldest first)."),
    new_code_cell("import jupyter_mv as mv\n\n"
                  "h = mv.history()\n"
                  "h[['version', 'message', 'tags', 'metrics', 'bytes']]"),
    new_markdown_cell("What changed between the two? Params (the pipeline's hyperparameters are picked up "
                      "automatically), metrics, variables and the cells that ran."),
    new_code_cell("d = mv.diff('baseline', 'small_C')\n"
                  "assert d.params['changed']['logisticregression__C'] == [1.0, 0.01]\n"
                  "print(d)"),
    new_code_cell("%mv_diff baseline small_C"),
    new_markdown_cell("Get the baseline model back: identical predictions, bit for bit."),
    new_code_cell("small_C_proba = clf.predict_proba(X_test)\n"
                  "%mv_restore baseline clf\n"
                  "assert clf.get_params()['logisticregression__C'] == 1.0"),
    new_markdown_cell("Or keep the current model and put the old one beside it with a prefix."),
    new_code_cell("%mv_restore small_C clf --prefix old_\n"
                  "import numpy as np\n"
                  "assert np.array_equal(old_clf.predict_proba(X_test), small_C_proba)\n"
                  "print('old_clf predicts exactly like the C=0.01 model did')"),
    new_markdown_cell("Re-display the outputs the cells produced when the baseline was taken."),
    new_code_cell("%mv_restore baseline --outputs"),
    new_markdown_cell("With no names, `%mv_snapshot` stores every storable variable (modules, functions "
                      "you imported and things like open files are skipped, each named in a warning)."),
    new_code_cell("%mv_snapshot -m \"whole session\""),
    new_code_cell("%mv_log"),
    new_markdown_cell("`mv.load` reads one variable of any version without touching your namespace."),
    new_code_cell("m = mv.load('small_C', 'clf')\n"
                  "assert m.get_params()['logisticregression__C'] == 0.01\n"
                  "m"),
]
nb = new_notebook(cells=cells, metadata={
    "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
    "language_info": {"name": "python"},
})
nbformat.write(nb, "quickstart.ipynb")
