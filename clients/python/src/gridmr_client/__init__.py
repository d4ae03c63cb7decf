"""A client for GridMR's REST API, with nothing beyond the standard library.

    >>> from gridmr_client import Client
    >>> gm = Client("http://master:8080")              # the token is found as the CLI finds it
    >>> job = gm.submit(script_url="/data/shared/wordcount.py", input_url="/data/shared/books")
    >>> done = gm.wait(job["job_id"])                  # long-polls; raises JobFailed if it fails
    >>> for line in gm.result(job["job_id"]):          # streamed, never held whole
    ...     print(line)

Every error answer of the master is a :class:`GridMRError` carrying the HTTP status and the
JSON body (``error``, and ``status`` for a job: ``"UNKNOWN"`` when no job has the id), as the
REST API gives them; a master that cannot be reached is a :class:`Unreachable`.

The cluster token is found where the ``gridmr`` CLI finds it, first match wins: the ``token``
argument, ``GRIDMR_TOKEN``, the file ``GRIDMR_TOKEN_FILE`` names, the token ``gridmr login``
saved for this master (``$GRIDMR_CREDENTIALS``, else ``$XDG_CONFIG_HOME`` or
``~/.config``, ``gridmr/credentials.json``), then the shared folder's
``.gridmr/cluster.token`` (``shared_dir``, else ``SHARED_DIR``). ``GRIDMR_AUTH=off`` sends none.
"""

from __future__ import annotations

import json
import os
import ssl
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Dict, Iterator, List, Optional

__all__ = ["Client", "GridMRError", "JobFailed", "Unreachable", "discover_token"]
__version__ = "0.1.0"

Json = Dict[str, Any]

# States after which a job never changes.
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")

# The longest long-poll the master accepts (GET /jobs/{id}?wait_ms=).
MAX_WAIT_MS = 60_000


class GridMRError(Exception):
    """An error answer of the master: ``status`` (HTTP), ``error`` (its message) and ``body``
    (the whole JSON body: ``status`` is the job's state when the error is about a job)."""

    def __init__(self, status: int, error: str, body: Optional[Json] = None) -> None:
        super().__init__(f"HTTP {status}: {error}")
        self.status = status
        self.error = error
        self.body: Json = body or {}

    @property
    def job_state(self) -> Optional[str]:
        """The job's state in the answer (``"UNKNOWN"`` for a job id no job has)."""
        return self.body.get("status")


class JobFailed(GridMRError):
    """:meth:`Client.wait` found the job FAILED or CANCELLED; ``job`` is its last status."""

    def __init__(self, job: Json) -> None:
        super().__init__(409, job.get("error") or job.get("message") or job["status"], job)
        self.job = job


class Unreachable(Exception):
    """The master did not answer (refused, timed out, a TLS failure)."""


def _private_text(path: str) -> Optional[str]:
    """A token file's text, when it is a regular file that only its owner may read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    if st.st_mode & 0o077:
        raise GridMRError(0, f"{path} may be read by other users; chmod 600 it")
    with open(path, encoding="utf-8") as f:
        return f.read().strip()


def discover_token(master: str, shared_dir: Optional[str] = None) -> Optional[str]:
    """The cluster token for ``master``, found as the CLI finds it (see the module's doc)."""
    if os.environ.get("GRIDMR_AUTH", "").lower() == "off":
        return None
    if os.environ.get("GRIDMR_TOKEN"):
        return os.environ["GRIDMR_TOKEN"].strip()
    if os.environ.get("GRIDMR_TOKEN_FILE"):
        return _private_text(os.environ["GRIDMR_TOKEN_FILE"])
    creds = os.environ.get("GRIDMR_CREDENTIALS")
    if not creds:
        config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(
            os.path.expanduser("~"), ".config"
        )
        creds = os.path.join(config, "gridmr", "credentials.json")
    saved = _private_text(creds)
    if saved:
        entry = json.loads(saved).get("masters", {}).get(master.rstrip("/"))
        if entry and entry.get("token"):
            return str(entry["token"])
    share = shared_dir or os.environ.get("SHARED_DIR")
    if share:
        return _private_text(os.path.join(share, ".gridmr", "cluster.token"))
    return None


class Client:
    """One master's REST API.

    ``master``: its URL (default ``GRIDMR_MASTER``, else ``http://127.0.0.1:8080``);
    ``token``: the cluster token (default: :func:`discover_token`); ``cafile``: a CA
    certificate to verify an ``https`` master with (default ``GRIDMR_TLS_CA``);
    ``timeout``: seconds for one request.
    """

    def __init__(
        self,
        master: Optional[str] = None,
        token: Optional[str] = None,
        shared_dir: Optional[str] = None,
        cafile: Optional[str] = None,
        timeout: float = 30.0,
    ) -> None:
        self.master = (master or os.environ.get("GRIDMR_MASTER") or "http://127.0.0.1:8080").rstrip("/")
        self.token = token if token is not None else discover_token(self.master, shared_dir)
        cafile = cafile or os.environ.get("GRIDMR_TLS_CA")
        self._ssl = ssl.create_default_context(cafile=cafile) if cafile else None
        self.timeout = timeout

    # -- the wire ---------------------------------------------------------------------------

    def _open(self, method: str, path: str, body: Optional[Json] = None, timeout: Optional[float] = None):
        data = None if body is None else json.dumps(body).encode("utf-8")
        req = urllib.request.Request(self.master + path, data=data, method=method)
        if data is not None:
            req.add_header("content-type", "application/json")
        if self.token:
            req.add_header("authorization", f"Bearer {self.token}")
        try:
            return urllib.request.urlopen(req, timeout=timeout or self.timeout, context=self._ssl)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                answer = json.loads(raw)
            except ValueError:
                answer = {"error": raw.decode("utf-8", "replace")}
            raise GridMRError(e.code, str(answer.get("error", "")), answer) from None
        except (urllib.error.URLError, OSError) as e:
            raise Unreachable(f"{self.master}: {getattr(e, 'reason', e)}") from None

    def _json(self, method: str, path: str, body: Optional[Json] = None, timeout: Optional[float] = None) -> Json:
        with self._open(method, path, body, timeout) as resp:
            return json.load(resp)

    @staticmethod
    def _id(job_id: str) -> str:
        return urllib.parse.quote(job_id, safe="")

    # -- jobs -------------------------------------------------------------------------------

    def health(self) -> Json:
        """``GET /health``: ``ok``, the live ``workers``, the typed ``jobs`` the cluster has."""
        return self._json("GET", "/health")

    def submit(self, input_url: str, **fields: Any) -> Json:
        """``POST /jobs``: submits a job and returns its status (``job_id``, ``mode``…).

        ``fields`` are the REST API's: one of ``job``, ``script_url`` or ``mapper`` (with
        ``reducer``, ``combiner``, ``files``), and ``partitions``, ``map_splits``,
        ``reduce_partitions``, ``force_distributed``, ``params``, ``shuffle_mode``,
        ``output_url``, ``timeout_s``… A ``None`` field is left out."""
        body: Json = {"input_url": input_url}
        body.update({k: v for k, v in fields.items() if v is not None})
        return self._json("POST", "/jobs", body)

    def status(self, job_id: str, wait_ms: Optional[int] = None) -> Json:
        """``GET /jobs/{id}``; with ``wait_ms``, answered when the job ends or after that long."""
        query = f"?wait_ms={min(int(wait_ms), MAX_WAIT_MS)}" if wait_ms else ""
        timeout = self.timeout + (wait_ms or 0) / 1000.0
        return self._json("GET", f"/jobs/{self._id(job_id)}{query}", timeout=timeout)

    def wait(
        self,
        job_id: str,
        timeout: Optional[float] = None,
        on_progress: Optional[Callable[[Json], None]] = None,
    ) -> Json:
        """Follows a job until it ends (long-polling, no busy loop) and returns its last status.
        Raises :class:`JobFailed` if it failed or was cancelled, ``TimeoutError`` after
        ``timeout`` seconds. A master restarting meanwhile is waited for, as the CLI does."""
        deadline = None if timeout is None else time.monotonic() + timeout
        unreachable_since: Optional[float] = None
        while True:
            left = MAX_WAIT_MS if deadline is None else int((deadline - time.monotonic()) * 1000)
            if left <= 0:
                raise TimeoutError(f"{job_id} did not end within {timeout} s")
            try:
                job = self.status(job_id, wait_ms=max(1, min(left, MAX_WAIT_MS)))
                unreachable_since = None
            except Unreachable:
                unreachable_since = unreachable_since or time.monotonic()
                if time.monotonic() - unreachable_since > 120:
                    raise
                time.sleep(0.5)
                continue
            if on_progress:
                on_progress(job)
            if job["status"] == "SUCCEEDED":
                return job
            if job["status"] in TERMINAL:
                raise JobFailed(job)

    def result(self, job_id: str, chunk_bytes: int = 1 << 16) -> Iterator[str]:
        """A finished job's output, line by line (``key<TAB>value``, without the line feed),
        streamed from ``GET /jobs/{id}/result?format=text``: never held whole."""
        resp = self._open("GET", f"/jobs/{self._id(job_id)}/result?format=text", timeout=self.timeout)
        with resp:
            pending = b""
            while True:
                chunk = resp.read(chunk_bytes)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode("utf-8", "replace")
            if pending:
                yield pending.decode("utf-8", "replace")

    def result_pairs(self, job_id: str) -> Iterator[tuple]:
        """:meth:`result` as ``(key, value)`` pairs: the key up to the first tab, the rest the
        value (an int when it reads as one), as the original's readers split them."""
        for line in self.result(job_id):
            key, _, value = line.partition("\t")
            try:
                yield key, int(value)
            except ValueError:
                yield key, value

    def cancel(self, job_id: str) -> Json:
        """``POST /jobs/{id}/cancel``: stops a running job, which keeps its record."""
        return self._json("POST", f"/jobs/{self._id(job_id)}/cancel")

    def delete(self, job_id: str, purge: bool = False) -> Json:
        """``DELETE /jobs/{id}``: cancels and forgets a job; ``purge`` removes its files."""
        return self._json("DELETE", f"/jobs/{self._id(job_id)}?purge={'true' if purge else 'false'}")

    def jobs(self) -> List[Json]:
        """``GET /jobs``: every job (id, state, mode, message, outputs), every page."""
        found: List[Json] = []
        offset: Optional[int] = 0
        while offset is not None:
            page = self._json("GET", f"/jobs?offset={offset}")
            found.extend(page["jobs"])
            offset = page.get("next_offset")
        return found

    def tasks(self, job_id: str) -> Json:
        """``GET /jobs/{id}/tasks``: every attempt of the job's tasks."""
        return self._json("GET", f"/jobs/{self._id(job_id)}/tasks")

    def logs(self, job_id: str, task: str) -> List[Json]:
        """What a task's attempts wrote on stderr: ``[{"attempt": 1, "text": "…"}, …]``
        (``task``: ``single``, ``map-00003``, ``reduce-00001``)."""
        path = f"/jobs/{self._id(job_id)}/tasks/{urllib.parse.quote(task, safe='')}/logs"
        return self._json("GET", path)["logs"]

    def workers(self) -> Json:
        """``GET /workers``: workers by id (address, alive, slots, running)."""
        return self._json("GET", "/workers")["workers"]
