"""The sink: Kafka offset ranges to Kusto batches, exactly once.

Modules follow a record's path: ``config`` → ``plan`` → ``read`` → ``decode`` →
``batch`` → ``ingest`` → ``commit``; ``definitions`` wires them into Dagster.
"""
