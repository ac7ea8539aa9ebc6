"""What every REST handler of the extension shares: the one translation of errors into a JSON reply
(`error_reply`, from the status each exception carries, errors.py), the body limit, locating a
notebook's store, and store work in a worker thread with a Store opened and closed per request.

handlers.py (history, diff, tags, rename) and remote.py (remotes) build on `_Handler`; keeping it here
lets each import it without importing the other (no import cycle)."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

from jupyter_server.base.handlers import APIHandler

from .. import api, jsondata
from ..errors import ApiError, MVError
from .location import Location, locate

API_PREFIX = "jupyter-mv/api"
API_LEVEL = 1
MAX_BODY = 64 * 1024  # the API takes small JSON documents only


def error_reply(exc: BaseException | None) -> tuple[int, dict] | None:
    """The REST translation of an error: (HTTP status, JSON body {"message": one line}) for any
    MVError (its `status`, see errors.py), None for anything else, which jupyter_server's APIHandler
    answers itself (tornado's HTTPError with its own status; a bug as 500 "Unhandled error")."""
    if isinstance(exc, MVError):
        return exc.status, {"message": str(exc)}
    return None


class _Handler(APIHandler):
    """Shared plumbing: JSON errors, body limit, locating a notebook, store calls off the event loop."""

    async def prepare(self):
        await super().prepare()
        length = self.request.headers.get("Content-Length")
        if (length and length.isdigit() and int(length) > MAX_BODY) or len(self.request.body or b"") > MAX_BODY:
            raise ApiError(413, f"request body too large (limit {MAX_BODY} bytes)")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        reply = error_reply(kwargs.get("exc_info", (None, None, None))[1])
        if reply is not None:
            status, body = reply
            self.set_status(status)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(body))
            return
        super().write_error(status_code, **kwargs)

    def log_exception(self, typ, value, tb) -> None:
        reply = error_reply(value)
        if reply is not None and reply[0] < 500:  # the client's mistake: one line, no traceback
            self.log.info("jupyter_mv: %s %s -> %s: %s", self.request.method, self.request.path,
                          reply[0], value)
            return
        super().log_exception(typ, value, tb)

    @property
    def root_dir(self) -> str:
        return self.settings.get("server_root_dir") or self.settings["contents_manager"].root_dir

    def location(self, notebook: str | None) -> Location:
        return locate(self.root_dir, notebook, self.settings.get("jupyter_mv_config"))

    def body(self) -> dict:
        try:
            data = json.loads(self.request.body or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "the request body must be a JSON object") from None
        if not isinstance(data, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return data

    async def with_store(self, loc: Location, fn: Callable, missing: Callable | None = None):
        """Run fn(store) in a worker thread with the notebook's store open; close it afterwards.
        No store yet: `missing()` if given, else 404."""

        def work():
            if not loc.has_store:
                if missing is not None:
                    return missing()
                raise ApiError(404, f"no versions for notebook {loc.path!r} (no jupyter_mv store beside it)")
            st = api.open_store(loc.store)
            try:
                return fn(st)
            finally:
                st.close()

        return await asyncio.get_running_loop().run_in_executor(None, work)

    def reply(self, data: dict, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(jsondata.dumps(data))  # RFC 8259: NaN/±inf as "NaN"/"Infinity"/"-Infinity"
