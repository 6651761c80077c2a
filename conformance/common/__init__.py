"""What the suite, the report and the benchmark share: atomic files, machine facts, argument types.

Nothing here imports the three packages above it.
"""
