"""REST handlers: read a notebook's history from its store, tag versions, follow renames.

Every handler is an authenticated jupyter_server APIHandler (base._Handler). Reads are GET, changes
POST. The core raises; `error_reply` (base.py) turns its errors into JSON with the status the exception
carries (errors.py) and a "message". Store work runs in a worker thread and each request opens and
closes its own Store. ROUTES is the one route table, the remotes' routes (remote.py) included."""

from __future__ import annotations

import tornado.web
from jupyter_server.utils import url_path_join

from .. import __version__, api, credentials
from ..errors import ApiError, StoreError
from . import remote
from .base import API_LEVEL, API_PREFIX, MAX_BODY, _Handler, error_reply  # noqa: F401 (the module's names)
from .location import check_ref


class VersionHandler(_Handler):
    """GET version: the package version, so the frontend can check it talks to a matching server."""

    @tornado.web.authenticated
    def get(self):
        self.reply({"name": "jupyter_mv", "version": __version__, "api": API_LEVEL})


class VersionsHandler(_Handler):
    """GET versions?notebook=PATH: one notebook's versions, oldest first (empty when it has none)."""

    @tornado.web.authenticated
    async def get(self):
        loc = self.location(self.get_query_argument("notebook", None))

        def read(st):
            return [v.to_dict() for v in api.versions(loc.key, store=st)]

        versions = await self.with_store(loc, read, missing=list)
        self.reply({"notebook": loc.path, "key": loc.key, "versions": versions})


class VersionDetailsHandler(_Handler):
    """GET versions/ID?notebook=PATH: everything recorded about one version, cells and outputs included."""

    @tornado.web.authenticated
    async def get(self, ref: str):
        ref = check_ref(ref)
        loc = self.location(self.get_query_argument("notebook", None))
        details = await self.with_store(loc, lambda st: api.show(ref, notebook=loc.key, store=st))
        self.reply(details)


class DiffHandler(_Handler):
    """GET diff?notebook=PATH&a=ID&b=ID: the core's structured diff (Diff.to_dict())."""

    @tornado.web.authenticated
    async def get(self):
        a = check_ref(self.get_query_argument("a", None), "a")
        b = check_ref(self.get_query_argument("b", None), "b")
        loc = self.location(self.get_query_argument("notebook", None))
        d = await self.with_store(loc, lambda st: api.diff(a, b, notebook=loc.key, store=st).to_dict())
        self.reply(d)


class VariableHistoryHandler(_Handler):
    """GET variable-history?notebook=PATH&name=VAR[&kind=variable|metric]: the versions where a variable
    (or metric) changed, each against its parent, and its numeric values (api.variable_history)."""

    @tornado.web.authenticated
    async def get(self):
        name = (self.get_query_argument("name", None) or "").strip()
        if not name:
            raise ApiError(400, "the 'name' parameter is required (a variable or metric name)")
        if len(name) > 200 or not name.isprintable():
            raise ApiError(400, f"malformed name {name[:40]!r}")
        kind = self.get_query_argument("kind", None) or None
        if kind not in (None, "variable", "metric"):
            raise ApiError(400, f"bad kind {kind[:20]!r}: use 'variable' or 'metric'")
        loc = self.location(self.get_query_argument("notebook", None))
        self.reply(await self.with_store(loc, lambda st: api.variable_history(name, loc.key, store=st, kind=kind)))


class TagsHandler(_Handler):
    """POST tags {notebook, version, tag, remove?}: tag a version (or remove the tag)."""

    @tornado.web.authenticated
    async def post(self):
        data = self.body()
        loc = self.location(data.get("notebook"))
        ref = check_ref(data.get("version"))
        tag = data.get("tag")
        if not isinstance(tag, str) or not tag.strip():
            raise ApiError(400, "the 'tag' field is required")
        remove = bool(data.get("remove", False))

        def change(st):
            v = api.resolve(ref, loc.key, st)
            st.tag(v, tag, remove=remove)
            return credentials.mask_version(st.version_by_id(v.id)).to_dict()

        self.reply({"version": await self.with_store(loc, change)})


class RenameHandler(_Handler):
    """POST rename {old, new}: the notebook was renamed; its history follows it."""

    @tornado.web.authenticated
    async def post(self):
        data = self.body()
        old = self.location(data.get("old"))
        new = self.location(data.get("new"))
        if old.store != new.store:
            raise ApiError(409, "the notebook moved to another directory; its history stays in "
                                f"{old.path!r}'s directory (export and import it to move it)")

        def rename(st):
            if old.key == new.key or not st.versions(old.key, limit=1):
                return False
            try:
                st.rename_notebook(old.key, new.key)
            except StoreError as e:
                raise ApiError(409, str(e)) from None
            return True

        renamed = await self.with_store(old, rename, missing=lambda: False)
        self.reply({"renamed": renamed, "old": old.path, "new": new.path, "key": new.key})


# One table: (path below /jupyter-mv/api/, handler). The OpenAPI file documents each of them.
ROUTES: list[tuple[str, type]] = [
    ("version", VersionHandler),
    ("versions", VersionsHandler),
    (r"versions/([^/]+)", VersionDetailsHandler),
    ("diff", DiffHandler),
    ("variable-history", VariableHistoryHandler),
    ("tags", TagsHandler),
    ("rename", RenameHandler),
]

ROUTES += remote.ROUTES  # remotes (server/remote.py)


def setup_handlers(web_app) -> None:
    base = web_app.settings.get("base_url", "/")
    web_app.add_handlers(".*$", [(url_path_join(base, API_PREFIX, path), handler) for path, handler in ROUTES])
