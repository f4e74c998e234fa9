"""Optuna Dashboard over one study: its storage (read live, so a running search shows each trial as it ends) and
its trials' artifacts (``search.artifacts``), served on loopback by default.

.. code-block:: python

    import search

    board = search.serve_dashboard("demo")   # http://127.0.0.1:8080/dashboard/studies/1
    print(board.url)
    board.stop()

``asymllic dashboard NAME [--port P] [--host H]`` serves until interrupted. Options are declared once
(:class:`DashboardOptions`), as the search's are. Importing this module imports no Optuna.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from asymllic.options import DEFAULT_ROOT, option

from .spec import StudyRef

LOOPBACK = "127.0.0.1"


@dataclass
class DashboardOptions(StudyRef):
    """Which study to show and where to serve it."""

    port: int = option(8080, "TCP port to serve on (0: any free port)")
    host: str = option(LOOPBACK, "address to serve on: loopback shows the study to this machine only; 0.0.0.0 to "
                                 "every machine that reaches this one, with no password")
    artifacts: str | None = option(None, "folder of the trials' artifacts (default: the one the study's search "
                                         "stored them in)")


class Dashboard:
    """A running Optuna Dashboard: ``url`` (the study's page), ``root_url``, ``study_id``; :meth:`stop` ends it,
    :meth:`wait` serves until interrupted. A context manager (stopped on exit)."""

    def __init__(self, server, study: str, study_id: int, storage_url: str, artifacts: Path):
        self._server = server
        self.study, self.study_id, self.storage_url, self.artifacts = study, study_id, storage_url, artifacts
        host, port = server.server_address[:2]
        self.host, self.port = host, port
        shown = f"[{host}]" if ":" in host else host
        self.root_url = f"http://{shown}:{port}"
        self.url = f"{self.root_url}/dashboard/studies/{study_id}"
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name=f"optuna-dashboard-{port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(10)
        self._server.server_close()

    def wait(self) -> None:
        """Serve until interrupted (Ctrl-C), then stop."""
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def __enter__(self) -> "Dashboard":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Dashboard({self.study!r}, url={self.url!r})"


def _artifacts_of(study, ref: StudyRef, given: str | None) -> Path:
    """The artifact folder: as given, else the one the study's stored spec names, else ``<root>/<study>/artifacts``."""
    if given:
        return Path(given)
    stored = (study.user_attrs.get("spec") or {}).get("artifacts")
    return Path(stored) if stored else ref.dir / "artifacts"


def serve_dashboard(study: str, port: int = 8080, host: str = LOOPBACK, root: str | Path = DEFAULT_ROOT,
                    storage: str | None = None, artifacts: str | Path | None = None) -> Dashboard:
    """Serve Optuna Dashboard over the study ``study`` (in ``storage``, default ``<root>/<study>/study.db``) and its
    trials' artifacts, in a background thread; returns the running :class:`Dashboard`. ``port=0`` takes a free
    port. An unknown study, a port in use or an address that cannot be bound is one ``AsymllicError`` line."""
    import errno

    import optuna
    from optuna.artifacts import FileSystemArtifactStore
    from optuna_dashboard import wsgi
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from asymllic.errors import AsymllicError

    from .optuna_backend import storage as open_storage

    ref = StudyRef(study, storage, root=str(root))
    url = ref.storage_url  # as it may be printed: the password masked
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file():  # not created by asking
        raise AsymllicError(f"no study {study!r} in {url}")
    store = open_storage(ref)
    try:
        study_id = store.get_study_id_from_name(study)
    except KeyError:
        raise AsymllicError(f"no study {study!r} in {url}") from None
    folder = _artifacts_of(optuna.load_study(study_name=study, storage=store), ref, artifacts and str(artifacts))
    folder.mkdir(parents=True, exist_ok=True)
    app = wsgi(store, artifact_store=FileSystemArtifactStore(str(folder)))

    class Quiet(WSGIRequestHandler):  # no line per request on stderr
        def log_message(self, *args) -> None:
            pass

    class Server(WSGIServer):
        def handle_error(self, request, client_address) -> None:  # a browser that went away: nothing to print
            pass

    try:
        server = make_server(host, int(port), app, server_class=Server, handler_class=Quiet)
    except OSError as e:
        why = e.strerror or str(e)
        hint = "another program serves there; choose another --port" if e.errno == errno.EADDRINUSE else "check --host"
        raise AsymllicError(f"cannot serve the dashboard on {host}:{port}: {why} ({hint})") from None
    return Dashboard(server, study, study_id, url, folder)
