"""Per-call task mode, side by side (scripts/bench-peer.sh).

Theirs: the Python SDK's own Ray actor executor (synapse_sdk.plugins.executors.ray.task.RayActorExecutor),
set up as `synapse plugin run --mode task` sets it up, kept warm: one actor, N calls of
`executor.execute(entrypoint, params)`, each timed here.

Ours: a long-lived Go process (scripts/bench-peer/taskcall) with one ray.TaskExecutor, whose Serve worker is
deployed once and reused, driven one call at a time over its stdin; it times each call itself.

Calls alternate: ours, theirs, ours, theirs, ... for each action. Every result is checked. Samples are
appended to --out as lines `task-call ACTION SIDE MILLISECONDS` (and `task-call.validate` /
`task-call.call` for the two parts of ours). Any failure raises: the benchmark must not report a number for
a call that did not succeed.

    python peer_task.py --plugin DIR --ray-address GCS_ADDRESS --calls N --out FILE -- GO_DRIVER ARGS...
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

# The two actions and the results both plugins must return.
ACTIONS = [
    ('noop', {}, {'ok': True}),
    ('events', {'n': 1000}, {'events': 1000}),
]


class GoDriver:
    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        line = self.proc.stdout.readline().strip()
        if line != 'ready':
            raise RuntimeError(f'the Go driver {argv[0]} did not start (it printed {line!r}; its stderr is above)')

    def call(self, action: str, params: dict) -> tuple[float, float, float, object]:
        self.proc.stdin.write(f'{action} {json.dumps(params)}\n')
        self.proc.stdin.flush()
        line = self.proc.stdout.readline().strip()
        if not line:
            raise RuntimeError(f'the Go driver ended during a call of {action} (exit {self.proc.wait()})')
        kind, _, rest = line.partition(' ')
        if kind != 'ok':
            raise RuntimeError(f'ours, task call of {action}: {rest}')
        total, validate, call, result = rest.split(' ', 3)
        return int(total) / 1000, int(validate) / 1000, int(call) / 1000, json.loads(result)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument('--plugin', required=True, help='the Python plugin directory')
    ap.add_argument('--ray-address', required=True, help='the Ray cluster (GCS) address for ray.init')
    ap.add_argument('--calls', type=int, default=100)
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--out', required=True)
    ap.add_argument('go', nargs=argparse.REMAINDER)
    args = ap.parse_args()
    go_argv = args.go[1:] if args.go[:1] == ['--'] else args.go
    if not go_argv:
        ap.error('the Go driver command is required after --')

    from pathlib import Path

    from synapse_sdk.plugins.discovery import PluginDiscovery
    from synapse_sdk.plugins.executors.ray.task import RayActorExecutor

    path = Path(args.plugin).resolve()
    sys.path.insert(0, str(path))
    discovery = PluginDiscovery.from_path(path)
    config = discovery.config
    # As synapse_sdk.cli.plugin.test.test_plugin builds it for `synapse plugin run --mode task`.
    executor = RayActorExecutor(
        working_dir=path,
        ray_address=args.ray_address,
        env={**config.env},
        package_manager=config.package_manager,
        package_manager_options=config.package_manager_options or None,
        wheels_dir=config.wheels_dir,
        runtime_env=config.runtime_env or None,
    )
    entrypoints = {name: discovery.get_action_entrypoint(name) for name, _, _ in ACTIONS}

    def theirs(action: str, params: dict) -> tuple[float, object]:
        start = time.perf_counter_ns()
        result = executor.execute(entrypoints[action], params)
        return (time.perf_counter_ns() - start) / 1e6, result

    def check(side: str, action: str, got: object, want: object) -> None:
        if got != want:
            raise RuntimeError(f'{side}, task call of {action}: result {got!r}, want {want!r}')

    go = GoDriver(go_argv)
    try:
        # Warm both: the first call deploys our Serve worker / creates their actor (and Ray builds the
        # actor's pip environment once); none of these calls is counted.
        for _ in range(args.warmup):
            for action, params, want in ACTIONS:
                check('ours', action, go.call(action, params)[3], want)
                check('theirs', action, theirs(action, params)[1], want)
        with open(args.out, 'a') as out:
            for _ in range(args.calls):
                for action, params, want in ACTIONS:
                    total, validate, call, result = go.call(action, params)
                    check('ours', action, result, want)
                    ms, result = theirs(action, params)
                    check('theirs', action, result, want)
                    out.write(f'task-call {action} ours {total:.3f}\n')
                    out.write(f'task-call.validate {action} ours {validate:.3f}\n')
                    out.write(f'task-call.call {action} ours {call:.3f}\n')
                    out.write(f'task-call {action} theirs {ms:.3f}\n')
    finally:
        executor.shutdown()
        go.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
