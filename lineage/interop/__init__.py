"""Interoperability with other tools: MLflow (the tracking-store plugin, import), DVC,
OpenLineage and PROV."""
