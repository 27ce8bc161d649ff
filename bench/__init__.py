"""prowtrace's benchmarks: ``uv run python -m bench [--quick] [--out report.json]``.

Each benchmark runs what it measures in its own process, pinned to one core, with the OTLP
receiver, the load generator and the Pub/Sub emulator on the other core(s), so helpers never
steal the measured core. docs/PERFORMANCE.md describes the method and publishes a run.
"""
