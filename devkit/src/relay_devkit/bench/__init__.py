"""`make bench`: Relay's own costs on the local stack, each beside a baseline measured in the
same run (docs/benchmarks.md). ``python -m relay_devkit.bench`` runs it; the modules here hold the
harness's parts: statistics, the load generator, /proc readings, the metrics files, the report."""
