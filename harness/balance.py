"""The per-partition load keyed placement predicts from the keys that arrived.

parallelize() with ``partition-key(TEMPLATE)`` puts a message on partition
``g_str_hash(rendered key) % N`` (``parbench.reference.partition``).  When the
template is exactly the scenario's key field (``$HOST``, ``${HOST}``), the
rendered key is the key name itself, so the messages of each key index
predict the load of every partition; any other template needs the whole
message, and no prediction is made.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from parbench.reference.partition import predict_keyed_load
from parbench.reference.template import TemplateError, compile_template


def key_counts(keys: np.ndarray, n_keys: int) -> np.ndarray:
    """Messages per key index 0..n_keys-1.  A key index out of range (a
    garbled trailer; the checker counts it as unexpected) is left out: a
    bincount over it would allocate up to 2^32 counters."""
    keys = np.asarray(keys)
    return np.bincount(keys[keys < n_keys].astype(np.int64), minlength=n_keys)[:n_keys]


def predicted_partitions(scenario: Any, partitions: int, counts: np.ndarray) -> list[int] | None:
    """Messages per partition index under keyed placement, given ``counts``
    messages of each key index; None for round-robin, no parallelize(), or a
    key template that is not the scenario's key field itself."""
    template = scenario.pipeline.partition_key
    if not partitions or not template:
        return None
    try:
        name = compile_template(template).single_name
    except TemplateError:
        return None
    if name != scenario.workload.key_field:
        return None
    keys = scenario.workload.keys
    weights = np.zeros(len(keys), dtype=np.int64)
    n = min(len(keys), len(counts))
    weights[:n] = counts[:n]
    load = predict_keyed_load([k.encode("utf-8") for k in keys], partitions, weights=weights)
    return np.rint(load).astype(np.int64).tolist()
