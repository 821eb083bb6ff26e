"""Host one plugin binary in `worker` mode and multiplex runs over it.

Standard library only (no ray import), so it is testable anywhere. The
protocol is docs/protocol.md of github.com/synapse-sdk/synapse-go: one JSON
request per line on the worker's stdin, one JSON message per line on its
stdout; the first message is `ready`, every run ends with exactly one
`result` or `error`.

A reader thread owns stdout and routes each message by `id` to the
subscriber (a callback) registered for that id. asyncio callers get the
lines through loop.call_soon_threadsafe into an asyncio.Queue.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import threading
from typing import AsyncIterator, Callable

PROTOCOL_VERSION = 1
# The longest request line a worker reads (docs/protocol.md: 64 MiB).
MAX_LINE = 64 * 1024 * 1024
# Messages that end a subscription: the end of a run, the answer to a ping.
_TERMINAL = ("result", "error", "pong")

Subscriber = Callable[[bytes, dict], None]


def _log(msg: str) -> None:
    # stderr goes to the replica log.
    print(f"synapse_bridge: {msg}", file=sys.stderr, flush=True)


def _describe_status(code: int | None) -> str:
    # Popen reports death by signal N as -N.
    if code is not None and code < 0:
        return f"signal {-code}"
    return f"status {code}"


class WorkerBridge:
    """One `BINARY worker` process shared by concurrent runs.

    binary: path of the plugin binary, relative to cwd (or the process's
    working directory); cwd: where the worker runs; env: variables layered
    over os.environ for the worker; ready_timeout: seconds to wait for the
    ready line.
    """

    def __init__(self, binary: str, cwd: str | None = None, env: dict | None = None,
                 ready_timeout: float = 60.0):
        path = os.path.join(cwd, binary) if cwd else binary
        try:
            os.chmod(path, 0o755)  # zip extraction may drop the executable bit
        except OSError as e:
            _log(f"chmod {path}: {e}")  # Popen below reports a real problem
        full_env = None
        if env:
            full_env = dict(os.environ)
            full_env.update({str(k): str(v) for k, v in env.items()})
        self.binary = binary
        self.pid: int | None = None  # the worker's pid, from its ready message
        self.actions: list = []      # [{name, description}] from the ready message
        # {"port", "token"} from the ready message when the worker also takes
        # runs over HTTP (SYNAPSE_WORKER_LISTEN in env); else None.
        self.direct: dict | None = None
        self._lock = threading.Lock()        # guards _subs, _dead, _status
        self._write_lock = threading.Lock()  # serialises request lines
        # id -> (subscriber, action, job_id); action and job_id name a run in
        # the error synthesized when the worker dies.
        self._subs: dict[str, tuple[Subscriber, str | None, str | None]] = {}
        self._dead = False
        self._status: int | None = None
        self._ids = itertools.count(1)
        self._ready = threading.Event()
        self._ready_error: str | None = None
        # stderr is inherited: it ends up in the replica log.
        self._proc = subprocess.Popen([binary, "worker"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, cwd=cwd, env=full_env)
        self._reader = threading.Thread(target=self._read_loop, name="synapse-worker-reader",
                                        daemon=True)
        self._reader.start()
        if not self._ready.wait(ready_timeout):
            self._proc.kill()
            raise RuntimeError(f"the plugin worker {binary} sent no ready line within "
                               f"{ready_timeout:g}s (its stderr is in this process's log)")
        if self._ready_error:
            raise RuntimeError(self._ready_error)

    # ---- reader thread -------------------------------------------------

    def _read_loop(self) -> None:
        out = self._proc.stdout
        if not self._read_ready(out.readline()):
            return
        for line in out:
            if not line.endswith(b"\n"):
                line += b"\n"  # last line cut by EOF
            try:
                msg = json.loads(line)
            except ValueError:
                _log(f"ignoring a non-JSON line from the worker: {line[:200]!r}")
                continue
            if not isinstance(msg, dict):
                continue
            mid, mtype = msg.get("id"), msg.get("type")
            if not mid:
                if mtype == "error":
                    _log(f"worker error without id: {line.decode(errors='replace').strip()}")
                continue
            with self._lock:
                sub = self._subs.pop(mid, None) if mtype in _TERMINAL else self._subs.get(mid)
            if sub is not None:
                sub[0](line, msg)
        # EOF: the worker is gone. Fail every subscriber still waiting.
        status = self._proc.wait()
        with self._lock:
            self._dead, self._status = True, status
            subs, self._subs = self._subs, {}
        if subs:
            _log(f"the plugin worker exited ({_describe_status(status)}) with "
                 f"{len(subs)} request(s) in flight")
        for mid, (sub, action, job_id) in subs.items():
            line = self._exit_line(mid, "during the run; Serve replaces this worker, so the call can be retried", action, job_id)
            sub(line, json.loads(line))

    def _read_ready(self, line: bytes) -> bool:
        """Validates the first line; on failure records why and marks the bridge dead."""
        error = None
        try:
            msg = json.loads(line) if line.strip() else None
        except ValueError:
            msg = None
        if not line:
            status = self._proc.wait()
            error = (f"the plugin worker {self.binary} exited ({_describe_status(status)}) "
                     f"before it was ready; its stderr is in this process's log")
        elif not isinstance(msg, dict) or msg.get("type") != "ready":
            error = (f"the plugin worker {self.binary} did not start with a ready line; "
                     f"it wrote {line[:200]!r} (its stderr is in this process's log)")
        elif msg.get("protocol") != PROTOCOL_VERSION:
            error = (f"the plugin worker {self.binary} speaks protocol "
                     f"{msg.get('protocol')!r}, want {PROTOCOL_VERSION}")
        else:
            self.pid = msg.get("pid")
            self.actions = msg.get("actions") or []
            direct = msg.get("direct")
            if isinstance(direct, dict) and direct.get("port") and direct.get("token"):
                self.direct = {"port": direct["port"], "token": direct["token"]}
        if error:
            if self._proc.poll() is None:
                self._proc.kill()
            status = self._proc.wait()
            with self._lock:
                self._dead, self._status = True, status
            self._ready_error = error
        self._ready.set()
        return error is None

    # ---- helpers -------------------------------------------------------

    def _exit_line(self, mid: str, when: str, action: str | None = None,
                   job_id: str | None = None) -> bytes:
        err = {"kind": "execution", "cause": "worker_exited",
               "message": f"the plugin worker exited ({_describe_status(self._status)}) {when}"}
        if action:
            err["action"] = action
        if job_id:
            err["job_id"] = job_id
        return (json.dumps({"type": "error", "id": mid, "error": err}, separators=(",", ":"))
                + "\n").encode()

    @staticmethod
    def _encode(obj: dict) -> bytes:
        # ensure_ascii=False: "\uXXXX" escapes would make a line of non-ASCII
        # params up to 6x its size.
        return (json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n").encode()

    def _send(self, obj: dict, data: bytes | None = None) -> None:
        if data is None:
            data = self._encode(obj)
        with self._write_lock:
            self._proc.stdin.write(data)
            self._proc.stdin.flush()

    def _subscribe(self, mid: str, sub: Subscriber, action: str | None = None,
                   job_id: str | None = None) -> bool:
        """Registers sub for mid; False if the worker is already dead."""
        with self._lock:
            if self._dead:
                return False
            self._subs[mid] = (sub, action, job_id)
            return True

    @staticmethod
    def _queue_sub(loop: asyncio.AbstractEventLoop, q: asyncio.Queue) -> Subscriber:
        def deliver(line: bytes, msg: dict) -> None:
            try:
                loop.call_soon_threadsafe(q.put_nowait, (line, msg))
            except RuntimeError:
                pass  # the loop is closed: nobody is listening any more
        return deliver

    # ---- public API ----------------------------------------------------

    def alive(self) -> bool:
        return not self._dead and self._proc.poll() is None

    def in_flight(self) -> int:
        """Runs and pings the worker has not answered yet."""
        with self._lock:
            return len(self._subs)

    async def stream(self, action: str, params=None, job_id: str | None = None,
                     env: dict | None = None) -> AsyncIterator[bytes]:
        """Runs action and yields its message lines (bytes, newline-terminated,
        as the worker wrote them) up to and including the result or error.
        Closing the generator early sends a cancel for the run."""
        mid = f"run-{next(self._ids)}"
        req = {"type": "run", "id": mid, "action": action}
        if params is not None:
            req["params"] = params
        if job_id:
            req["job_id"] = job_id
        if env:
            req["env"] = env
        data = self._encode(req)
        if len(data) > MAX_LINE:
            # The worker would end on it, and every run in flight with it.
            err = {"kind": "validation", "action": action,
                   "message": f"the run request is {len(data)} bytes; the plugin worker reads at most "
                              f"{MAX_LINE} (pass large inputs as files or URLs)"}
            if job_id:
                err["job_id"] = job_id
            yield (json.dumps({"type": "error", "id": mid, "error": err}, separators=(",", ":")) + "\n").encode()
            return
        loop = asyncio.get_running_loop()
        q: asyncio.Queue = asyncio.Queue()
        if not self._subscribe(mid, self._queue_sub(loop, q), action, job_id):
            yield self._exit_line(mid, "before the run started", action, job_id)
            return
        try:
            self._send(req, data)
        except (OSError, ValueError) as e:
            # The worker is going away; the reader thread fails the run at EOF.
            _log(f"send run {mid}: {e}")
        done = False
        try:
            while not done:
                line, msg = await q.get()
                done = msg.get("type") in ("result", "error")
                yield line
        finally:
            if not done:
                self._abandon(mid, action)

    def _abandon(self, mid: str, action: str) -> None:
        """The consumer went away before the run ended: cancel it in the worker
        and log how it ends (the lines are no longer wanted)."""
        def drain(line: bytes, msg: dict) -> None:
            if msg.get("type") in ("result", "error"):
                _log(f"abandoned run {mid} ({action}) ended: {line.decode(errors='replace').strip()}")
        with self._lock:
            if mid not in self._subs:
                return  # already ended (or the worker died)
            self._subs[mid] = (drain,) + self._subs[mid][1:]
        _log(f"run {mid} ({action}) abandoned by its client; sending cancel")
        try:
            self._send({"type": "cancel", "id": mid})
        except (OSError, ValueError) as e:
            _log(f"send cancel {mid}: {e}")

    async def ping(self, timeout: float = 5.0) -> bool:
        """True if the worker answers a ping within timeout seconds."""
        mid = f"ping-{next(self._ids)}"
        q: asyncio.Queue = asyncio.Queue()
        if not self._subscribe(mid, self._queue_sub(asyncio.get_running_loop(), q)):
            return False
        try:
            self._send({"type": "ping", "id": mid})
            _, msg = await asyncio.wait_for(q.get(), timeout)
            return msg.get("type") == "pong"
        except (OSError, ValueError, asyncio.TimeoutError):
            return False
        finally:
            with self._lock:
                self._subs.pop(mid, None)

    def close(self, timeout: float = 5.0) -> None:
        """Closes stdin (the worker finishes its runs and exits), waits up to
        timeout seconds, then kills it."""
        with self._write_lock:
            try:
                self._proc.stdin.close()
            except OSError:
                pass
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout)
