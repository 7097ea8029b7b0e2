"""A serverless cold start, run as a script in a fresh Python process by
:func:`mlinfra_kit.deployment.serverless.measure_cold_start` (``python cold_start.py MODEL
WARM_CALLS QUANTIZE``): it times the imports, the model load and the first request, then
the warm calls, and prints one line of JSON. Run as a file, not as ``-m``: the clock starts
before the kit is imported, as it does in a function's fresh instance."""

import json
import resource
import sys
import time

__all__ = ["main"]

tic = time.perf_counter()

from mlinfra_kit.deployment.serverless import api_gateway_v2_event, make_handler  # noqa: E402


def main(model: str, warm_calls: int, quantize: str | None) -> dict:
    handler = make_handler(model, quantize=quantize)
    event = api_gateway_v2_event("POST", "/predict", {"title": "Object detection with YOLO"})
    first = handler(event, None)
    cold = time.perf_counter() - tic
    warm = []
    for _ in range(warm_calls):
        t = time.perf_counter()
        handler(event, None)
        warm.append(time.perf_counter() - t)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {"cold_s": cold, "warm_s": warm, "status": first["statusCode"], "peak_rss_mb": peak_mb}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), sys.argv[3] or None)))
