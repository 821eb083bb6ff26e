"""The Python side of scripts/bench-peer.sh: the same actions as ../../go-plugin."""

from pydantic import BaseModel, Field

from synapse_sdk.plugins.action import BaseAction


class NoopParams(BaseModel):
    pass


class NoopAction(BaseAction[NoopParams]):
    """Returns {"ok": true} and nothing else."""

    action_name = 'noop'
    params_model = NoopParams

    def execute(self):
        return {'ok': True}


class EventsParams(BaseModel):
    n: int = Field(1000, ge=0, le=1_000_000, description='How many log events to write.')


class EventsAction(BaseAction[EventsParams]):
    """Logs n events ('event', {'i': i}) and returns {'events': n}."""

    action_name = 'events'
    params_model = EventsParams

    def execute(self):
        for i in range(self.params.n):
            self.ctx.log('event', {'i': i})
        return {'events': self.params.n}
