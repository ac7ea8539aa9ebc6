"""The jupyter_server extension: a small REST API over the stores of the notebooks under the
server root, for the JupyterLab "Model versions" panel. Only this package imports tornado and
jupyter_server; the core never imports it."""

from __future__ import annotations


def _jupyter_server_extension_points():
    return [{"module": "jupyter_mv.server"}]


def _load_jupyter_server_extension(serverapp) -> None:
    from ..config import JupyterMV
    from .handlers import API_PREFIX, setup_handlers

    # the extension's settings from the server's config (c.JupyterMV.store in jupyter_server_config.py),
    # kept for the handlers (server.location reads them) rather than made the process-wide default
    serverapp.web_app.settings["jupyter_mv_config"] = JupyterMV(parent=serverapp)
    setup_handlers(serverapp.web_app)
    serverapp.log.info("jupyter_mv: REST API at /%s/", API_PREFIX)


# jupyter_server < 2 looked for the name without the leading underscore
load_jupyter_server_extension = _load_jupyter_server_extension
