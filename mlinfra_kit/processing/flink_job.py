"""The Flink job :mod:`mlinfra_kit.processing.flink` runs: the kit's window features in
Flink SQL, over an event CSV, on a local mini-cluster; prints one JSON line per window.

Run by the Flink environment's Python (``python flink_job.py EVENTS.csv WINDOW_S SLIDE_S
OUT_OF_ORDERNESS_S``); it imports nothing from the kit, only PyFlink.
"""

import json
import sys

__all__ = ["CATEGORIES", "interval", "main", "query"]

CATEGORIES = ("computer-vision", "natural-language-processing", "mlops", "other")


def interval(seconds: int) -> str:
    """A Flink SQL interval of whole seconds (``HH:MM:SS``; plain seconds allow only three
    digits)."""
    hours, rest = divmod(seconds, 3600)
    return f"INTERVAL '{hours}:{rest // 60:02d}:{rest % 60:02d}' HOUR TO SECOND"


def query(window_s: int, slide_s: int) -> str:
    """Per user and HOP window: events per category, clicks, all events."""
    counts = ", ".join(
        f"SUM(CASE WHEN category = '{c}' THEN 1 ELSE 0 END) AS `{c}`" for c in CATEGORIES
    )
    return f"""
        SELECT user_id, window_start, window_end, {counts},
               SUM(CASE WHEN kind = 'click' THEN 1 ELSE 0 END) AS clicks, COUNT(*) AS total
        FROM TABLE(HOP(TABLE events, DESCRIPTOR(ts), {interval(slide_s)}, {interval(window_s)}))
        GROUP BY user_id, window_start, window_end
    """


def main(path: str, window_s: int, slide_s: int, out_of_orderness_s: int) -> None:
    from pyflink.table import EnvironmentSettings, TableEnvironment

    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    env.get_config().set("table.local-time-zone", "UTC")  # windows start at UTC epoch multiples
    env.get_config().set("parallelism.default", "1")
    env.execute_sql(f"""
        CREATE TABLE events (
          event_id STRING, user_id STRING, category STRING, kind STRING, event_time DOUBLE,
          ts AS TO_TIMESTAMP_LTZ(CAST(FLOOR(event_time * 1000) AS BIGINT), 3),
          WATERMARK FOR ts AS ts - {interval(out_of_orderness_s)}
        ) WITH ('connector' = 'filesystem', 'path' = '{path}', 'format' = 'csv')
    """)
    with env.execute_sql(query(window_s, slide_s)).collect() as rows:
        for row in rows:
            user, start, end, *values = row
            print(json.dumps([user, start.isoformat(), end.isoformat(), *values]), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
