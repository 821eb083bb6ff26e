"""Tests of synapse_bridge.WorkerBridge against a fake worker (python3 -m pytest)."""

import asyncio
import json
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from synapse_bridge import WorkerBridge  # noqa: E402

# A fake plugin worker speaking docs/protocol.md. Actions:
#   echo: params {"text", "events" (default 1), "delay"} -> that many events, then a result
#   slow: one "started" event, then waits for a cancel -> error with cause canceled
#         (the cancelled id is appended to $FAKE_CANCELS)
#   die:  exits with status 3
FAKE_WORKER = r'''#!/usr/bin/env python3
import json, os, sys, threading, time

lock = threading.Lock()
slow = set()

def send(msg):
    with lock:
        sys.stdout.write(json.dumps(msg) + "\n")
        sys.stdout.flush()

def echo(rid, params):
    for i in range(params.get("events", 1)):
        send({"type": "event", "id": rid, "event": {"type": "log", "event": "step", "data": {"i": i, "text": params.get("text", "")}}})
        time.sleep(params.get("delay", 0))
    send({"type": "result", "id": rid, "result": {"text": params.get("text", "")}})

ready = {"type": "ready", "protocol": 1, "pid": os.getpid(), "actions": [{"name": "echo"}, {"name": "slow"}, {"name": "die"}]}
if os.environ.get("SYNAPSE_WORKER_LISTEN"):
    ready["direct"] = {"port": 4321, "token": "ab" * 16, "listen": os.environ["SYNAPSE_WORKER_LISTEN"]}
send(ready)
for line in sys.stdin:
    req = json.loads(line)
    rid = req.get("id")
    if req["type"] == "ping":
        send({"type": "pong", "id": rid})
    elif req["type"] == "cancel":
        if rid in slow:
            slow.discard(rid)
            with open(os.environ["FAKE_CANCELS"], "a") as f:
                f.write(rid + "\n")
            send({"type": "error", "id": rid, "error": {"kind": "execution", "message": "context canceled", "action": "slow", "cause": "canceled"}})
    elif req["action"] == "echo":
        threading.Thread(target=echo, args=(rid, req.get("params") or {})).start()
    elif req["action"] == "slow":
        slow.add(rid)
        send({"type": "event", "id": rid, "event": {"type": "log", "event": "started"}})
    elif req["action"] == "die":
        os._exit(3)
'''


def write_script(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o644)  # the bridge must make it executable itself
    return str(path)


@pytest.fixture
def bridge(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_CANCELS", str(tmp_path / "cancels"))
    b = WorkerBridge(write_script(tmp_path, "fake-worker", FAKE_WORKER))
    yield b
    b.close()


async def collect(agen):
    return [line async for line in agen]


def expected(msg):
    # The fake writes json.dumps with default separators; lines must come back byte for byte.
    return (json.dumps(msg) + "\n").encode()


def wait_for(cond, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


def test_ready(bridge):
    assert bridge.pid == bridge._proc.pid
    assert [a["name"] for a in bridge.actions] == ["echo", "slow", "die"]
    assert bridge.alive()
    assert os.stat(bridge._proc.args[0]).st_mode & 0o777 == 0o755


def test_direct_from_ready(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_CANCELS", str(tmp_path / "cancels"))
    path = write_script(tmp_path, "fake-worker", FAKE_WORKER)
    b = WorkerBridge(path)
    try:
        assert b.direct is None  # the worker was not asked to listen
    finally:
        b.close()
    b = WorkerBridge(path, env={"SYNAPSE_WORKER_LISTEN": "127.0.0.1:0"})
    try:
        assert b.direct == {"port": 4321, "token": "ab" * 16}
    finally:
        b.close()


def test_run_streams_lines_exactly(bridge):
    lines = asyncio.run(collect(bridge.stream("echo", {"text": "hi"})))
    rid = json.loads(lines[0])["id"]
    assert lines == [
        expected({"type": "event", "id": rid, "event": {"type": "log", "event": "step", "data": {"i": 0, "text": "hi"}}}),
        expected({"type": "result", "id": rid, "result": {"text": "hi"}}),
    ]
    assert bridge.in_flight() == 0


def test_concurrent_runs_get_their_own_lines(bridge):
    async def main():
        return await asyncio.gather(
            collect(bridge.stream("echo", {"text": "a", "events": 5, "delay": 0.01})),
            collect(bridge.stream("echo", {"text": "b", "events": 5, "delay": 0.01})),
        )
    for text, lines in zip("ab", asyncio.run(main())):
        msgs = [json.loads(x) for x in lines]
        assert len({m["id"] for m in msgs}) == 1
        assert [m["type"] for m in msgs] == ["event"] * 5 + ["result"]
        assert [m["event"]["data"]["text"] for m in msgs[:5]] == [text] * 5
        assert msgs[-1]["result"] == {"text": text}


def test_closing_early_sends_cancel(bridge, tmp_path):
    async def main():
        agen = bridge.stream("slow")
        first = json.loads(await agen.__anext__())
        await agen.aclose()
        return first["id"]
    rid = asyncio.run(main())
    cancels = tmp_path / "cancels"
    assert wait_for(lambda: cancels.exists() and cancels.read_text() == rid + "\n")
    # The worker's canceled error ends the abandoned run in the bridge too.
    assert wait_for(lambda: bridge.in_flight() == 0)


def test_cancelling_the_consumer_task_sends_cancel(bridge, tmp_path):
    async def main():
        started = asyncio.Event()
        ids = []

        async def consume():
            async for line in bridge.stream("slow"):
                ids.append(json.loads(line)["id"])
                started.set()
        task = asyncio.create_task(consume())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return ids[0]
    rid = asyncio.run(main())
    cancels = tmp_path / "cancels"
    assert wait_for(lambda: cancels.exists() and cancels.read_text() == rid + "\n")


def test_worker_death_fails_runs_in_flight(bridge):
    async def main():
        slow = bridge.stream("slow", job_id="j1")
        await slow.__anext__()  # the slow run is in flight
        died = await collect(bridge.stream("die"))
        rest = [line async for line in slow]
        return died, rest
    died, rest = asyncio.run(main())
    for lines, action in ((died, "die"), (rest, "slow")):
        assert len(lines) == 1
        msg = json.loads(lines[0])
        assert msg["type"] == "error"
        assert msg["error"]["kind"] == "execution"
        assert msg["error"]["cause"] == "worker_exited"  # the Go client's ErrWorkerLost
        assert msg["error"]["message"] == ("the plugin worker exited (status 3) during the run; "
                                           "Serve replaces this worker, so the call can be retried")
        assert msg["error"]["action"] == action
        assert lines[0].endswith(b"\n")
    assert json.loads(rest[0])["error"]["job_id"] == "j1"
    assert not bridge.alive()
    # Later runs fail at once; pings fail.
    later = asyncio.run(collect(bridge.stream("echo", job_id="j2")))
    msg = json.loads(later[0])
    assert len(later) == 1 and msg["type"] == "error" and msg["error"]["kind"] == "execution"
    assert msg["error"]["message"].startswith("the plugin worker exited (status 3)")
    assert msg["error"]["action"] == "echo" and msg["error"]["job_id"] == "j2"
    assert asyncio.run(bridge.ping()) is False


def test_ping(bridge):
    assert asyncio.run(bridge.ping(timeout=5)) is True
    assert bridge.in_flight() == 0


def test_ping_times_out(tmp_path):
    # A worker that is ready but never answers.
    mute = "#!/usr/bin/env python3\nimport json, sys, time\n" \
           "print(json.dumps({'type': 'ready', 'protocol': 1, 'pid': 1, 'actions': []}), flush=True)\n" \
           "time.sleep(60)\n"
    b = WorkerBridge(write_script(tmp_path, "mute", mute))
    try:
        assert asyncio.run(b.ping(timeout=0.2)) is False
        assert b.in_flight() == 0
    finally:
        b.close(timeout=0.5)


def test_first_line_not_ready(tmp_path):
    bad = "#!/usr/bin/env python3\nprint('hello, I am not a worker', flush=True)\nimport time; time.sleep(60)\n"
    with pytest.raises(RuntimeError, match="did not start with a ready line.*hello"):
        WorkerBridge(write_script(tmp_path, "bad", bad))


def test_dies_before_ready(tmp_path):
    dead = "#!/usr/bin/env python3\nimport sys\nsys.stderr.write('boom\\n')\nsys.exit(5)\n"
    with pytest.raises(RuntimeError, match=r"exited \(status 5\) before it was ready.*stderr"):
        WorkerBridge(write_script(tmp_path, "dead", dead))


def test_relative_binary_with_cwd_and_env(tmp_path, monkeypatch):
    monkeypatch.delenv("FAKE_CANCELS", raising=False)
    write_script(tmp_path, "synapse-plugin", FAKE_WORKER)
    b = WorkerBridge("./synapse-plugin", cwd=str(tmp_path), env={"FAKE_CANCELS": str(tmp_path / "c")})
    try:
        lines = asyncio.run(collect(b.stream("echo", {"text": "x"})))
        assert json.loads(lines[-1])["result"] == {"text": "x"}
        assert asyncio.run(b.ping())
    finally:
        b.close()
    assert not b.alive()


def test_close_ends_worker(bridge):
    bridge.close()
    assert not bridge.alive()
    assert bridge._proc.returncode == 0


def test_oversized_request_is_refused_not_sent(bridge, monkeypatch):
    import synapse_bridge
    monkeypatch.setattr(synapse_bridge, "MAX_LINE", 200)
    lines = asyncio.run(collect(bridge.stream("echo", {"text": "한" * 100}, job_id="j9")))
    msg = json.loads(lines[0])
    assert len(lines) == 1 and msg["type"] == "error" and msg["error"]["kind"] == "validation"
    assert "the plugin worker reads at most 200" in msg["error"]["message"]
    assert msg["error"]["job_id"] == "j9"
    assert bridge.alive()  # the worker never saw it
    # Non-ASCII text is sent as UTF-8, not as 6-byte escapes: this fits.
    monkeypatch.setattr(synapse_bridge, "MAX_LINE", 400)
    lines = asyncio.run(collect(bridge.stream("echo", {"text": "한" * 100})))
    assert json.loads(lines[-1]) ["type"] == "result"
