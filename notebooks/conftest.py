"""nbval runs the example notebooks here: give every run a fresh store so version numbers start at v1."""

import os
import tempfile

os.environ["JUPYTER_MV_STORE"] = os.path.join(tempfile.mkdtemp(prefix="jupyter_mv_nbval_"), ".jupyter_mv")
