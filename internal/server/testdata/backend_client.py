"""Drives a running `synapse server` with the Python SDK's own BackendClient
(synapse-sdk from PyPI): list agents, publish a release, run it, poll the job,
read and tail its console log, on every agent the server has. Prints one JSON summary line; exits non-zero
on the first failed check, saying which."""

import io
import json
import os
import sys
import time

from rich.console import Console
from synapse_sdk.cli.auth import AuthConfig
from synapse_sdk.cli.plugin.job import tail_job_logs
from synapse_sdk.clients.backend import BackendClient


def check(ok, what):
    if not ok:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)


client = BackendClient(os.environ["SERVER"], access_token=os.environ["TOKEN"])

agents = client.list_agents()
check(len(agents) >= 1 and all(a.is_connected for a in agents), f"list_agents: {agents}")

release = client.create_plugin_release(
    {"plugin": "conformance", "version": "2.0.0", "config": json.loads(os.environ["CONFIG"]), "debug": True},
    file=os.environ["ZIP"],
)
check(release.get("id") and release.get("version") == "2.0.0", f"create_plugin_release: {release}")


def run_on(agent):
    """Runs the context action on agent and checks the job and its console log."""
    job = client.run_plugin("conformance", {"agent": agent.id, "action": "context", "params": {}, "debug": True})
    check(job.get("id") and job.get("status") in ("PENDING", "RUNNING"), f"run_plugin: {job}")

    deadline = time.time() + 120
    while True:
        job = client.get_job(job["id"])
        if job["status"] in ("SUCCEEDED", "FAILED", "STOPPED"):
            break
        check(time.time() < deadline, f"job did not end: {job}")
        time.sleep(0.2)
    check(job["status"] == "SUCCEEDED", f"job status on {agent.name}: {job}")
    overall = (job.get("progress_record") or {}).get("current_progress", {}).get("overall")
    check(overall == 100, f"progress_record: {job.get('progress_record')}")

    frames, complete, lines = [], False, 0
    for line in client.tail_job_console_logs(job["id"]):
        if not line or not line.startswith("data: "):
            continue
        event = json.loads(line[6:])
        frames.append(event.get("type"))
        if event.get("type") == "log":
            inner = event["data"]
            check(inner.startswith("data: "), f"log frame: {inner!r}")
            message = json.loads(inner[6:].rstrip("\n"))
            check(message.get("type") == "log" and message.get("message", "").endswith("\n"), f"inner frame: {message}")
            lines += 1
        if event.get("type") == "complete":
            complete = True
            break
    # The tail ends once the job's agent has written its last line; the list
    # read after it holds the same lines.
    logs = client.list_job_console_logs(job["id"])
    check(isinstance(logs, list) and len(logs) > 0, f"list_job_console_logs: {logs!r:.200}")
    check(complete and frames[0] == "connected" and lines == len(logs), f"tail frames {frames[:3]}…, {lines} lines vs {len(logs)}")

    # What `synapse plugin job logs ID -f` prints: the Python CLI prints every
    # stream line that is not "data: …" as it is, so id: or comment lines
    # would show. Its output past its two header lines must be the console
    # lines exactly (markup and wrapping off: the lines are printed as they are;
    # non-ASCII lines need the stream's charset=utf-8, else requests decodes
    # them as ISO-8859-1).
    out = io.StringIO()
    console = Console(file=out, markup=False, highlight=False, emoji=False, soft_wrap=True, width=100000)
    tail_job_logs(job["id"], AuthConfig(host=os.environ["SERVER"], access_token=os.environ["TOKEN"]), console)
    printed = out.getvalue().split("\n", 3)
    check(len(printed) == 4 and printed[0].startswith("[dim]Tailing logs for job") and printed[2] == "",
          f"CLI header: {printed[:3]}")
    want = "".join(line.expandtabs(8) + "\n" for line in logs)  # rich prints a tab as spaces (Ray's log lines have tabs)
    diff = [(got, line) for got, line in zip(printed[3].split("\n"), want.split("\n")) if got != line][:1]
    check(printed[3] == want, f"CLI printed {len(printed[3])} characters, want the console lines' {len(want)}; first difference {diff!r:.1000}")

    return {"agent": agent.name, "job": job["id"], "overall": overall, "console_lines": len(logs)}


runs = [run_on(agent) for agent in agents]
print(json.dumps({"agents": len(agents), "release": release["id"], "runs": runs}))
