"""The parbench harness: scenario -> workload -> target -> collector ->
checks/metrics -> report.  It drives every implementation, the reference
included, through ``harness.targets.base.Target``."""
