"""Ray Serve host of a synapse plugin binary (task mode).

Each replica starts the plugin binary once in `worker` mode (see
synapse_bridge.py) and forwards run requests to it. Deployed by the Go SDK
with import_path "synapse_serve:build" and args {"binary": "./synapse-plugin"};
the package (working_dir) holds the binary and these two modules.

HTTP API, relative to the application's route prefix:
  POST /run   body {"action": str, "params": any, "job_id": str, "env": {str: any}}
              -> 200 application/x-ndjson: the worker's event lines, then its
                 result or error line (docs/protocol.md); 400 {"error": ...} for a
                 bad body; 503 {"error": ...} if the worker has exited (the run
                 did not start; Serve replaces the replica after health checks)
  GET  /info  -> {"pid", "replica_pid", "actions", "alive", "in_flight"}
  else        -> 404 {"error": ...}
"""

from __future__ import annotations

import json
import os

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse

from synapse_bridge import WorkerBridge


def _bad(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


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
    def __init__(self, binary: str):
        # The replica's working directory is the unpacked package.
        self.bridge = WorkerBridge(binary)

    async def __call__(self, request: Request):
        # scope["path"] includes the route prefix (scope["root_path"]).
        path = request.scope.get("path", "")
        root = request.scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        path = path.rstrip("/") or "/"
        if path == "/run" and request.method == "POST":
            try:
                run = _parse_run(await request.body())
            except ValueError as e:
                return _bad(str(e))
            if not self.bridge.alive():
                # The run was not started, so the caller may retry: Serve
                # replaces this replica after its health checks fail.
                return _bad("the plugin worker of this replica has exited; "
                            "the replica is being replaced", 503)
            return StreamingResponse(self.bridge.stream(**run), media_type="application/x-ndjson")
        if path == "/info" and request.method == "GET":
            return JSONResponse({
                "pid": self.bridge.pid,
                "replica_pid": os.getpid(),
                "actions": self.bridge.actions,
                "alive": self.bridge.alive(),
                "in_flight": self.bridge.in_flight(),
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
    return PluginWorker.bind(args["binary"])
