"""az:// remotes against Azurite, Microsoft's Azure Storage emulator (tests/remote_servers.py starts it).
The shared matrix (round trip, listing, create-only race, If-Match) runs on it through `any_remote` in
tests/test_remote_objects.py; here: what Azurite itself answers to the conditions (checked with
Microsoft's own client, not ours), configuration by the standard AZURE_STORAGE_* variables, ETags,
conditional delete, a missing container, and credentials kept out of messages."""

from __future__ import annotations

import os

import pytest

from jupyter_mv.errors import RemoteConflict, RemoteError, RemoteMissing
from jupyter_mv.remotes import objects
from jupyter_mv.remotes.objects import open_remote
from remote_servers import azurite  # noqa: F401 - fixture


@pytest.fixture
def azure_env(azurite, monkeypatch):  # noqa: F811
    """Only the standard variables, as a user sets them; none of the test process's own AZURE_*."""
    for k in [k for k in os.environ if k.startswith(("AZURE", "AZURITE"))]:
        monkeypatch.delenv(k)
    for k, v in azurite.env.items():
        monkeypatch.setenv(k, v)
    return azurite


def test_azurite_honours_the_conditions_and_the_probe_says_so(azurite):  # noqa: F811
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

    url = azurite.container("team")
    blobs = azurite.client().get_container_client(url.split("/")[2])
    first = blobs.upload_blob("team/k", b"1")
    with pytest.raises(ResourceExistsError):  # Put Blob with If-None-Match: *
        blobs.upload_blob("team/k", b"2", overwrite=False)
    with pytest.raises(ResourceModifiedError):  # Put Blob with a stale If-Match
        blobs.upload_blob("team/k", b"3", overwrite=True, etag='"0x8D000000000000"',
                          match_condition=MatchConditions.IfNotModified)
    with pytest.raises(ResourceModifiedError):  # Delete Blob with a stale If-Match
        blobs.delete_blob("team/k", etag='"0x8D000000000000"', match_condition=MatchConditions.IfNotModified)
    assert blobs.download_blob("team/k").readall() == b"1" and first.get_blob_properties().etag
    st = open_remote(url, **azurite.options)
    assert st.conditional_writes() is True
    left = [b.name for b in blobs.list_blobs(name_starts_with="team/")]
    assert left == ["team/k"]  # the probe's object is gone


def test_the_standard_variables_alone_and_one_etag_per_object(azure_env):
    """AZURE_STORAGE_ACCOUNT_NAME / _ACCOUNT_KEY / _ENDPOINT, an http:// endpoint (obstore refused it
    with 'builder error' unless told to allow http). Listing gives the ETag HEAD and PUT give."""
    url = azure_env.container("team")
    st = open_remote(url)
    etag = st.put("tags/t.json", b"v1")
    [listed] = list(st.list("tags/"))
    assert etag.startswith('"') and listed.etag == st.head("tags/t.json").etag == etag
    # conditional delete: Delete Blob with If-Match (obstore has none; a URL it signs)
    with pytest.raises(RemoteConflict, match="changed by someone else"):
        st.delete("tags/t.json", if_match='"0x8D000000000000"')
    assert st.get("tags/t.json") == b"v1"
    st.delete("tags/t.json", if_match=listed.etag)
    assert st.head("tags/t.json") is None
    with pytest.raises(RemoteMissing):
        st.delete("tags/t.json", if_match=etag)


def test_the_emulator_switch(azure_env, monkeypatch):
    """AZURE_STORAGE_USE_EMULATOR=true: obstore's Azurite mode (http allowed, its address from
    AZURITE_BLOB_STORAGE_URL; the well-known account unless one is named)."""
    url = azure_env.container("team")
    monkeypatch.delenv("AZURE_STORAGE_ENDPOINT")
    monkeypatch.setenv("AZURE_STORAGE_USE_EMULATOR", "true")
    monkeypatch.setenv("AZURITE_BLOB_STORAGE_URL", azure_env.endpoint.rsplit("/", 1)[0])
    st = open_remote(url)
    st.put("k", b"1")
    assert st.get("k") == b"1" and st.conditional_writes() is True


def test_a_missing_container_is_named_not_taken_for_a_missing_key(azure_env):
    url = azure_env.container("team").replace("az://mv-", "az://nosuch-")
    st = open_remote(url)
    for op in (lambda: st.put("k", b"1"), lambda: st.get("k"), lambda: list(st.list("")),
               lambda: st.delete("k", if_match='"0x1"'), st.conditional_writes):
        with pytest.raises(RemoteError, match="the container does not exist") as info:
            op()
        assert not isinstance(info.value, RemoteMissing) and "\n" not in str(info.value)


def test_credentials_never_in_messages(azure_env, monkeypatch, run_cli, tmp_path):
    url = azure_env.container("team")
    wrong = "V3Jvbmcga2V5IC0gbmV2ZXIgcHJpbnQgbWUhIQ=="  # valid base64, not the account's key
    st = open_remote(url, account_key=wrong)
    for op in (lambda: st.put("k", b"1"), lambda: st.get("k"), lambda: list(st.list()),
               lambda: st.delete("k", if_match='"0x1"'), lambda: st.head("k")):
        with pytest.raises(RemoteError) as info:
            op()
        text = str(info.value)
        assert wrong not in text and azure_env.key not in text and "\n" not in text, text
        assert url in text and "403" in text, text
    # the same wrong key from the variable, through the CLI: one line, exit 1, no key
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", wrong)
    r = run_cli("clone", url, str(tmp_path / "c"))
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and wrong not in r.stderr + r.stdout, r.stderr
    assert "internal error" not in r.stderr and "Traceback" not in r.stderr
    # a key that is not base64 at all: refused when opening, without echoing it
    with pytest.raises(RemoteError, match="cannot open this remote") as info:
        open_remote(url, account_key="not base64 secret-value-xyz")
    assert "secret-value-xyz" not in str(info.value)
    # only secret options are masked: the account name stays readable
    assert objects._redact("x jupytermvtest y", open_remote(url)._secrets) == "x jupytermvtest y"
    assert wrong in open_remote(url)._secrets
