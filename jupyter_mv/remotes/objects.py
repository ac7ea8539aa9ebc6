"""The object-store client under remotes: one small interface over S3, GCS, Azure Blob, local files
(obstore) and, as a fallback, any other fsspec URL (sftp://, ...).

    store = open_remote("s3://bucket/projects/churn")      # endpoint/credentials: AWS_* and ~/.aws
    etag = store.put("chunks/ab/abcdef", data)              # create-only: RemoteExists if present
    store.put("tags/best", b"v3", mode="overwrite", if_match=etag)   # RemoteConflict if it moved
    for meta in store.list("chunks/"): ...                  # ObjectMeta(key, size, etag, modified)

Keys are relative to the URL's path ("prefix") and use "/" as separator. Everything a remote says
comes back as the errors of jupyter_mv/errors.py (RemoteError and its subclasses), one line each, and
never with a credential in it: URLs lose their user info and query strings, known secrets are masked.

Conditional writes (what lets several people push without a lock):
- `put(mode="create")` sends `If-None-Match: *` on S3 and GCS/Azure's equivalents (obstore), and is an
  atomic no-clobber link on local files; large files (`put_file`) go up as an S3 multipart upload whose
  CompleteMultipartUpload carries `If-None-Match: *` (an upload that loses is aborted).
- `put(if_match=etag)` / `delete(if_match=etag)` send `If-Match` (S3: RFC 9110 semantics, AWS supports
  it on PUT since 2024-11 and on DeleteObject since 2025-09); on local files they hold an advisory lock
  (`fcntl.flock`) on the remote's lock file `.mv-lock`, so compare-and-swap is atomic between
  jupyter_mv processes.
- `conditional_writes()` probes the remote once per process (a create-only write twice, an If-Match
  with a wrong ETag): servers that ignore the headers (s3rver, old MinIO/Ceph) answer False, and callers
  refuse what needs them (tag moves). fsspec remotes answer False: their writes are not atomic.

S3 endpoint, region and credentials come from botocore's session (the AWS CLI's chain: AWS_* variables,
~/.aws profiles, SSO, credential_process...), handed to obstore through its Boto3CredentialProvider.
S3 requests obstore does not offer (multipart with a condition, conditional delete, listing and
aborting multipart uploads) are signed by botocore (S3SigV4Auth, AWS Signature Version 4) and sent
with http.client.

obstore's Rust runtime does not survive fork(): processes that use this module must start workers with
multiprocessing's "spawn" method.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import http.client
import os
import re
import tempfile
import threading
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ..errors import RemoteConflict, RemoteError, RemoteExists, RemoteMissing

__all__ = ["ObjectMeta", "ObjectStore", "open_remote", "redact_url", "TRANSFER_CONCURRENCY",
           "MULTIPART_THRESHOLD", "PART_SIZE", "MultipartUpload"]

# 2 cores: more parallel transfers cost more CPU than they win (REMOTE-NOTES); callers moving many
# objects use the same cap
TRANSFER_CONCURRENCY = 4
# put_file sends files at least this large as a multipart upload (S3 parts: 5 MiB .. 5 GiB, ≤ 10,000)
MULTIPART_THRESHOLD = 32 * 1024 * 1024
PART_SIZE = 16 * 1024 * 1024
PROBE_PREFIX = ".mv-probe/"
LOCK_KEY = ".mv-lock"  # local remotes: the lock file of If-Match writes (never listed)

Progress = Callable[[int, int], None]  # progress(bytes_done, bytes_total)

class _Unsupported(RemoteError):
    """The backend has no such operation (a conditional update or delete)."""


_probe_cache: dict[str, bool] = {}
_probe_lock = threading.Lock()

# obstore's Rust runtime (its threads, connection pools) does not survive fork(): a child forked
# after this process used a remote would hang on its first request. Say so instead.
_state = {"used": False, "forked_after_use": False}


def _after_fork_in_child() -> None:
    if _state["used"]:
        _state["forked_after_use"] = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


@dataclass(frozen=True)
class ObjectMeta:
    """One object on a remote: `key` relative to the remote's URL, `size` in bytes, `etag` as the
    server gives it (quoted on S3; None where the backend has none), `modified` (timezone-aware UTC)."""

    key: str
    size: int
    etag: str | None
    modified: _dt.datetime


@dataclass(frozen=True)
class MultipartUpload:
    """An unfinished multipart upload (S3): what `remote gc` aborts when it is older than its grace."""

    key: str
    upload_id: str
    initiated: _dt.datetime


# ---------------------------------------------------------------------------------------------------
# keeping credentials out of messages

_URL_RE = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^\s/?#@]*@)?([^\s?#]*)(\?[^\s#]*)?(#\S*)?")
# schemes whose user name is a login name (ssh's user@host), not a credential; anywhere else a name
# before '@' is how tokens travel (https://TOKEN@host, as git's credential-less URLs do)
LOGIN_SCHEMES = ("sftp", "ssh", "scp", "ftp", "ftps")


def userinfo_is_name(scheme: str, host: str) -> bool:
    """Whether the part before '@' in a `scheme`:// URL whose host is `host` is a plain name: an ssh-like
    login, or the container of an Azure Data Lake URL (abfs://CONTAINER@ACCOUNT.dfs.core.windows.net)."""
    scheme, host = scheme.lower(), (host or "").lower()
    return scheme in LOGIN_SCHEMES or (scheme in ("abfs", "abfss", "az") and host.endswith(
        (".dfs.core.windows.net", ".blob.core.windows.net")))
_SECRET_PARAM_RE = re.compile(
    r"(?i)\b(x-amz-(?:signature|credential|security-token)|signature|sig|token|access_?key(?:_id)?|"
    r"secret(?:_access_key)?|password|sas_token|account_key)=([^&\s\"'<>]+)")


def redact_url(url: str) -> str:
    """`url` without what can hold a credential: the user info's password (`user:pw@` -> `user@`), a
    user name that is not a login (`https://TOKEN@host` -> `https://***@host`, see userinfo_is_name),
    the query string (`?sig=...`, `?X-Amz-Signature=...`) and the fragment (`#token=...`)."""
    def one(m: re.Match) -> str:
        userinfo = m.group(2) or ""
        if userinfo:
            user = userinfo[:-1].split(":", 1)[0]
            host = m.group(3).split("/", 1)[0].rsplit(":", 1)[0]
            userinfo = f"{user}@" if user and userinfo_is_name(m.group(1)[:-3], host) else "***@"
        return m.group(1) + userinfo + m.group(3)
    return _URL_RE.sub(one, url)


def _redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    text = redact_url(text)
    text = _SECRET_PARAM_RE.sub(lambda m: m.group(1) + "=***", text)
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return text


def _reason(exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """One short line from an obstore/fsspec/HTTP error: the HTTP status and the server's <Code> and
    <Message> when there are some, else the first line; credentials removed."""
    text = str(exc)
    status = re.search(r"status code: (\d{3}[^:<\n]*)", text)
    code = re.search(r"<Code>([^<]*)</Code>", text)
    msg = re.search(r"<Message>([^<]*)</Message>", text)
    if status or code:
        parts = [p for p in ((status.group(1).strip() if status else ""), (code.group(1) if code else ""),
                             # Azure's <Message> goes on with RequestId/Time lines: its first line
                             (msg.group(1).strip().split("\n", 1)[0].strip() if msg else "")) if p]
        line = ": ".join(parts)
    else:
        line = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(exc).__name__)
        line = re.sub(r"^(Generic \w+ error: )", "", line)
    if len(line) > 300:
        line = line[:297] + "..."
    if "PermanentRedirect" in text or "AuthorizationHeaderMalformed" in text:
        line += " (the bucket is in another region: set AWS_REGION)"
    return _redact(line, secrets)


def _wrong_token(etag: str) -> str:
    """An if_match token of the same kind as `etag` that matches no object (for the probe)."""
    if _GENERATION in (etag or ""):
        e, gen = etag.split(_GENERATION, 1)
        return f"{e}{_GENERATION}{int(gen) + 7919 if gen.isdigit() else 1}"
    return '"00000000000000000000000000000000"'


# ---------------------------------------------------------------------------------------------------
# the interface


class ObjectStore:
    """A remote's objects. `url` is the remote's address without credentials.

    Keys are "/"-separated, relative to `url`. Methods raise RemoteMissing (absent), RemoteExists
    (create-only write lost), RemoteConflict (If-Match failed), RemoteError (anything else the remote
    or the network refused), all with one readable line."""

    url: str
    _secrets: tuple[str, ...] = ()

    # -- to implement
    def get(self, key: str) -> bytes:
        """The object's bytes. RemoteMissing if absent."""
        raise NotImplementedError

    def head(self, key: str) -> ObjectMeta | None:
        """The object's metadata, or None if absent."""
        raise NotImplementedError

    def put(self, key: str, data: bytes, *, mode: str = "create", if_match: str | None = None) -> str:
        """Write `data` at `key` in one request and return the new ETag ("" where none).

        mode="create": RemoteExists if the key exists (atomic where conditional_writes() is True).
        mode="overwrite": replace. `if_match` (implies overwrite): replace only if the current ETag is
        `if_match`, else RemoteConflict (RemoteMissing if the key is gone)."""
        raise NotImplementedError

    def put_file(self, key: str, path: str | os.PathLike, *, mode: str = "create",
                 progress: Progress | None = None) -> str:
        """Upload the local file `path` (any size: ≥ MULTIPART_THRESHOLD bytes go up in PART_SIZE parts,
        TRANSFER_CONCURRENCY at a time) and return its ETag. mode as in put(); progress(done, total) in
        bytes after each part."""
        raise NotImplementedError

    def get_file(self, key: str, path: str | os.PathLike, *, progress: Progress | None = None) -> None:
        """Download `key` into the local file `path` (written to a temporary file beside it, renamed at
        the end). RemoteMissing if absent; progress(done, total) in bytes."""
        raise NotImplementedError

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        """Delete `key`; deleting an absent key is not an error unless `if_match` is given
        (RemoteMissing). With `if_match`: delete only if the ETag still is that, else RemoteConflict."""
        raise NotImplementedError

    def _list_raw(self, prefix: str) -> Iterator[ObjectMeta]:
        raise NotImplementedError

    def delete_many(self, keys: list[str]) -> None:
        """Delete `keys` (absent ones are not an error); S3 sends them 1,000 per request."""
        for key in keys:
            self.delete(key)

    def multipart_uploads(self) -> list[MultipartUpload]:
        """Unfinished multipart uploads under this remote (S3 only; others have none)."""
        return []

    def abort_multipart(self, upload: MultipartUpload) -> None:
        """Abort an unfinished multipart upload (its parts are freed)."""

    # -- shared
    def list(self, prefix: str = "") -> Iterator[ObjectMeta]:
        """Every object whose key starts with `prefix` (a plain string prefix: "chunks/ab" matches
        "chunks/abc"), in no guaranteed order. The local remotes' .mv-lock and keys under .mv-probe/
        are internal and never listed. Listing is cheapest with a prefix ending in "/"."""
        if "/" in prefix and not prefix.endswith("/"):
            base = prefix.rsplit("/", 1)[0] + "/"
        elif prefix.endswith("/"):
            base = prefix
        else:
            base = ""
        for meta in self._list_raw(base):
            if not meta.key.startswith(prefix):
                continue
            if meta.key == LOCK_KEY or meta.key.startswith(PROBE_PREFIX):
                continue
            yield meta

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    def conditional_writes(self) -> bool:
        """True if the remote honours create-only writes and If-Match (probed once per process and
        remote: a create-only write twice on a probe key, then an If-Match with a wrong ETag; the probe
        key is deleted afterwards). RemoteError if the remote cannot be written at all."""
        with _probe_lock:
            if self.url in _probe_cache:
                return _probe_cache[self.url]
        result = self._probe()
        with _probe_lock:
            _probe_cache[self.url] = result
        return result

    def _probe(self) -> bool:
        key = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
        honoured = True
        try:
            etag = self.put(key, b"1", mode="create")
            try:
                self.put(key, b"2", mode="create")
                honoured = False
            except RemoteExists:
                pass
            if honoured:
                try:
                    self.put(key, b"3", mode="overwrite", if_match=_wrong_token(etag))
                    honoured = False
                except (RemoteConflict, RemoteMissing):
                    pass
                except _Unsupported:
                    honoured = False
            if honoured and etag:
                current = self.head(key)
                try:
                    self.put(key, b"4", mode="overwrite", if_match=current.etag if current else etag)
                except (RemoteConflict, RemoteMissing):
                    honoured = False  # a right ETag refused: If-Match cannot be used either
        finally:
            with contextlib.suppress(RemoteError):
                self.delete(key)
        return honoured

    def close(self) -> None:
        """Release connections (nothing to do for most backends)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"

    def _err(self, op: str, key: str, exc: BaseException) -> RemoteError:
        where = f"{self.url.rstrip('/')}/{key}" if key else self.url
        return RemoteError(f"{op} {where} failed: {_reason(exc, self._secrets)}")


# ---------------------------------------------------------------------------------------------------
# obstore backends


_GENERATION = ";generation="


def _token(m: dict, generations: bool) -> str | None:
    """The ETag callers see and hand back to if_match. GCS conditions updates on the object's
    generation, not its ETag (obstore's UpdateVersion.version), so there it carries both."""
    etag = m.get("e_tag")
    if generations and m.get("version"):
        return f"{etag or ''}{_GENERATION}{m['version']}"
    return etag


def _meta_from(m: dict, generations: bool = False) -> ObjectMeta:
    mod = m.get("last_modified")
    if mod is not None and mod.tzinfo is None:
        mod = mod.replace(tzinfo=_dt.timezone.utc)
    return ObjectMeta(key=m["path"], size=int(m.get("size") or 0), etag=_token(m, generations), modified=mod)


class _ObstoreRemote(ObjectStore):
    def __init__(self, url: str, store, secrets: tuple[str, ...] = (), generations: bool = False):
        import obstore  # noqa: F401  (import errors surface here, not at module import)
        _state["used"] = True
        self.url = redact_url(url)
        self._store = store
        self._secrets = tuple(s for s in secrets if s)
        self._generations = generations  # GCS: if_match tokens carry the generation

    # obstore errors -> ours
    def _map(self, op: str, key: str, exc: BaseException) -> RemoteError:
        from obstore import exceptions as ox
        where = f"{self.url.rstrip('/')}/{key}"
        if "NoSuchBucket" in str(exc):
            return RemoteError(f"{self.url}: the bucket does not exist (create it, or check the URL and "
                               "the endpoint)")
        if "ContainerNotFound" in str(exc):  # Azure's 404 for the container (else: "key does not exist")
            return RemoteError(f"{self.url}: the container does not exist (create it, or check the URL and "
                               "the account)")
        if isinstance(exc, (ox.NotFoundError, FileNotFoundError)):
            return RemoteMissing(f"{where} does not exist on the remote")
        if isinstance(exc, ox.AlreadyExistsError):
            return RemoteExists(f"{where} already exists on the remote")
        if isinstance(exc, (ox.PreconditionError, ox.NotModifiedError)):
            return RemoteConflict(f"{where} was changed by someone else (its ETag no longer matches)")
        if isinstance(exc, (ox.NotSupportedError, NotImplementedError)):
            return _Unsupported(f"{op} {where}: not supported by this kind of remote")
        if isinstance(exc, (ox.PermissionDeniedError, ox.UnauthenticatedError)):
            return RemoteError(f"{op} {where} refused: {_reason(exc, self._secrets)} "
                               "(check the remote's credentials)")
        return self._err(op, key, exc)

    def get(self, key: str) -> bytes:
        import obstore as obs
        try:
            return bytes(obs.get(self._store, key).bytes())
        except Exception as exc:
            raise self._map("GET", key, exc) from None

    def head(self, key: str) -> ObjectMeta | None:
        import obstore as obs
        try:
            return _meta_from(obs.head(self._store, key), self._generations)
        except Exception as exc:
            err = self._map("HEAD", key, exc)
            if isinstance(err, RemoteMissing):
                return None
            raise err from None

    def _put_mode(self, mode: str, if_match: str | None):
        if if_match is not None:
            if _GENERATION in if_match:
                etag, gen = if_match.split(_GENERATION, 1)
                return {"e_tag": etag or None, "version": gen}
            return {"e_tag": if_match}
        if mode not in ("create", "overwrite"):
            raise ValueError(f"mode must be 'create' or 'overwrite', not {mode!r}")
        return mode

    def put(self, key: str, data: bytes, *, mode: str = "create", if_match: str | None = None) -> str:
        import obstore as obs
        pmode = self._put_mode(mode, if_match)
        try:
            r = obs.put(self._store, key, data, mode=pmode, use_multipart=False)
        except Exception as exc:
            raise self._map("PUT", key, exc) from None
        return _token(r, self._generations) or ""

    def put_file(self, key: str, path, *, mode: str = "create", progress: Progress | None = None) -> str:
        import obstore as obs
        path = Path(path)
        pmode = self._put_mode(mode, None)
        size = path.stat().st_size
        try:
            if pmode == "overwrite" and size >= MULTIPART_THRESHOLD:
                r = obs.put(self._store, key, path, mode="overwrite", use_multipart=True,
                            chunk_size=PART_SIZE, max_concurrency=TRANSFER_CONCURRENCY)
            else:
                # obstore sends a conditional write as one request
                r = obs.put(self._store, key, path, mode=pmode, use_multipart=False)
        except Exception as exc:
            raise self._map("PUT", key, exc) from None
        if progress:
            progress(size, size)
        return _token(r, self._generations) or ""

    def get_file(self, key: str, path, *, progress: Progress | None = None) -> None:
        import obstore as obs
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".mv-download-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                try:
                    res = obs.get(self._store, key)
                    total = int(res.meta.get("size") or 0)
                    done = 0
                    for chunk in res.stream(min_chunk_size=PART_SIZE // 2):
                        fh.write(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, total)
                except Exception as exc:
                    raise self._map("GET", key, exc) from None
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        import obstore as obs
        if if_match is not None:
            raise _Unsupported(f"{self.url}: conditional delete is not supported by this kind of remote")
        try:
            obs.delete(self._store, key)
        except Exception as exc:
            err = self._map("DELETE", key, exc)
            if not isinstance(err, RemoteMissing):
                raise err from None

    def delete_many(self, keys: list[str]) -> None:
        import obstore as obs
        if not keys:
            return
        try:
            obs.delete(self._store, list(keys))  # S3: DeleteObjects; Azure: batches; others: one by one
        except Exception:
            super().delete_many(keys)  # a local store fails the batch on one absent key: key by key

    def _list_raw(self, prefix: str) -> Iterator[ObjectMeta]:
        import obstore as obs
        try:
            for batch in obs.list(self._store, prefix or None, chunk_size=1000):
                for m in batch:
                    yield _meta_from(m, self._generations)
        except Exception as exc:
            err = self._map("LIST", prefix, exc)
            if isinstance(err, RemoteMissing):  # a local remote whose directory does not exist yet
                return
            raise err from None


class _LocalRemote(_ObstoreRemote):
    """file:// remotes. obstore's LocalStore has create-only writes (an atomic no-clobber link) but not
    If-Match; compare-and-swap takes an exclusive flock on the remote's lock file (.mv-lock)."""

    def __init__(self, url: str, root: Path):
        from obstore.store import LocalStore
        try:
            # the remote's own folder only, never its parents: `file:///mnt/usb/team` with the drive not
            # mounted, or a typo in the path, must not become a new tree on the local disk that pushes
            # fill and pulls read as empty (`git init --bare` does not create missing parents either)
            root.mkdir(exist_ok=True)
        except FileNotFoundError:
            raise RemoteError(f"{url}: the folder {root.parent} does not exist (a typo in the URL, or a drive "
                              "that is not mounted?): fix the URL, or create that folder first") from None
        except OSError as e:  # a file where the folder should be, a read-only disk: one line
            what = "is a file, not a folder" if root.is_file() else (e.strerror or str(e))
            raise RemoteError(f"{url}: cannot use {e.filename or root} as a remote folder: {what}") from None
        super().__init__(url, LocalStore(str(root)))
        self.root = root

    @contextlib.contextmanager
    def _locked(self, key: str):
        # one lock for the whole remote: If-Match writes (tag moves, lease refreshes) are rare and
        # quick, and one file is all it leaves behind (a file per key would pile up: leases' are unique)
        import fcntl
        with open(self.root / LOCK_KEY, "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _check(self, key: str, if_match: str) -> None:
        cur = self.head(key)
        where = f"{self.url.rstrip('/')}/{key}"
        if cur is None:
            raise RemoteMissing(f"{where} does not exist on the remote")
        if cur.etag != if_match:
            raise RemoteConflict(f"{where} was changed by someone else (its ETag no longer matches)")

    def put(self, key: str, data: bytes, *, mode: str = "create", if_match: str | None = None) -> str:
        if if_match is None:
            # a plain overwrite takes no lock (a lock file per key would pile up: leases have unique
            # keys); it is atomic itself (a rename), and keys moved with If-Match are only ever
            # written with If-Match or create
            return super().put(key, data, mode=mode)
        with self._locked(key):
            self._check(key, if_match)
            return super().put(key, data, mode="overwrite")

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        if if_match is None:
            return super().delete(key)
        with self._locked(key):
            self._check(key, if_match)
            super().delete(key)


class _S3Remote(_ObstoreRemote):
    """s3:// remotes: obstore for ordinary requests; for multipart uploads completed with
    If-None-Match, conditional deletes and listing/aborting uploads, requests of our own signed by
    botocore (S3SigV4Auth) and sent with http.client. Credentials come from a botocore session (the
    standard AWS chain) through obstore's Boto3CredentialProvider, so temporary ones are refreshed."""

    def __init__(self, url: str, bucket: str, prefix: str, cfg: _S3Config):
        from obstore.auth.boto3 import Boto3CredentialProvider
        from obstore.store import S3Store
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._cfg = cfg
        # obstore keeps what the provider returns for `ttl`; botocore refreshes temporary credentials
        # 10-15 minutes before they expire, so 5 minutes never hands obstore expired ones
        provider = Boto3CredentialProvider(cfg.session, ttl=_dt.timedelta(minutes=5))
        config = {"region": cfg.region, "endpoint": cfg.endpoint, "virtual_hosted_style_request": False}
        store = S3Store(bucket, prefix=self.prefix or None, config=config, credential_provider=provider,
                        client_options={"allow_http": cfg.endpoint.startswith("http://")})
        super().__init__(url, store)
        self._local = threading.local()
        self._frozen()  # the secrets to mask in messages, from the start

    # -- signed raw requests
    def _frozen(self):
        """The session's current credentials (botocore refreshes temporary ones); their secret parts
        join the strings masked in messages. RemoteError if a refresh fails (an expired SSO login...)."""
        from botocore.exceptions import BotoCoreError
        try:
            creds = self._cfg.session.get_credentials().get_frozen_credentials()
        except BotoCoreError as e:
            raise RemoteError(f"{self.url}: no AWS credentials: {_redact(str(e), self._secrets)[:300]}") from None
        new = tuple(s for s in (creds.secret_key, creds.token) if s and s not in self._secrets)
        if new:
            self._secrets = self._secrets + new
        return creds

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            u = urllib.parse.urlsplit(self._cfg.endpoint)
            cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
            conn = cls(u.hostname, u.port, timeout=120)
            self._local.conn = conn
        return conn

    def _request(self, method: str, key: str | None, query: dict[str, str], *, body: bytes = b"",
                 headers: dict[str, str] | None = None, bucket_level: bool = False
                 ) -> tuple[int, dict[str, str], bytes]:
        """One path-style request signed by botocore's S3SigV4Auth (payload hashed, so signed too).
        Returns (status, headers lowercased, body). Retries once on a dropped keep-alive connection."""
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        full = f"{self.prefix}/{key}" if self.prefix else (key or "")
        path = urllib.parse.urlsplit(self._cfg.endpoint).path.rstrip("/") + f"/{self.bucket}"
        if full and not bucket_level:
            path += f"/{full}"
        target = urllib.parse.quote(path, safe="/~")
        if query:
            target += "?" + urllib.parse.urlencode(sorted(query.items()), quote_via=urllib.parse.quote,
                                                   safe="-_.~")
        origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(self._cfg.endpoint))
        req = AWSRequest(method, origin + target, data=body, headers=headers or {})
        S3SigV4Auth(self._frozen(), "s3", self._cfg.region).add_auth(req)
        send_headers = dict(req.headers.items())
        send_headers["Content-Length"] = str(len(body))
        for attempt in (0, 1):
            conn = self._conn()
            try:
                conn.request(method, target, body=body, headers=send_headers)
                resp = conn.getresponse()
                data = resp.read()
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
            except (http.client.HTTPException, ConnectionError, OSError) as exc:
                conn.close()
                self._local.conn = None
                if attempt:
                    raise RemoteError(f"{method} {self.url}/{key or ''} failed: "
                                      f"{_redact(str(exc), self._secrets)}") from None
        raise AssertionError("unreachable")

    def _raise_for(self, op: str, key: str, status: int, body: bytes) -> None:
        where = f"{self.url.rstrip('/')}/{key}"
        text = body.decode("utf-8", "replace")
        code = re.search(r"<Code>([^<]*)</Code>", text)
        code_s = code.group(1) if code else ""
        if code_s == "NoSuchBucket":
            raise RemoteError(f"{self.url}: the bucket does not exist (create it, or check the URL and "
                              "the endpoint)")
        if status == 404 and code_s in ("NoSuchKey", "NoSuchUpload", ""):
            raise RemoteMissing(f"{where} does not exist on the remote")
        if status == 412:
            raise RemoteConflict(f"{where} was changed by someone else (its ETag no longer matches)")
        msg = re.search(r"<Message>([^<]*)</Message>", text)
        detail = ": ".join(p for p in (code_s, msg.group(1) if msg else "") if p)
        raise RemoteError(_redact(f"{op} {where} failed: HTTP {status}" + (f" {detail}" if detail else ""),
                                  self._secrets))

    # -- overrides
    def delete(self, key: str, *, if_match: str | None = None) -> None:
        if if_match is None:
            return super().delete(key)
        status, _, body = self._request("DELETE", key, {}, headers={"If-Match": if_match})
        if status in (200, 204):
            return
        self._raise_for("DELETE", key, status, body)

    def put_file(self, key: str, path, *, mode: str = "create", progress: Progress | None = None) -> str:
        path = Path(path)
        size = path.stat().st_size
        if size < MULTIPART_THRESHOLD or mode == "overwrite":
            return super().put_file(key, path, mode=mode, progress=progress)
        if mode != "create":
            raise ValueError(f"mode must be 'create' or 'overwrite', not {mode!r}")
        return self._multipart_create(key, path, size, progress)

    def _multipart_create(self, key: str, path: Path, size: int, progress: Progress | None) -> str:
        status, _, body = self._request("POST", key, {"uploads": ""})
        if status != 200:
            self._raise_for("CreateMultipartUpload", key, status, body)
        upload_id = _xml_text(body, "UploadId")
        upload = MultipartUpload(key, upload_id, _dt.datetime.now(_dt.timezone.utc))
        nparts = max(1, -(-size // PART_SIZE))
        done = [0]
        lock = threading.Lock()

        def send(n: int) -> tuple[int, str]:
            with open(path, "rb") as fh:
                fh.seek((n - 1) * PART_SIZE)
                data = fh.read(PART_SIZE)
            st, hd, bd = self._request("PUT", key, {"partNumber": str(n), "uploadId": upload_id}, body=data)
            if st != 200:
                self._raise_for("UploadPart", key, st, bd)
            with lock:
                done[0] += len(data)
                if progress:
                    progress(done[0], size)
            return n, hd.get("etag", "")

        try:
            with ThreadPoolExecutor(TRANSFER_CONCURRENCY) as pool:
                parts = sorted(pool.map(send, range(1, nparts + 1)))
            xml = "<CompleteMultipartUpload>" + "".join(
                f"<Part><PartNumber>{n}</PartNumber><ETag>{et}</ETag></Part>" for n, et in parts
            ) + "</CompleteMultipartUpload>"
            st, hd, bd = self._request("POST", key, {"uploadId": upload_id}, body=xml.encode(),
                                       headers={"If-None-Match": "*"})
            # S3 may answer 200 with an <Error> body for CompleteMultipartUpload
            if st == 412 or (st == 200 and b"<Error>" in bd and b"PreconditionFailed" in bd):
                raise RemoteExists(f"{self.url.rstrip('/')}/{key} already exists on the remote")
            if st != 200 or b"<Error>" in bd:
                self._raise_for("CompleteMultipartUpload", key, st if st != 200 else 500, bd)
            return _xml_text(bd, "ETag") or hd.get("etag", "")
        except BaseException:
            # after a lost race (412) or any failure the upload stays open on S3/SeaweedFS/moto
            with contextlib.suppress(Exception):
                self.abort_multipart(upload)
            raise

    def multipart_uploads(self) -> list[MultipartUpload]:
        out: list[MultipartUpload] = []
        query = {"uploads": ""}
        if self.prefix:
            query["prefix"] = self.prefix + "/"
        while True:
            st, _, bd = self._request("GET", None, query, bucket_level=True)
            if st != 200:
                self._raise_for("ListMultipartUploads", "", st, bd)
            root = ET.fromstring(bd)
            for up in root.iter():
                if _local(up.tag) != "Upload":
                    continue
                fields = {_local(c.tag): (c.text or "") for c in up}
                k = fields.get("Key", "")
                if self.prefix:
                    if not k.startswith(self.prefix + "/"):
                        continue
                    k = k[len(self.prefix) + 1:]
                out.append(MultipartUpload(k, fields.get("UploadId", ""), _parse_time(fields.get("Initiated"))))
            truncated = _xml_text(bd, "IsTruncated") == "true"
            if not truncated:
                return out
            query = dict(query, **{"key-marker": _xml_text(bd, "NextKeyMarker"),
                                   "upload-id-marker": _xml_text(bd, "NextUploadIdMarker")})

    def abort_multipart(self, upload: MultipartUpload) -> None:
        st, _, bd = self._request("DELETE", upload.key, {"uploadId": upload.upload_id})
        if st not in (200, 204, 404):
            self._raise_for("AbortMultipartUpload", upload.key, st, bd)

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xml_text(body: bytes, name: str) -> str:
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        return ""
    for el in root.iter():
        if _local(el.tag) == name:
            return el.text or ""
    return ""


def _parse_time(s: str | None) -> _dt.datetime:
    if not s:
        return _dt.datetime.now(_dt.timezone.utc)
    s = s.strip().replace("Z", "+00:00")
    try:
        t = _dt.datetime.fromisoformat(s)
    except ValueError:
        return _dt.datetime.now(_dt.timezone.utc)
    return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)


# ---------------------------------------------------------------------------------------------------
# S3 configuration: botocore's session (the AWS CLI's variables and files, SSO, credential_process...)


@dataclass(frozen=True)
class _S3Config:
    session: object  # botocore.session.Session: credentials (refreshed by botocore)
    region: str
    endpoint: str  # http(s)://host[:port][/path], no trailing "/"


def _s3_config(options: dict) -> _S3Config:
    """Endpoint, region and credentials for an s3:// remote, as the AWS CLI finds them (botocore's
    session does the finding): explicit options (endpoint=, region=, profile=, access_key_id=,
    secret_access_key=, session_token=), else AWS_ENDPOINT_URL(_S3), AWS_REGION, and botocore's chain:
    AWS_* variables, the profile (AWS_PROFILE or "default") in ~/.aws/config and ~/.aws/credentials
    (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE) with its endpoint_url, SSO, roles,
    credential_process, instance metadata. An explicit profile beats the variables' keys, as in
    botocore. RemoteError (one line, no secret) when nothing usable is found."""
    import botocore.session
    from botocore.configprovider import ConfiguredEndpointProvider
    from botocore.exceptions import BotoCoreError, ProfileNotFound

    env = os.environ
    explicit_profile = options.get("profile")
    half = [k for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if not env.get(k)]
    if len(half) == 1 and not explicit_profile and not options.get("access_key_id"):
        # botocore would raise PartialCredentialsError for one case and ignore the other: say it plainly
        raise RemoteError(f"no AWS credentials for the S3 remote: {half[0]} is not set (or empty) while "
                          f"{({'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY'} - set(half)).pop()} is; set both, "
                          "or neither to use a profile in ~/.aws/credentials")
    session = botocore.session.Session(profile=explicit_profile)
    try:  # a broken ~/.aws file, an unknown profile, a failing credential_process: one line, no values
        region = options.get("region") or env.get("AWS_REGION") or session.get_config_variable("region") \
            or "us-east-1"
        endpoint = options.get("endpoint") or options.get("endpoint_url") or ConfiguredEndpointProvider(
            full_config=session.full_config, scoped_config=session.get_scoped_config(),
            client_name="s3").provide()
        if options.get("access_key_id"):
            session.set_credentials(options["access_key_id"], options.get("secret_access_key", ""),
                                    options.get("session_token") or None)
        creds = session.get_credentials()
    except ProfileNotFound:
        if explicit_profile:
            raise RemoteError(f"AWS profile {explicit_profile!r} is not in ~/.aws/config or "
                              "~/.aws/credentials") from None
        raise RemoteError(f"no AWS credentials for the S3 remote: profile {session.profile!r} (AWS_PROFILE) "
                          "is not in ~/.aws/config or ~/.aws/credentials") from None
    except BotoCoreError as e:
        raise RemoteError(f"no AWS credentials for the S3 remote: {_redact(str(e))[:300]}") from None
    if creds is None:
        raise RemoteError("no AWS credentials for the S3 remote: set AWS_ACCESS_KEY_ID and "
                          "AWS_SECRET_ACCESS_KEY, or a profile in ~/.aws/credentials")
    endpoint = endpoint or f"https://s3.{region}.amazonaws.com"
    if not endpoint.startswith(("http://", "https://")):
        raise RemoteError(f"S3 endpoint {redact_url(endpoint)!r} must start with http:// or https://")
    return _S3Config(session, region, endpoint.rstrip("/"))


# ---------------------------------------------------------------------------------------------------
# fsspec fallback


class _FsspecRemote(ObjectStore):
    """Any other fsspec URL (sftp://, webdav, ...). Writes go to a temporary name and are renamed into
    place; create-only checks for the key first, so it is NOT atomic: conditional_writes() is False
    and callers refuse tag moves on such remotes."""

    def __init__(self, url: str, **options):
        try:
            import fsspec
            from fsspec.core import url_to_fs
        except ImportError:  # pragma: no cover - fsspec is a dependency
            raise RemoteError(f"{redact_url(url)}: this scheme needs fsspec (pip install fsspec)") from None
        self.url = redact_url(url)
        secrets = [v for k, v in options.items() if isinstance(v, str) and re.search(
            r"(?i)pass|secret|token|key", k)]
        pw = urllib.parse.urlsplit(url).password
        if pw:
            secrets.append(pw)
        self._secrets = tuple(secrets)
        try:
            self.fs, root = url_to_fs(url, **options)
        except (ImportError, ValueError) as exc:
            raise RemoteError(f"{self.url}: cannot open this remote: {_reason(exc, self._secrets)}") from None
        except Exception as exc:
            raise RemoteError(f"{self.url}: cannot connect: {_reason(exc, self._secrets)}") from None
        del fsspec
        self.root = root.rstrip("/")

    def _p(self, key: str) -> str:
        return f"{self.root}/{key}" if key else self.root

    def _meta(self, key: str, info: dict) -> ObjectMeta:
        mod = info.get("mtime") or info.get("LastModified") or info.get("last_modified") or info.get("created")
        if isinstance(mod, (int, float)):
            mod = _dt.datetime.fromtimestamp(mod, _dt.timezone.utc)
        elif isinstance(mod, str):
            mod = _parse_time(mod)
        elif isinstance(mod, _dt.datetime):
            mod = mod if mod.tzinfo else mod.replace(tzinfo=_dt.timezone.utc)
        else:
            mod = _dt.datetime.now(_dt.timezone.utc)
        size = int(info.get("size") or 0)
        etag = info.get("ETag") or info.get("etag") or f'"{size:x}-{int(mod.timestamp() * 1e6):x}"'
        return ObjectMeta(key, size, etag, mod)

    def get(self, key: str) -> bytes:
        try:
            return self.fs.cat_file(self._p(key))
        except FileNotFoundError:
            raise RemoteMissing(f"{self.url}/{key} does not exist on the remote") from None
        except Exception as exc:
            raise self._err("GET", key, exc) from None

    def head(self, key: str) -> ObjectMeta | None:
        try:
            info = self.fs.info(self._p(key))
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self._err("HEAD", key, exc) from None
        if info.get("type") == "directory":
            return None
        return self._meta(key, info)

    def _write(self, key: str, writer) -> str:
        target = self._p(key)
        tmp = f"{target}.mv-tmp-{uuid.uuid4().hex[:12]}"
        try:
            parent = target.rsplit("/", 1)[0]
            with contextlib.suppress(Exception):
                self.fs.makedirs(parent, exist_ok=True)
            writer(tmp)
            self.fs.mv(tmp, target)
        except Exception as exc:
            with contextlib.suppress(Exception):
                self.fs.rm_file(tmp)
            raise self._err("PUT", key, exc) from None
        meta = self.head(key)
        return (meta.etag or "") if meta else ""

    def _precheck(self, key: str, mode: str, if_match: str | None) -> None:
        cur = self.head(key)
        if if_match is not None:
            if cur is None:
                raise RemoteMissing(f"{self.url}/{key} does not exist on the remote")
            if cur.etag != if_match:
                raise RemoteConflict(f"{self.url}/{key} was changed by someone else (its ETag no longer matches)")
        elif mode == "create" and cur is not None:
            raise RemoteExists(f"{self.url}/{key} already exists on the remote")
        elif mode not in ("create", "overwrite"):
            raise ValueError(f"mode must be 'create' or 'overwrite', not {mode!r}")

    def put(self, key: str, data: bytes, *, mode: str = "create", if_match: str | None = None) -> str:
        self._precheck(key, mode, if_match)
        return self._write(key, lambda tmp: self.fs.pipe_file(tmp, bytes(data)))

    def put_file(self, key: str, path, *, mode: str = "create", progress: Progress | None = None) -> str:
        self._precheck(key, mode, None)
        size = Path(path).stat().st_size
        etag = self._write(key, lambda tmp: self.fs.put_file(str(path), tmp))
        if progress:
            progress(size, size)
        return etag

    def get_file(self, key: str, path, *, progress: Progress | None = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".mv-download-{uuid.uuid4().hex[:12]}")
        try:
            self.fs.get_file(self._p(key), str(tmp))
            os.replace(tmp, path)
        except FileNotFoundError:
            raise RemoteMissing(f"{self.url}/{key} does not exist on the remote") from None
        except Exception as exc:
            raise self._err("GET", key, exc) from None
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        if progress:
            size = path.stat().st_size
            progress(size, size)

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        if if_match is not None:
            self._precheck(key, "overwrite", if_match)
        try:
            self.fs.rm_file(self._p(key))
        except FileNotFoundError:
            if if_match is not None:
                raise RemoteMissing(f"{self.url}/{key} does not exist on the remote") from None
        except Exception as exc:
            raise self._err("DELETE", key, exc) from None

    def _list_raw(self, prefix: str) -> Iterator[ObjectMeta]:
        base = self._p(prefix.rstrip("/")) if prefix else self.root
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return
        except Exception as exc:
            raise self._err("LIST", prefix, exc) from None
        if not found:  # fsspec's HTTP find() answers [] when the host refuses: "0 versions", "nothing new"
            self._reachable(base, prefix)
        root = self.fs._strip_protocol(self.root).rstrip("/")
        for p, info in sorted(found.items()):
            p = self.fs._strip_protocol(p)
            key = p[len(root) + 1:] if p.startswith(root + "/") else p
            if ".mv-tmp-" in key.rsplit("/", 1)[-1]:
                continue
            yield self._meta(key, info)

    def _reachable(self, path: str, key: str = "") -> None:
        """RemoteError when the remote cannot be reached at all (a missing folder is fine: a new remote)."""
        try:
            self.fs.ls(path, detail=False)
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise self._err("LIST", key, exc) from None

    def _probe(self) -> bool:
        self._reachable(self.root)  # `remote add` of a host that refuses must fail, not be recorded
        return False  # check-then-write is not atomic: two writers can both "create"


# ---------------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------------
# Azure Blob and GCS: obstore reads the standard variables (AZURE_*, GOOGLE_*) itself

# option and variable names whose values are secrets (masked in every message of the remote)
_SECRET_NAME_RE = re.compile(r"(?i)key|secret|token|sas|password|credential")
_AZURE_SCHEMES = ("az", "azure", "abfs", "abfss")


class _AzureRemote(_ObstoreRemote):
    """az:// remotes. Azure's List Blobs gives ETags unquoted (<Etag>0x8D...</Etag>) where Put Blob and
    Get Blob Properties give them quoted (the ETag header); listed ones are quoted here too, so an ETag
    recorded from a listing (a pulled tag) equals what a HEAD returns later (a tag move's If-Match).
    obstore has no conditional delete: delete(if_match=...) sends Delete Blob with If-Match itself, to a
    URL obstore signs (a SAS valid for minutes, from the account key or an Entra ID user delegation
    key); with credentials that cannot sign (a fixed SAS token) it raises _Unsupported and callers fall
    back to a plain delete (expired leases only)."""

    def _list_raw(self, prefix: str) -> Iterator[ObjectMeta]:
        for meta in super()._list_raw(prefix):
            if meta.etag and not meta.etag.startswith(('"', 'W/"')):
                meta = ObjectMeta(meta.key, meta.size, f'"{meta.etag}"', meta.modified)
            yield meta

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        if if_match is None:
            return super().delete(key)
        import obstore as obs
        where = f"{self.url.rstrip('/')}/{key}"
        try:
            signed = obs.sign(self._store, "DELETE", key, _dt.timedelta(minutes=10))
        except Exception:  # no key to sign with: the caller's plain-delete fallback
            raise _Unsupported(f"{where}: conditional delete needs an account key or Entra ID credentials "
                               "(a SAS token cannot sign)") from None
        u = urllib.parse.urlsplit(signed)
        cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        conn = cls(u.hostname, u.port, timeout=120)
        try:  # the signed URL (its sig=) never enters a message: only the status and Azure's code
            conn.request("DELETE", f"{u.path}?{u.query}", headers={"If-Match": if_match})
            resp = conn.getresponse()
            status, body = resp.status, resp.read().decode("utf-8", "replace")
        except OSError as exc:
            raise self._err("DELETE", key, exc) from None
        finally:
            conn.close()
        code = re.search(r"<Code>([^<]*)</Code>", body)
        if status in (200, 202):
            return
        if status == 412:  # also Azure's answer for an absent blob: tell the two apart
            if self.head(key) is None:
                raise RemoteMissing(f"{where} does not exist on the remote")
            raise RemoteConflict(f"{where} was changed by someone else (its ETag no longer matches)")
        if status == 404 and not (code and code.group(1) == "ContainerNotFound"):
            raise RemoteMissing(f"{where} does not exist on the remote")
        err = self._map("DELETE", key, RuntimeError(f"status code: {status}: {body}"))
        if status in (401, 403):
            err = RemoteError(f"{err} (check the remote's credentials)")
        raise err


def _open_cloud(url: str, scheme: str, shown: str, options: dict) -> ObjectStore:
    """gs:// and az:// remotes through obstore's from_url, which reads GOOGLE_* / AZURE_* itself
    (`options`, obstore's config keys, win). An http:// Azure endpoint (`endpoint=` or
    AZURE_STORAGE_ENDPOINT / AZURE_ENDPOINT: Azurite, Azure Stack) is allowed as given, as S3's is.
    The values of secret options and variables are masked in every message."""
    from obstore.store import from_url
    options = dict(options)
    client = dict(options.pop("client_options", None) or {})
    azure = scheme in _AZURE_SCHEMES
    env_prefix = "AZURE" if azure else "GOOGLE"
    secrets = [v for k, v in options.items() if isinstance(v, str) and _SECRET_NAME_RE.search(k)]
    secrets += [v for k, v in os.environ.items() if k.startswith(env_prefix) and _SECRET_NAME_RE.search(k)
                and not k.endswith(("_FILE", "_PATH", "_CREDENTIALS"))]
    if azure:
        endpoint = options.get("endpoint") or os.environ.get("AZURE_STORAGE_ENDPOINT") \
            or os.environ.get("AZURE_ENDPOINT") or ""
        if endpoint.startswith("http://"):
            client.setdefault("allow_http", True)  # else obstore fails every request with "builder error"
    try:
        store = from_url(url, client_options=client or None, **options)
    except Exception as exc:
        raise RemoteError(f"{shown}: cannot open this remote: {_reason(exc, tuple(secrets))}") from None
    if azure:
        return _AzureRemote(shown, store, tuple(secrets))
    return _ObstoreRemote(shown, store, tuple(secrets), generations=True)


def open_remote(url: str, **options) -> ObjectStore:
    """An ObjectStore for `url`.

    s3://BUCKET[/PREFIX]: endpoint, region and credentials from `options` (endpoint=, region=,
    profile=, access_key_id=, secret_access_key=, session_token=), else AWS_ENDPOINT_URL(_S3),
    AWS_REGION/AWS_DEFAULT_REGION, and botocore's credential chain (AWS_ACCESS_KEY_ID/
    AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN, AWS_PROFILE and ~/.aws/{config,credentials}, SSO,
    credential_process, ...). An http:// endpoint is used as given (local servers).
    gs://BUCKET[/PREFIX], az://CONTAINER[/PREFIX]: obstore reads GOOGLE_* / AZURE_* variables
    (AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_ENDPOINT, ...); `options`
    (obstore's config keys: account_name=, account_key=, endpoint=, ...) are passed to it; an http://
    Azure endpoint (Azurite) is allowed as given. file:///PATH (or a plain absolute path): a
    directory. Any other scheme: fsspec (its own options). Raises RemoteError (one line, no credentials) if the URL or the
    configuration is unusable; it does not contact the remote."""
    if not isinstance(url, str) or not url.strip():
        raise RemoteError("a remote URL is needed (s3://bucket/prefix, gs://, az://, file:///path, ...)")
    if _state["forked_after_use"]:
        raise RemoteError("this process was forked after using a remote, which obstore does not survive: "
                          "start worker processes with multiprocessing's 'spawn' method")
    url = url.strip()
    if url.startswith("/"):
        url = "file://" + url
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    shown = redact_url(url)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise RemoteError(f"{shown}: a file:// remote must be a local absolute path (file:///path)")
        root = Path(urllib.parse.unquote(parts.path)).expanduser()
        if not root.is_absolute():
            raise RemoteError(f"{shown}: a file:// remote must be an absolute path")
        return _LocalRemote(f"file://{root}", root)
    if scheme in ("s3", "s3a"):
        bucket = parts.netloc
        if not bucket or "@" in bucket:
            raise RemoteError(f"{shown}: an S3 remote is s3://BUCKET/PREFIX (credentials go in AWS_* "
                              "variables or ~/.aws, never in the URL)")
        return _S3Remote(f"s3://{bucket}{parts.path.rstrip('/')}", bucket, parts.path, _s3_config(options))
    if scheme in ("gs", "gcs", "az", "azure", "abfs", "abfss"):
        return _open_cloud(url, scheme, shown, options)
    if not scheme:
        raise RemoteError(f"{shown}: not a URL (s3://bucket/prefix, gs://, az://, file:///path, sftp://...)")
    return _FsspecRemote(url, **options)
