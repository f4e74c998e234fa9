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


def safe_url(url: str) -> str:
    """The URL as it may be printed: the password masked."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL has no password we can find either
        return url.split("@")[-1] if "@" in url else url


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


def open_storage(url: str, heartbeat: int | None = None, sqlite_timeout: int = 120):
    """Optuna's ``RDBStorage`` at ``url``, its schema created exactly once whatever number of workers start
    together. With a heartbeat, a trial whose worker died is failed and retried by another worker."""
    import sqlalchemy.exc as sa
    from optuna.exceptions import ExperimentalWarning
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    warnings.filterwarnings("ignore", category=ExperimentalWarning)
    kwargs: dict = {}
    if url.startswith("sqlite:"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": sqlite_timeout}}
    if heartbeat and heartbeat > 0:
        kwargs.update(heartbeat_interval=heartbeat, grace_period=2 * heartbeat,
                      heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2))
    for attempt in range(RETRIES):
        try:
            with _schema_lock(url):
                return RDBStorage(url, **kwargs)
        except StorageError:
            raise
        except (sa.SQLAlchemyError, ModuleNotFoundError, ImportError) as e:
            if attempt + 1 < RETRIES and _is_creation_race(e):  # a dialect without a lock: try again
                time.sleep(0.2 * (attempt + 1) + random.random() * 0.3)
                continue
            raise _translate(e, url) from None
    raise AssertionError("unreachable")  # pragma: no cover
