"""The remotes of a store: name -> URL in its `remotes` table (store migration 5), one of them the
default that push and pull use without --remote. Only URLs are kept, never credentials: a URL holding
a password or a secret-looking query is refused (credentials come from the standard AWS_* variables
and ~/.aws files, GOOGLE_APPLICATION_CREDENTIALS, AZURE_*; see remotes/objects.py)."""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from ..errors import RemoteError, UsageError
from ..store import Store, now

__all__ = ["Remote", "add", "remove", "remotes", "get", "safe_url", "normalize_url", "check_name", "check_readable", "not_a_store"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# scheme://USERINFO@ up to the last '@' before a '?' or '#' (USERINFO may hold '/')
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^?#]*@")
_SECRET_QUERY = re.compile(r"(?i)(sig|signature|token|key|secret|password|credential|sas)")


@dataclass(frozen=True)
class Remote:
    """One registered remote: `url` holds no credentials; `conditional`: whether it honoured
    create-only and If-Match writes when added (None: not probed)."""

    name: str
    url: str
    default: bool = False
    conditional: bool | None = None


def safe_url(url: str) -> str:
    """`url` as it may be shown, logged or stored: no user info password, no query string."""
    from .objects import redact_url

    return redact_url(str(url))


def check_name(name: str) -> str:
    name = str(name).strip()
    if not _NAME.fullmatch(name):
        raise UsageError(f"bad remote name {name!r}: use letters, digits, '.', '_' or '-' (at most 64, "
                         "starting with a letter or digit)")
    return name


def normalize_url(url: str) -> str:
    """The URL to record: a local path becomes a file:// URL (absolute); a URL with a password or a
    query is refused (one line, saying where credentials go)."""
    url = str(url).strip()
    if not url:
        raise UsageError("the remote URL is empty; give s3://BUCKET/PREFIX, gs://..., az://..., file:///PATH "
                         "or another fsspec URL")
    parts = urllib.parse.urlsplit(url)
    if not parts.scheme or len(parts.scheme) == 1:  # a path (a Windows drive letter reads as a scheme)
        return _local_uri(url)
    bucket_store = parts.scheme.lower() in ("s3", "gs", "gcs", "az", "abfs", "abfss", "file")
    # an AWS secret key may hold '/', which ends urlsplit's netloc early (s3://KEY:ab/cd@bucket reads
    # as host KEY, port "ab"): any user info before an '@' in the authority counts, whatever it holds
    port = parts.netloc.rpartition(":")[2] if ":" in parts.netloc else ""
    hidden_userinfo = ":" in parts.netloc and (bucket_store or not port.isdigit())
    # ADLS Gen2's own URL form names the container before the '@': abfs://CONTAINER@ACCOUNT.dfs.core.windows.net/
    # a user name is kept only where it is a login (sftp://me@host) or an Azure container
    # (abfs://CONTAINER@ACCOUNT...): a bucket store's is an access key id, an https one a token
    # (https://ghp_…@host, as git URLs carry them), so neither is stored nor shown
    from .objects import userinfo_is_name

    named = not hidden_userinfo and userinfo_is_name(parts.scheme, parts.hostname or "")
    if parts.password is not None or hidden_userinfo or (parts.username and not named):
        shown = safe_url(url) if not (bucket_store or hidden_userinfo) else (
            _USERINFO.sub(r"\1***@", url, count=1) if _USERINFO.match(url) else f"{parts.scheme}://***")
        raise UsageError(f"the remote URL {safe_url(shown)} holds a user name or password: credentials are "
                         "never stored; put them in AWS_* variables or ~/.aws (S3), "
                         "GOOGLE_APPLICATION_CREDENTIALS (gs://), AZURE_* (az://) or your SSH config")
    if parts.query or parts.fragment:
        what = "a secret" if _SECRET_QUERY.search(parts.query + "&" + parts.fragment) else "a query"
        raise UsageError(f"the remote URL {safe_url(url)} has {what} after '?' or '#': give the plain URL; "
                         "credentials and endpoints come from the environment (AWS_ENDPOINT_URL, AWS_* ...)")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise UsageError(f"file URLs name a local folder: file:///PATH (got {url})")
        return _local_uri(urllib.parse.unquote(parts.path))
    # one remote, one URL (versions it holds are recorded by URL): s3://b/p, s3://b/p/, S3://b/p and
    # s3://b/ vs s3://b are the same remote
    path = parts.path.rstrip("/")
    if not path and parts.path and not bucket_store:  # sftp://host/ (the root) is not sftp://host (home)
        path = "/"
    return f"{parts.scheme.lower()}://{parts.netloc}{path}"


def check_readable(url: str) -> None:
    """Before reading a remote (ls, pull, clone, gc): a file:// remote's folder must exist. Opening it
    creates a missing one, and an empty folder reads as a remote holding nothing, so a typo in the
    path or an unmounted drive would say "nothing new" / "0 versions" instead of failing. UsageError
    (one line) naming the folder."""
    if not str(url).startswith("file:"):
        return
    not_a_store(url)
    folder = Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path))
    if not folder.is_dir():
        raise UsageError(f"no remote at {url}: " + (f"{folder} is a file, not a folder" if folder.exists()
                                                     else f"the folder {folder} does not exist (a typo in the "
                                                     "URL, or a drive that is not mounted?)"))


def _local_uri(path: str) -> str:
    # one folder, one URL: `../r`, `r/`, `./r` and a symlink to it are the same remote (the record of
    # which versions a remote holds is keyed by its URL)
    return Path(path).expanduser().resolve().as_uri()


def _rows(st: Store) -> list[tuple]:
    return st._q("select name, url, is_default, conditional from remotes order by name")


def remotes(st: Store) -> list[Remote]:
    """The store's remotes, by name."""
    return [Remote(n, u, bool(d), None if c is None else bool(c)) for n, u, d, c in _rows(st)]


def get(st: Store, name: str | None = None) -> Remote:
    """The remote `name`, or the default one when None. UsageError saying what exists otherwise."""
    rs = remotes(st)
    if name is None:
        for r in rs:
            if r.default:
                return r
        if len(rs) == 1:
            return rs[0]
        if not rs:
            raise UsageError("this store has no remote yet: add one with `jupyter-mv remote add NAME URL` "
                             "(mv.remote_add(name, url))")
        raise UsageError(f"this store has {len(rs)} remotes and none is the default: choose one with --remote "
                         f"NAME ({', '.join(r.name for r in rs)}) or make one the default: "
                         "`jupyter-mv remote add NAME URL --default`")
    # a URL given where a name is expected is used as is (not recorded)
    for r in rs:
        if r.name == name:
            return r
    if "://" in str(name):
        url = normalize_url(name)
        _not_inside_store(st, url)
        not_a_store(url)
        return Remote("", url)
    raise UsageError(f"no remote {name!r} in this store (remotes: {', '.join(r.name for r in rs) or 'none'}; "
                     "add one with `jupyter-mv remote add NAME URL`)")


def add(st: Store, name: str, url: str, default: bool | None = None, probe: bool = True) -> Remote:
    """Record remote `name` at `url` (credentials refused, see normalize_url). It becomes the default
    when `default` is True, or when it is the store's first remote. With `probe`, the remote is
    opened and asked whether it honours conditional writes (remote tags need them): RemoteError when
    it cannot be reached. UsageError when the name is taken by another URL."""
    name = check_name(name)
    url = normalize_url(url)
    _not_inside_store(st, url)
    not_a_store(url)
    conditional = None
    if probe:
        from .objects import open_remote

        store = open_remote(url)
        try:
            conditional = bool(store.conditional_writes())
        except RemoteError as e:
            raise RemoteError(f"cannot add remote {name}: {e}") from None
        finally:
            store.close()
    with st.write():
        c = st.db.conn
        row = c.execute("select url from remotes where name = ?", (name,)).fetchone()
        if default is None and row is not None and _is_default(st, name):
            default = True  # adding a remote again keeps it the default
        if row and row[0] != url:
            raise UsageError(f"remote {name!r} is already {safe_url(row[0])}; remove it first "
                             f"(`jupyter-mv remote remove {name}`) or choose another name")
        first = c.execute("select count(*) from remotes").fetchone()[0] == 0
        make_default = bool(default) or first
        if make_default:
            c.execute("update remotes set is_default = 0")
        c.execute("insert or replace into remotes (name, url, is_default, conditional, added) values (?,?,?,?,?)",
                  (name, url, int(make_default), None if conditional is None else int(conditional), now()))
    return get(st, name)


def not_a_store(url: str) -> None:
    """A file:// remote must not be a store's folder (DIR/.jupyter_mv) nor a folder holding one (DIR):
    `jupyter-mv clone ../alice/.jupyter_mv` (as `git clone ../repo` works) read a store as an empty remote,
    "cloned" nothing and made it the default remote, so pushes mixed remote objects into alice's store
    or project folder. UsageError saying how a store is shared."""
    if not str(url).startswith("file:"):
        return
    folder = Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path))
    for db in (folder / "store.db", folder / ".jupyter_mv" / "store.db"):
        if db.is_file():
            what = "is a jupyter_mv store" if db.parent == folder else f"holds a jupyter_mv store ({db.parent})"
            raise UsageError(f"{url} {what}, not a remote: share the store by pushing it to a "
                             f"remote folder (`jupyter-mv --store {db.parent} remote add team /shared/team-remote`, "
                             "then `push --all`) and clone or pull that; a bundle (`jupyter-mv export`) also works")


def _not_inside_store(st: Store, url: str) -> None:
    """A file:// remote in the store's own folder (`remote add r .jupyter_mv`, or its blobs/) would have
    the local gc delete the remote's objects as unreferenced blobs, and the remote's files mixed with
    the store's: refused."""
    if not url.startswith("file:"):
        return
    folder = Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).resolve()
    root = Path(st.root).resolve()
    if folder == root or root in folder.parents:
        raise UsageError(f"remote {url} is inside this store's folder {root}: give a folder outside it "
                         f"(e.g. {root.parent.parent / 'team-remote'})")


def _is_default(st: Store, name: str) -> bool:
    r = st._q("select is_default from remotes where name = ?", (name,))
    return bool(r and r[0][0])


def set_default(st: Store, name: str) -> Remote:
    r = get(st, check_name(name))
    with st.write():
        st.db.conn.execute("update remotes set is_default = (name = ?)", (r.name,))
    return get(st, r.name)


def remove(st: Store, name: str) -> Remote:
    """Forget remote `name` (nothing on the remote is touched)."""
    r = get(st, check_name(name))
    with st.write():
        st.db.conn.execute("delete from remotes where name = ?", (r.name,))
    return r


def mark(st: Store, url: str, gids) -> None:
    """Record that the remote at `url` holds these versions (pushed or pulled)."""
    gids = list(gids)
    if not gids:
        return
    with st.write():
        st.db.conn.executemany("insert or replace into remote_versions (url, gid, at) values (?,?,?)",
                               [(url, g, now()) for g in gids])


def on_remote(st: Store, url: str) -> set[str]:
    """The gids this store knows the remote at `url` holds."""
    return {r[0] for r in st._q("select gid from remote_versions where url = ?", (url,))}


def saw_tag(st: Store, url: str, notebook: str, tag: str, gid: str, etag: str) -> None:
    """Record that the tag `tag` of `notebook` on the remote at `url` was seen (pulled or pushed) on
    the version `gid`, its object at ETag `etag`, now: a push moves that tag only when the local tag
    was set after this (remotes/push.py)."""
    from ..store import TAG_CLOCK

    with st.write():
        st.db.conn.execute("insert or replace into remote_tags (url, notebook, tag, gid, etag, seen)"
                           f" values (?,?,?,?,?,{TAG_CLOCK})", (url, notebook, tag, str(gid), str(etag or "")))


def tag_seen(st: Store, url: str, notebook: str, tag: str) -> tuple[str, str, int] | None:
    """(gid, etag, when: store.TAG_CLOCK) of the last sighting of that remote tag (saw_tag), or None."""
    rows = st._q("select gid, etag, seen from remote_tags where url = ? and notebook = ? and tag = ?",
                 (url, notebook, tag))
    return tuple(rows[0]) if rows else None


def tag_set_at(st: Store, notebook: str, tag: str) -> int:
    """When the local tag `tag` of `notebook` was last set here (store.TAG_CLOCK; 0 when unknown:
    set before store migration 6, or absent)."""
    rows = st._q("select t.seq from tags t join notebooks nb on nb.id = t.notebook_id where nb.path = ? and t.tag = ?",
                 (notebook, tag))
    return int(rows[0][0] or 0) if rows else 0
