"""The branch graph's layout (labextension/src/render/graph.ts) and a variable's history stepping
(render/varhistory.ts), run under node: lanes by branch, lanes reused only where an edge cannot cross
a node, runs of plain automatic versions folded (never a tagged, named, selected, highlighted or the
newest version), prev/next through the changes."""

from __future__ import annotations

import json

from test_render_layer import needs_node, render_js, run_js  # noqa: F401  (fixture)

pytestmark = needs_node


def node(n: int, parent: int | None, kind: str = "manual", **kw) -> dict:
    return {"key": f"v{n}", "label": f"v{n}", "parent": f"v{parent}" if parent else None, "tags": [], "kind": kind, **kw}


OPTS = """const o = {opts};
    for (const k of ['selected', 'expanded']) {{ if (o[k]) {{ o[k] = new Set(o[k]); }} }}
    if (o.highlight) {{ o.highlight = new Map(o.highlight); }}"""


def lanes(render_js, nodes: list, opts: dict | None = None) -> dict:
    return run_js(render_js, OPTS.format(opts=json.dumps(opts or {})) + f"""
        const items = R.foldRuns({json.dumps(nodes)}, o);
        return Object.fromEntries(R.assignLanes(items));""")


def test_a_linear_history_is_one_lane(render_js):
    assert lanes(render_js, [node(1, None), *[node(i, i - 1) for i in range(2, 6)]]) == {f"v{i}": 0 for i in range(1, 6)}


def test_a_restore_and_snapshot_opens_a_second_lane(render_js):
    nodes = [node(1, None), node(2, 1), node(3, 2), node(4, 1), node(5, 4)]
    assert lanes(render_js, nodes) == {"v1": 0, "v2": 0, "v3": 0, "v4": 1, "v5": 1}


def test_a_lane_is_reused_only_where_the_edge_crosses_no_node(render_js):
    # v3 ends lane 1 at row 2; v6 branches from v4 (row 3): lane 1 is free again
    nodes = [node(1, None), node(2, 1), node(3, 1), node(4, 2), node(5, 4), node(6, 4)]
    assert lanes(render_js, nodes) == {"v1": 0, "v2": 0, "v3": 1, "v4": 0, "v5": 0, "v6": 1}
    # v4 branches from v1 (row 0): its edge would run through v3's place in lane 1, so lane 2
    nodes = [node(1, None), node(2, 1), node(3, 1), node(4, 1)]
    assert lanes(render_js, nodes) == {"v1": 0, "v2": 0, "v3": 1, "v4": 2}


def test_two_roots_and_a_parent_not_shown(render_js):
    # an imported history (v3 has no parent) and a parent outside the loaded versions (v9)
    nodes = [node(1, None), node(2, 1), node(3, None), node(4, 9)]
    # each root starts where a lane is free: the ended line of v1-v2 leaves lane 0 to them
    assert lanes(render_js, nodes) == {"v1": 0, "v2": 0, "v3": 0, "v4": 0}
    assert keys(render_js, nodes)[3] == ["v4", None, None]  # the missing parent: a root


def keys(render_js, nodes, opts=None) -> list:
    return run_js(render_js, OPTS.format(opts=json.dumps(opts or {})) + f"""
        return R.foldRuns({json.dumps(nodes)}, o).map(i => [i.key, i.parent, i.fold ? i.fold.members.map(m => m.label) : null]);""")


AUTO_RUN = [node(1, None), *[node(i, i - 1, "auto") for i in range(2, 7)], node(7, 6), node(8, 1)]


def test_runs_of_plain_automatic_versions_fold(render_js):
    assert keys(render_js, AUTO_RUN) == [["v1", None, None], ["fold:v2", "v1", ["v2", "v3", "v4", "v5", "v6"]],
                                         ["v7", "fold:v2", None], ["v8", "v1", None]]
    # opened
    assert [k for k, _, _ in keys(render_js, AUTO_RUN, {"expanded": ["fold:v2"]})] == [f"v{i}" for i in range(1, 9)]


def test_versions_people_look_at_never_fold(render_js):
    hl = keys(render_js, AUTO_RUN, {"highlight": [["v4", "changed"]]})  # splits the run: 2 + 2, under 3 each
    assert [k for k, _, _ in hl] == [f"v{i}" for i in range(1, 9)]
    assert [k for k, _, _ in keys(render_js, AUTO_RUN, {"highlight": [["v4", "changed"]], "minFold": 2})] == [
        "v1", "fold:v2", "v4", "fold:v5", "v7", "v8"]
    tagged = [dict(n, tags=["keep"]) if n["label"] == "v3" else n for n in AUTO_RUN]
    assert [k for k, _, _ in keys(render_js, tagged)] == ["v1", "v2", "v3", "fold:v4", "v7", "v8"]
    named = [dict(n, name="mid") if n["label"] == "v5" else n for n in AUTO_RUN]
    assert [k for k, _, _ in keys(render_js, named, {"minFold": 2})] == ["v1", "fold:v2", "v5", "v6", "v7", "v8"]
    newest = [node(1, None), *[node(i, i - 1, "auto") for i in range(2, 6)]]  # the last one is the current state
    assert [k for k, _, _ in keys(render_js, newest)] == ["v1", "fold:v2", "v5"]


def test_options_as_the_hosts_pass_them(render_js):
    got = run_js(render_js, f"""
        const nodes = {json.dumps(AUTO_RUN)};
        const a = R.foldRuns(nodes, {{ highlight: new Map([['v4', 'changed']]) }}).map(i => i.key);
        const b = R.foldRuns(nodes, {{ selected: new Set(['v3']), expanded: new Set() }}).map(i => i.key);
        return [a, b];""")
    assert got == [[f"v{i}" for i in range(1, 9)], ["v1", "v2", "v3", "fold:v4", "v7", "v8"]]


def test_stepping_through_a_variables_changes(render_js):
    hist = {"notebook": "nb", "name": "x", "kind": "variable", "values": [],
            "changes": [{"id": v, "change": "changed", "type": "int", "text": ""} for v in ("v1", "v3", "v10")]}
    got = run_js(render_js, f"""
        const h = {json.dumps(hist)};
        return [[null, 1], [null, -1], ['v1', 1], ['v3', 1], ['v10', 1], ['v10', -1], ['v1', -1], ['v2', 1], ['v9', -1]]
            .map(([cur, dir]) => R.stepChange(h, cur, dir));""")
    # by version number: v10 comes after v3 (not between v1 and v3 as text would sort it)
    assert got == ["v1", "v10", "v3", "v10", None, "v3", None, "v3", "v3"]


def test_hidden_versions_keep_the_lines_of_descent(render_js):
    """The sidebar hides automatic versions (a setting) or filters: a node links to its nearest shown ancestor."""
    nodes = [node(1, None), node(2, 1, "auto"), node(3, 2, "auto"), node(4, 3), node(5, 2), node(6, 5, "auto")]
    got = run_js(render_js, f"""
        return R.linkShown({json.dumps(nodes)}, new Set(['v1', 'v4', 'v5'])).map(n => [n.label, n.parent]);""")
    assert got == [["v1", None], ["v4", "v1"], ["v5", "v1"]]
    got = run_js(render_js, f"""return R.linkShown({json.dumps(nodes)}, new Set(['v4', 'v6'])).map(n => [n.label, n.parent]);""")
    assert got == [["v4", None], ["v6", None]]  # no shown ancestor: roots
