"""The synapse-sdk sample actions, unchanged."""

from synapse_sdk.plugins.testing.sample_actions import ConvertAction, DownloadAction, TrainAction

__all__ = ['ConvertAction', 'DownloadAction', 'TrainAction']
