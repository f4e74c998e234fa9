"""Study storage: Optuna's RDB storage (SQLite by default; PostgreSQL or MySQL to scale out).

Optuna creates its tables when a storage is first opened, with no lock of its own: N workers started
together on an empty database race to create them, and all but one fail (a duplicate type or table;
optuna issue 1092). Here the schema is created under a database-wide lock (PostgreSQL's advisory lock,
MySQL's ``GET_LOCK``, an exclusive ``flock`` on a SQLite file), so exactly one process creates it and
the others find it done; other dialects retry the creation a bounded number of times. A database that cannot be reached, or a role without
rights, is one line naming the URL without its password.
"""
from __future__ import annotations

import random
import time
import warnings
import zlib
from contextlib import contextmanager

from asymllic.errors import AsymllicError, exception_chain

LOCK_KEY = zlib.crc32(b"asymllic optuna schema")  # the advisory lock's key, the same in every process
LOCK_TIMEOUT_S = 600
RETRIES = 5


class StorageError(AsymllicError):
    """A study storage that cannot be opened (unreachable, refused, missing rights or driver)."""


ENV_PREFIX = "env:"  # a storage given as env:VARNAME: the URL is read from that variable, and only the name is stored
SECRET_KEYS = ("password", "passwd")  # query parameters that hold a password (libpq's and MySQL drivers' names)


def resolve_url(url: str) -> str:
    """The URL to connect with: ``env:VARNAME`` read from the environment (an unset variable is one line naming
    it); any other URL as given."""
    import os

    if not url.startswith(ENV_PREFIX):
        return url
    name = url[len(ENV_PREFIX):]
    value = os.environ.get(name)
    if not value:
        raise StorageError(f"the study storage is {url}, but the environment variable {name} is not set (export "
                           f"{name}=postgresql://user:password@host/db, or give the URL without its password and "
                           "let PGPASSWORD or ~/.pgpass supply it)")
    return value


def _without_secrets(url: str, mask: str | None) -> str:
    """``url`` with its password (in the user part or a query parameter) replaced by ``mask``, or removed
    (``mask=None``); an ``env:`` URL is a name, kept as it is."""
    if url.startswith(ENV_PREFIX):
        return url
    try:
        from sqlalchemy.engine import URL, make_url

        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy reads: keep what follows the last '@' only
        return url.split("@")[-1] if "@" in url else url
    secret_query = [k for k in parsed.query if k.lower() in SECRET_KEYS]
    if parsed.password is None and not secret_query:
        return url  # nothing to hide: the text as given (SQLAlchemy would re-quote it)
    query = {k: (mask if k in secret_query else v) for k, v in parsed.query.items()
             if k not in secret_query or mask is not None}
    password = parsed.password if mask is not None else None
    clean = URL.create(parsed.drivername, parsed.username, password, parsed.host, parsed.port, parsed.database, query)
    # a password left in is shown as ***; a masked query parameter too, unquoted
    return clean.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


def safe_url(url: str) -> str:
    """The URL as it may be printed: ``env:VARNAME`` as the URL it names, the password masked
    (``postgresql://user:***@host/db``)."""
    try:
        url = resolve_url(url)
    except StorageError:
        return url
    return _without_secrets(url, "***")


def stored_url(url: str | None) -> str | None:
    """The URL as a study may store it (its spec's ``storage``, spec.yaml): ``env:VARNAME`` as given, any other
    URL without its password, so a stored spec reruns with the password from the environment (PGPASSWORD,
    ~/.pgpass) and never holds it."""
    return None if url is None else _without_secrets(url, None)


def _reason(e: BaseException) -> str:
    """The first line of the innermost driver error, the part that says what went wrong."""
    texts = [str(getattr(c, "orig", None) or c).strip() for c in exception_chain(e)]
    text = next((t for t in reversed(texts) if t), type(e).__name__)
    return text.splitlines()[0][:300]


def _is_creation_race(e: BaseException) -> bool:
    text = " ".join(str(c) for c in exception_chain(e)).lower()
    return any(s in text for s in ("already exists", "duplicate key", "uniqueviolation", "duplicate entry",
                                   "unique constraint failed"))


def _translate(e: Exception, url: str) -> StorageError:
    import sqlalchemy.exc as sa

    where = safe_url(url)
    reason = _reason(e)
    lowered = " ".join(str(c) for c in exception_chain(e)).lower()
    if isinstance(e, ModuleNotFoundError) or "no module named" in lowered:
        return StorageError(f"cannot open the study storage {where}: its database driver is not installed ({reason}); "
                            "for PostgreSQL: pip install 'psycopg[binary]'")
    if "permission denied" in lowered or "must be owner" in lowered or "access denied" in lowered:
        return StorageError(f"the database role of {where} lacks the rights a study needs (create tables, "
                            f"read and write them): {reason}")
    if isinstance(e, sa.OperationalError) or isinstance(e, sa.InterfaceError):
        return StorageError(f"cannot reach the study storage {where}: {reason}")
    return StorageError(f"cannot open the study storage {where}: {reason}")


@contextmanager
def _file_lock(path: str):
    """An exclusive ``flock`` on the SQLite file itself. SQLite locks with ``fcntl`` byte ranges, which
    on Linux are independent of ``flock``, so this lock orders the schema creators and nothing else."""
    try:
        import fcntl
    except ImportError:  # not POSIX: the bounded retries remain
        yield
        return
    with open(path, "ab") as handle:  # an empty file is an empty SQLite database
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _schema_lock(url: str):
    """Hold a database-wide lock while the schema is created (PostgreSQL, MySQL, a SQLite file)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    dialect = engine.dialect.name
    if dialect not in ("postgresql", "mysql", "mariadb"):
        database = engine.url.database
        engine.dispose()
        if dialect == "sqlite" and database and database != ":memory:" and not database.startswith("file:"):
            with _file_lock(database):
                yield
        else:
            yield
        return
    try:
        with engine.connect() as conn:
            if dialect == "postgresql":
                conn.execute(sqlalchemy.text(f"SET lock_timeout = '{LOCK_TIMEOUT_S}s'"))
                conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
            else:
                got = conn.execute(sqlalchemy.text("SELECT GET_LOCK(:k, :t)"),
                                   {"k": f"asymllic-{LOCK_KEY}", "t": LOCK_TIMEOUT_S}).scalar()
                if got != 1:
                    raise StorageError(f"timed out after {LOCK_TIMEOUT_S} s waiting for another worker to create "
                                       f"the study tables in {safe_url(url)}")
            try:
                yield
            finally:  # the lock is the session's: closing the connection would free it too
                if dialect == "postgresql":
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                else:
                    conn.execute(sqlalchemy.text("SELECT RELEASE_LOCK(:k)"), {"k": f"asymllic-{LOCK_KEY}"})
    finally:
        engine.dispose()


RETRY_S = 60.0  # how long a worker's storage call retries a lost connection (a server restart, a network blip)
POOL = {"pool_size": 2, "max_overflow": 2}  # per worker process: its trial loop and its heartbeat thread hold one each
# the calls of a worker's trial loop (reads, and writes that are safe to repeat); each is retried across a lost connection
RETRIED = ("get_study_id_from_name", "get_study_name_from_id", "get_study_directions", "get_study_user_attrs",
           "get_study_system_attrs", "set_study_user_attr", "set_study_system_attr", "create_new_trial",
           "set_trial_param", "get_trial_param", "set_trial_intermediate_value", "set_trial_user_attr",
           "set_trial_system_attr", "get_trial_user_attrs", "get_trial_system_attrs",
           "get_trial_id_from_study_id_trial_number", "get_trial", "get_all_trials", "_get_trials", "get_best_trial",
           "_get_stale_trial_ids")


def is_transient(e: BaseException) -> bool:
    """A lost or refused connection (a server restarting or unreachable for a moment), as opposed to an error
    that repeating the same statement gives again."""
    import sqlalchemy.exc as sa

    return any(isinstance(c, (sa.OperationalError, sa.InterfaceError)) or getattr(c, "connection_invalidated", False)
               for c in exception_chain(e))


def _lost_reason(e: BaseException) -> str:
    """What the driver said of the lost connection (first line)."""
    import sqlalchemy.exc as sa

    said = next((str(c.orig) for c in exception_chain(e) if isinstance(c, sa.DBAPIError) and str(c.orig or "")), "")
    return said.strip().splitlines()[0][:300] if said.strip() else _reason(e)


def retry_transient(call, url: str, doing: str, budget_s: float = RETRY_S):
    """``call()``, repeated with exponential backoff (0.1 s doubling to 5 s, jittered) while it fails with a
    transient error, for up to ``budget_s`` seconds; then a ``StorageError`` of one line."""
    import sys

    start, delay, told = time.monotonic(), 0.1, False
    while True:
        try:
            return call()
        except Exception as e:  # noqa: BLE001 - only transient errors are retried, the rest re-raised
            if not is_transient(e):
                raise
            waited = time.monotonic() - start
            if waited + delay > budget_s:
                raise StorageError(f"lost the study storage {safe_url(url)} while {doing} (unreachable for "
                                   f"{waited:.0f} s: {_lost_reason(e)}); the study keeps every finished trial: run the "
                                   "same command again to resume") from None
            if not told:
                print(f"asymllic: the study storage {safe_url(url)} is unreachable ({_lost_reason(e)}); retrying for "
                      f"up to {budget_s:g} s", file=sys.stderr, flush=True)
                told = True
            time.sleep(delay * (1 + 0.5 * random.random()))
            delay = min(2 * delay, 5.0)


def _retried(name: str, method):
    def call(self, *args, **kwargs):
        return self._retry(lambda: method(self, *args, **kwargs), f"calling {name}")

    call.__name__ = call.__qualname__ = name
    return call


def _study_storage_class():
    """``RDBStorage`` whose stale-trial check also finds a RUNNING trial that never recorded a heartbeat and started
    more than the grace period ago: its worker died before its first beat (killed in the first moments of a trial),
    and Optuna's own check skips trials without a heartbeat, so it would stay RUNNING for good. A live worker
    records its first beat as its trial starts."""
    global _STUDY
    if _STUDY is not None:
        return _STUDY
    import datetime

    from optuna.storages import RDBStorage
    from optuna.trial import TrialState

    class StudyRDBStorage(RDBStorage):
        def _get_stale_trial_ids(self, study_id):
            stale = RDBStorage._get_stale_trial_ids(self, study_id)
            grace = datetime.timedelta(seconds=self.grace_period or 2 * self.heartbeat_interval)
            now = datetime.datetime.now()  # the clock Optuna writes a trial's start with
            beaten = set(self._beaten_trial_ids(study_id))
            running = self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
            return stale + [t._trial_id for t in running if t._trial_id not in beaten and t._trial_id not in stale
                            and t.datetime_start is not None and now - t.datetime_start > grace]

        def _beaten_trial_ids(self, study_id) -> list:
            from optuna.storages._rdb import models
            from optuna.storages._rdb.storage import _create_scoped_session

            with _create_scoped_session(self.scoped_session) as session:
                return [row[0] for row in session.query(models.TrialHeartbeatModel.trial_id)
                        .join(models.TrialModel).filter(models.TrialModel.study_id == study_id).all()]

    StudyRDBStorage.__module__, StudyRDBStorage.__qualname__ = __name__, "StudyRDBStorage"
    _STUDY = StudyRDBStorage
    return _STUDY


def _resilient_storage_class():
    """``RDBStorage`` for a database server whose connections may drop: each call of a worker's trial loop is
    retried across a lost connection (``RETRIED``, ``retry_transient``), finishing a trial too (a retry that
    finds the trial already in the state it sets succeeded the first time), and the heartbeat outlives a
    database that is away for a while: a beat that fails for a heartbeat interval is skipped with one line,
    and the next beat tries again (Optuna's heartbeat thread ends at its first error)."""
    global _RESILIENT
    if _RESILIENT is not None:
        return _RESILIENT
    import sys

    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.storages import RDBStorage

    class ResilientRDBStorage(_study_storage_class()):
        retry_s = RETRY_S
        lost = False  # a call gave up: the next ones try once each until one gets through

        def _retry(self, call, doing: str):
            try:
                result = retry_transient(call, self.url, doing, 0.0 if self.lost else self.retry_s)
            except StorageError:
                self.lost = True
                raise
            self.lost = False
            return result

        def set_trial_state_values(self, trial_id, state, values=None):
            tries = []

            def attempt():
                tries.append(1)
                try:
                    return RDBStorage.set_trial_state_values(self, trial_id, state, values)
                except UpdateFinishedTrialError:
                    # the connection was lost after the first try committed: the trial is already in ``state``
                    if len(tries) > 1 and state.is_finished() and RDBStorage.get_trial(self, trial_id).state == state:
                        return True
                    raise

            return self._retry(attempt, f"setting a trial {state.name}")

        def record_heartbeat(self, trial_id):
            try:
                retry_transient(lambda: RDBStorage.record_heartbeat(self, trial_id), self.url,
                                "recording a heartbeat", min(self.retry_s, self.heartbeat_interval or self.retry_s))
            except StorageError:
                print(f"asymllic: a heartbeat was not recorded: the study storage {safe_url(self.url)} is "
                      "unreachable; the next beat tries again", file=sys.stderr, flush=True)

    for name in RETRIED:
        setattr(ResilientRDBStorage, name, _retried(name, getattr(_study_storage_class(), name)))
    ResilientRDBStorage.__module__, ResilientRDBStorage.__qualname__ = __name__, "ResilientRDBStorage"
    _RESILIENT = ResilientRDBStorage
    return _RESILIENT


_RESILIENT = _STUDY = None


def __getattr__(name: str):
    """``ResilientRDBStorage`` built on first use, so that importing this module imports no Optuna (and a pickled
    storage finds its class)."""
    if name == "ResilientRDBStorage":
        return _resilient_storage_class()
    if name == "StudyRDBStorage":
        return _study_storage_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_storage(url: str, heartbeat: int | None = None, sqlite_timeout: int = 120):
    """Optuna's ``RDBStorage`` at ``url``, its schema created exactly once whatever number of workers start
    together. With a heartbeat, a trial whose worker died is failed and retried by another worker."""
    import sqlalchemy.exc as sa
    from optuna.exceptions import ExperimentalWarning
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    kwargs: dict = {}
    sqlite = url.startswith("sqlite:")
    if sqlite:
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": sqlite_timeout}}
    else:  # a server: a pooled connection is tested before use (a restart or a blip drops them all), few per worker
        kwargs["engine_kwargs"] = {"pool_pre_ping": True, **POOL}
    if heartbeat and heartbeat > 0:
        with warnings.catch_warnings():  # Optuna's heartbeat is experimental: known, not news to the user
            warnings.simplefilter("ignore", ExperimentalWarning)
            kwargs.update(heartbeat_interval=heartbeat, grace_period=2 * heartbeat,
                          heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2))
    for attempt in range(RETRIES):
        try:
            with _schema_lock(url), warnings.catch_warnings():  # this call only: the process's filters unchanged
                warnings.simplefilter("ignore", ExperimentalWarning)
                return (_study_storage_class() if sqlite else _resilient_storage_class())(url, **kwargs)
        except StorageError:
            raise
        except (sa.SQLAlchemyError, ModuleNotFoundError, ImportError) as e:
            if attempt + 1 < RETRIES and _is_creation_race(e):  # a dialect without a lock: try again
                time.sleep(0.2 * (attempt + 1) + random.random() * 0.3)
                continue
            raise _translate(e, url) from None
    raise AssertionError("unreachable")  # pragma: no cover
