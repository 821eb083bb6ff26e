"""Ray Serve host of a synapse plugin binary (task mode).

Each replica starts the plugin binary once in `worker` mode (see
synapse_bridge.py) and forwards run requests to it. Deployed by the Go SDK
with import_path "synapse_serve:build" and args {"binary": "./synapse-plugin"};
the package (working_dir) holds the binary and these two modules.

HTTP API, relative to the application's route prefix:
  POST /run   body {"action": str, "params": any, "job_id": str, "env": {str: any}}
              -> 200 application/x-ndjson: the worker's event lines, then its
                 result or error line (docs/protocol.md), with X-Synapse-Config
                 (the application config's fingerprint); 400 {"error": ...} for a
                 bad body; 409 when the caller's X-Synapse-Config differs; 413 over 64 MiB less 64 KiB; 503 {"error": ...} if the
                 worker has exited (the run did not start; Serve replaces the
                 replica after health checks)
  GET  /info  -> {"pid", "replica_pid", "actions", "alive", "in_flight", "direct"}
  else        -> 404 {"error": ...}

Direct calls: with args {"direct": true} the worker also listens on this
node's IP (SYNAPSE_WORKER_LISTEN), and every /run answer carries its address
in the X-Synapse-Direct header (http://NODE_IP:PORT/TOKEN/; POST run there
with the same body). Callers then skip the proxy and this host; Serve still
places, health-checks and replaces the replica, and a call to a stale
address fails fast (refused, or 404 for another token) so the caller falls
back here. The worker admits a direct run only below max_ongoing runs in
flight (SYNAPSE_WORKER_MAX_ONGOING), else 503, and the caller comes here.
"""

from __future__ import annotations

import json
import os

import ray
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse

from synapse_bridge import WorkerBridge


def _bad(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


# The worker reads request lines of at most 64 MiB (docs/protocol.md); a
# longer one would end it, and every run in flight with it.
MAX_BODY = 64 * 1024 * 1024 - 64 * 1024


def _parse_run(body: bytes) -> dict:
    """Validates a run body; raises ValueError with a message for the client."""
    try:
        req = json.loads(body)
    except ValueError as e:
        raise ValueError(f"the body is not JSON: {e}") from None
    if not isinstance(req, dict):
        raise ValueError("the body must be a JSON object")
    action = req.get("action")
    if not isinstance(action, str) or not action:
        raise ValueError('"action" must be a non-empty string')
    job_id = req.get("job_id")
    if job_id is not None and not isinstance(job_id, str):
        raise ValueError('"job_id" must be a string')
    env = req.get("env")
    if env is not None and not isinstance(env, dict):
        raise ValueError('"env" must be an object')
    return {"action": action, "params": req.get("params"), "job_id": job_id, "env": env}


@serve.deployment(name="PluginWorker")
class PluginWorker:
    def __init__(self, binary: str, direct: bool = False, max_ongoing: int = 1,
                 config: str = ""):
        # The replica's working directory is the unpacked package.
        # max_ongoing caps the worker's runs of both paths (a run from here
        # waits for a slot); config is the application config's fingerprint.
        env = {"SYNAPSE_WORKER_MAX_ONGOING": str(max(int(max_ongoing), 1))}
        if config:
            env["SYNAPSE_WORKER_CONFIG"] = config
        ip = host = None
        if direct:
            ip = ray.util.get_node_ip_address()
            host = f"[{ip}]" if ":" in ip else ip
            env["SYNAPSE_WORKER_LISTEN"] = f"{host}:0"
        self.bridge = WorkerBridge(binary, env=env)
        self.config = config
        self.direct_url = None
        d = self.bridge.direct
        if ip and d:
            self.direct_url = f"http://{host}:{d['port']}/{d['token']}/"

    async def __call__(self, request: Request):
        # scope["path"] includes the route prefix (scope["root_path"]).
        path = request.scope.get("path", "")
        root = request.scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        path = path.rstrip("/") or "/"
        if path == "/run" and request.method == "POST":
            body = await request.body()
            if len(body) > MAX_BODY:
                return _bad(f"the body is {len(body)} bytes; the worker takes at most {MAX_BODY}", 413)
            try:
                run = _parse_run(body)
            except ValueError as e:
                return _bad(str(e))
            want = request.headers.get("x-synapse-config", "")
            if want and self.config and want != self.config:
                # The caller deployed another config under this name: it is
                # told before the run starts, and deploys its own again.
                return _bad(f"this worker runs application config {self.config[:12]}, not {want[:12]} "
                            "(the application was changed by another deploy)", 409)
            if not self.bridge.alive():
                # The run was not started, so the caller may retry: Serve
                # replaces this replica after its health checks fail.
                return _bad("the plugin worker of this replica has exited; "
                            "the replica is being replaced", 503)
            headers = {}
            if self.direct_url:
                headers["X-Synapse-Direct"] = self.direct_url
            if self.config:
                headers["X-Synapse-Config"] = self.config
            return StreamingResponse(self.bridge.stream(**run), media_type="application/x-ndjson",
                                     headers=headers)
        if path == "/info" and request.method == "GET":
            return JSONResponse({
                "pid": self.bridge.pid,
                "replica_pid": os.getpid(),
                "actions": self.bridge.actions,
                "alive": self.bridge.alive(),
                "in_flight": self.bridge.in_flight(),
                "direct": self.direct_url,
            })
        return _bad(f"no route {request.method} {path} (want POST /run or GET /info)", 404)

    async def check_health(self):
        # Raising makes Serve replace the replica (and so restart the worker).
        if not self.bridge.alive():
            raise RuntimeError("the plugin worker has exited")
        if not await self.bridge.ping(5.0):
            raise RuntimeError("the plugin worker did not answer a ping within 5s")

    def __del__(self):
        # Replica shutdown: let the worker finish, then kill it after 5 s.
        bridge = getattr(self, "bridge", None)
        if bridge is not None:
            bridge.close()


def build(args: dict):
    """Application builder for import_path "synapse_serve:build"."""
    return PluginWorker.bind(args["binary"], bool(args.get("direct", False)),
                             int(args.get("max_ongoing", 1)), str(args.get("config", "")))
