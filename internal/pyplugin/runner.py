"""synapse-go's host for the Python SDK's own worker; the synapse CLI runs it with `python -c`.

    run      runs synapse_sdk.plugins.entrypoint.main() unchanged (params from SYNAPSE_ACTION_PARAMS or
             _FILE, the action from SYNAPSE_ACTION_ENTRYPOINT, the result between the markers on stdout),
             with one difference: when the worker would log to the console (no backend JobLogger), its
             logger writes synapse-go's JSON events (docs/logging.md) as lines on stdout, so the
             synapse CLI renders them like a Go plugin's. The run's error is an error line there too
             (a params model that rejects the params: kind validation, without a traceback).
    actions  prints the config's actions as JSON: name, description and the params model's JSON Schema
             (the SDK's PluginDiscovery and pydantic's model_json_schema).
"""

import datetime
import json
import os
import sys


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace('+00:00', 'Z')


def run():
    import warnings

    # The SDK's own modules warn about themselves at import; a plugin's warnings still show.
    warnings.filterwarnings('ignore', category=UserWarning, module=r'synapse_sdk(\.|$)')

    from synapse_sdk.loggers import ConsoleLogger
    from synapse_sdk.plugins import entrypoint

    out = sys.stdout
    action = os.environ.get('SYNAPSE_GO_ACTION', '')

    def emit(ev):
        ev.setdefault('time', _now())
        if action:
            ev.setdefault('action', action)
        out.write(json.dumps(ev, default=str, separators=(',', ':')) + '\n')
        out.flush()

    class EventLogger(ConsoleLogger):
        """The worker's console logger, writing JSON events instead of text."""

        def __init__(self):
            super().__init__()
            self._counts = {}

        def _log_impl(self, event, data, file, step, level=None):
            lv = getattr(level, 'value', None) or 'info'
            if event in ('message', 'debug') and isinstance(data.get('content'), str):
                emit({'type': 'message', 'level': lv, 'message': data['content'], 'category': step or ''})
                return
            ev = {'type': 'log', 'level': lv, 'event': event, 'data': data, 'category': step or ''}
            if file:
                ev['file_name'] = str(file)
            emit(ev)

        def set_progress(self, current, total, step=None):
            self._counts[step if step is not None else self._current_step] = (current, total)
            super().set_progress(current, total, step)

        def _on_progress(self, progress, step):
            current, total = self._counts.pop(step, (0, 0))
            ev = {'type': 'progress', 'category': step or ''}
            if progress.status == 'failed':
                ev['failed'] = True
            else:
                ev.update(current=current, total=total, percent=progress.percent)
                if progress.time_remaining is not None:
                    ev['eta_seconds'] = progress.time_remaining
            emit(ev)

        def _on_metrics(self, step, metrics):
            emit({'type': 'metrics', 'category': step, 'values': metrics})

        def _on_finish(self):
            pass

        def log_event(self, event, data, file=None):
            self._log_impl(event, dict(data), file, self._current_step, None)

        def log_metric(self, category, key, value, **metrics):
            emit({'type': 'metric', 'category': category, 'key': key, 'value': value, 'data': metrics})

        def log_message(self, message, level=None, *, context=None):
            lv = getattr(level or context, 'value', None) or 'info'
            emit({'type': 'message', 'level': lv, 'message': str(message)})

    create = entrypoint._create_logger

    def create_logger(client, job_id):
        logger = create(client, job_id)
        return EventLogger() if isinstance(logger, ConsoleLogger) else logger

    entrypoint._create_logger = create_logger
    try:
        entrypoint.main()
    except Exception as e:  # the worker has reported it to a backend, if any
        if _report(e, emit) == 'validation':
            sys.exit(1)
        raise


def _report(e, emit):
    """A params model's rejection is a validation error (exit code 2), anything else an execution error."""
    err = {'kind': 'execution', 'message': f'{type(e).__name__}: {e}', 'action': os.environ.get('SYNAPSE_GO_ACTION', '')}
    try:
        from pydantic import ValidationError

        from synapse_sdk.plugins import entrypoint

        model = getattr(entrypoint._load_action_class(), 'params_model', None)
        if isinstance(e, ValidationError) and model is not None and e.title == model.__name__:
            fields = []
            for d in e.errors():
                loc = '.'.join(str(p) for p in d.get('loc', ()))
                fields.append({'field': loc, 'message': d.get('msg', '')})
            err = {'kind': 'validation', 'message': str(e), 'action': err['action'], 'fields': fields}
    except Exception:
        pass
    emit({'type': 'error', 'error': err})
    return err['kind']


def actions():
    from synapse_sdk.plugins.discovery import PluginDiscovery

    discovery = PluginDiscovery.from_path(os.getcwd())
    rows = []
    for name in discovery.list_actions():
        row = {'name': name, 'description': discovery.get_action_config(name).description}
        try:
            cls = discovery.get_action_class(name)
        except Exception as e:
            row['error'] = f'{type(e).__name__}: {e}'
            rows.append(row)
            continue
        if not row['description']:
            row['description'] = ((getattr(cls, '__doc__', None) or '').strip().splitlines() or [''])[0]
        model = discovery.get_action_params_model(name)
        row['schema'] = model.model_json_schema() if model is not None else {'type': 'object'}
        rows.append(row)
    json.dump(rows, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    sys.path.insert(0, os.getcwd())
    {'run': run, 'actions': actions}[sys.argv[1]]()
