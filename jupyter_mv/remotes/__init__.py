"""Object-storage remotes (issue 14): push versions to S3 / GCS / Azure Blob / a local folder (any fsspec
URL as a fallback), pull a team's versions into the history, clone a remote into a new store.

    objects.py   the object-store client (obstore; fsspec fallback): get/head/put/list, conditional writes
    layout.py    where everything lives on a remote (keys, object formats); read it first
    registry.py  the remotes of a store (name -> URL, default remote) and credential-free URLs
    push.py      push: data first, then the immutable version manifest, then tags (conditional writes)
    pull.py      remote ls, pull (untrusted: re-hashed, validated like a bundle), clone
    gc.py        remote gc (mark and sweep with a grace period and push leases)

Nothing here imports IPython; the adapters (magics, CLI) call it through api.py.
"""
