"""The EMF metrics the Lambda handlers emit one by one: what the core counts and each Bedrock call's latency.

Each metric is printed at once with its own dimensions (Powertools' ``single_metric``), so the invocation's other
metrics (``Metrics.add_metric``, flushed at its end) keep theirs. Powertools comes with the ``lambda`` extra only
and the client imports the core without it, so it is imported on first use, in a handler.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aws_lambda_powertools.metrics import MetricUnit

#: How long one Bedrock call that got an answer took (ms), with the model id as its ``model`` dimension.
BEDROCK_LATENCY = "BedrockLatency"


@dataclass(frozen=True, slots=True)
class EmfMetrics:
    """Metrics printed at once in ``namespace``: ``count`` and ``bedrock_latency`` are the core's listeners."""

    namespace: str

    def emit(self, name: str, unit: MetricUnit, value: float, dimensions: Mapping[str, str]) -> None:
        """One metric with exactly ``dimensions``, printed now."""
        from aws_lambda_powertools.metrics import single_metric

        with single_metric(name=name, unit=unit, value=value, namespace=self.namespace) as metric:
            for dimension, dimension_value in dimensions.items():
                metric.add_dimension(name=dimension, value=dimension_value)

    def count(self, name: str, **dimensions: str) -> None:
        """What the core counts (a model marked unavailable, an index write that failed): 1 of ``name``."""
        from aws_lambda_powertools.metrics import MetricUnit

        self.emit(name, MetricUnit.Count, 1, dimensions)

    def bedrock_latency(self, model_id: str, milliseconds: float) -> None:
        """One Bedrock call's latency, by model: a request that fails over, or a batch, may call several."""
        from aws_lambda_powertools.metrics import MetricUnit

        self.emit(BEDROCK_LATENCY, MetricUnit.Milliseconds, milliseconds, {"model": model_id})
