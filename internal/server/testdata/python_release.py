"""Publishes Python plugins to a running `synapse server` with the Python SDK's own CLI
(`synapse plugin publish`) and runs them with its BackendClient, on every agent the server has:
the synapse-sdk sample trio (download -> convert -> train, each result feeding the next) must
succeed with their results, a progress record and log entries; a plugin whose requirement cannot
be installed must fail with pip's message. Prints one JSON summary line; exits non-zero on the
first failed check, saying which."""

import json
import os
import subprocess
import sys
import time

import requests

from synapse_sdk.clients.backend import BackendClient

SERVER, TOKEN = os.environ['SERVER'], os.environ['TOKEN']
client = BackendClient(SERVER, access_token=TOKEN)
HEADERS = {'Synapse-Access-Token': f'Token {TOKEN}'}


def check(ok, what):
    if not ok:
        print(f'FAIL: {what}', file=sys.stderr)
        sys.exit(1)


def publish(path):
    cli = os.path.join(os.path.dirname(sys.executable), 'synapse')
    p = subprocess.run([cli, 'plugin', 'publish', '-p', path, '--host', SERVER, '--token', TOKEN, '-y'],
                       capture_output=True, text=True, timeout=300)
    check(p.returncode == 0 and 'Published successfully' in p.stdout, f'synapse plugin publish {path}: {p.returncode}\n{p.stdout}\n{p.stderr}')


def run(code, agent, action, params):
    job = client.run_plugin(code, {'agent': agent.id, 'action': action, 'params': params, 'debug': True})
    check(job.get('id') and job.get('status') in ('PENDING', 'RUNNING'), f'run_plugin {action}: {job}')
    started = time.time()
    deadline = started + 600
    while True:
        job = client.get_job(job['id'])
        if job['status'] in ('SUCCEEDED', 'FAILED', 'STOPPED'):
            break
        check(time.time() < deadline, f'job {action} on {agent.name} did not end: {job}')
        time.sleep(0.5)
    logs = requests.get(f'{SERVER}/v2/job-logs/', params={'job': job['id']}, headers=HEADERS, timeout=30).json()
    console = client.list_job_console_logs(job['id'])
    return job, logs, console, time.time() - started


def entries(logs):
    check(isinstance(logs, dict) and isinstance(logs.get('data'), list), f'GET /v2/job-logs/: {logs}')
    return logs['data']


publish(os.environ['PLUGIN'])
publish(os.environ['BAD_PLUGIN'])
agents = client.list_agents()
summary = {'agents': [a.name for a in agents], 'runs': []}
for agent in agents:
    params = {'dataset': 7}
    for action, want in [
        ('download', {'dataset': 7, 'dataset_path': '/tmp/datasets/7'}),
        ('convert', {'dataset_path': '/tmp/datasets/7', 'converted_path': '/tmp/datasets/7/yolo'}),
        ('train', {'model_path': '/tmp/models/best.pt', 'metrics': {'mAP50': 0.85, 'mAP50-95': 0.72}}),
    ]:
        job, logs, console, took = run('python-sample', agent, action, params)
        text = '\n'.join(str(c) for c in console)
        check(job['status'] == 'SUCCEEDED', f'{action} on {agent.name}: {job}\n{text[-3000:]}')
        check(job['result'] == want, f'{action} on {agent.name}: result {job["result"]}, want {want}')
        check(job.get('progress_record'), f'{action} on {agent.name}: no progress record: {job}')
        messages = [(e.get('data') or {}).get('content', '') for e in entries(logs) if isinstance(e.get('data'), dict)]
        said = {'download': 'Downloading dataset 7...', 'convert': 'Converting dataset at /tmp/datasets/7...',
                'train': 'Training on /tmp/datasets/7/yolo for 5 epochs...'}[action]
        check(said in messages, f'{action} on {agent.name}: no log entry {said!r}: {logs}')
        check(len(console) > 0, f'{action} on {agent.name}: empty console log')
        summary['runs'].append({'agent': agent.name, 'action': action, 'job': job['id'], 'seconds': round(took, 1),
                                'log_entries': len(entries(logs)), 'console_lines': len(console), 'messages': messages})
        params = {'dataset_path': want.get('dataset_path')} if action == 'download' else {'converted_path': want.get('converted_path')}

    # An action that reports progress and metrics: both records filled by the worker's JobLogger.
    job, logs, console, took = run('python-sample', agent, 'report', {'steps': 4})
    check(job['status'] == 'SUCCEEDED' and job['result'] == {'steps': 4}, f'report on {agent.name}: {job}')
    check('report' in json.dumps(job.get('progress_record')), f'report on {agent.name}: progress record {job.get("progress_record")}')
    check('accuracy' in json.dumps(job.get('metrics_record')), f'report on {agent.name}: metrics record {job.get("metrics_record")}')
    summary['runs'].append({'agent': agent.name, 'action': 'report', 'job': job['id'], 'seconds': round(took, 1),
                            'progress_record': job.get('progress_record'), 'metrics_record': job.get('metrics_record')})

    job, logs, console, took = run('python-bad', agent, 'download', {'dataset': 1})
    text = '\n'.join(str(c) for c in console)
    check(job['status'] == 'FAILED', f'the bad plugin on {agent.name}: {job}')
    check('synapse-go-no-such-package-4f2a' in json.dumps(job['result']), f'the bad plugin on {agent.name}: result {job["result"]}')
    check('No matching distribution found for synapse-go-no-such-package-4f2a' in text, f'the bad plugin on {agent.name}: console log lacks pip\'s message:\n{text[-3000:]}')
    summary['runs'].append({'agent': agent.name, 'action': 'bad', 'job': job['id'], 'seconds': round(took, 1), 'status': job['status']})
print(json.dumps(summary))
