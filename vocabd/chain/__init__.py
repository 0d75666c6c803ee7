"""The chain's jobs: synthesize, mix, train, poll, evaluate, and the pipeline that runs them in phases."""
