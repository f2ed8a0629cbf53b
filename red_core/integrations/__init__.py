"""Adapters that hand RED token rewards to RL training frameworks.

Each adapter is its own module and imports its framework when it is imported, never before, so
`import red_core` works without any of them installed:

- `red_core.integrations.verl`: a verl reward manager (`REDRewardManager`, registered as "red") that
  fills verl's token-level reward tensor (batch, response_length) with RED credit. Needs the `verl`
  extra: `pip install '.[verl]'`. See examples/verl/README.md.
"""
