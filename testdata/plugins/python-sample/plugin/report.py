from pydantic import BaseModel, Field

from synapse_sdk.plugins.action import BaseAction


class ReportParams(BaseModel):
    steps: int = Field(3, ge=1, le=100, description='How many progress steps to report.')
    fail: bool = False


class ReportAction(BaseAction[ReportParams]):
    """Reports progress, metrics and messages."""

    action_name = 'report'
    params_model = ReportParams

    def execute(self):
        log = self.ctx.logger
        log.info('starting the report')
        for i in range(1, self.params.steps + 1):
            log.set_progress(i, self.params.steps, step='report')
        log.set_metrics({'accuracy': 0.9, 'steps': self.params.steps}, step='report')
        print('printed by the action')
        if self.params.fail:
            raise RuntimeError('asked to fail')
        return {'steps': self.params.steps}
