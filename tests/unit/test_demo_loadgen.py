"""loadgen: rate/mix from env, real requests to shop, counters and one summary line."""

import asyncio
import io
import json

import pytest

from demo_app import loadgen
from demo_app.settings import ConfigError, load, parse_mix
from demo_app.telemetry import configure_logging

from .conftest import LoopbackServer


def test_parse_mix():
    assert parse_mix("products=5, product=3,checkout=0") == {"products": 5.0, "product": 3.0, "checkout": 0.0}
    for bad in ("products", "orders=1", "products=x", "products=-1", "products=0"):
        with pytest.raises(ValueError):
            parse_mix(bad)


def test_bad_mix_stops_the_start_naming_the_variable(monkeypatch):
    monkeypatch.setenv("DEMO_LOADGEN_MIX", "orders=1")
    with pytest.raises(ConfigError, match="DEMO_LOADGEN_MIX='orders=1'"):
        load("loadgen")


def test_loadgen_drives_shop_and_summarises(stack, monkeypatch):
    shop = LoopbackServer(stack.shop_app)
    try:
        monkeypatch.setenv("DEMO_LOADGEN_TARGET", shop.url)
        monkeypatch.setenv("DEMO_LOADGEN_RPS", "40")
        monkeypatch.setenv("DEMO_LOADGEN_MIX", "products=1,product=1,checkout=1")
        monkeypatch.setenv("DEMO_LOADGEN_SUMMARY_INTERVAL_S", "1")
        from demo_app.telemetry import Telemetry

        tel = Telemetry("loadgen", enabled=True, span_exporter=stack.spans, log_exporter=stack.logs)
        out = io.StringIO()
        configure_logging(tel, "INFO", stream=out)
        gen = loadgen.LoadGen(load("loadgen"), tel)

        def sent() -> float:
            return sum(tel.metrics.registry.get_sample_value("demo_loadgen_requests_total",
                                                             {"endpoint": e, "outcome": o})
                       for e in loadgen.ENDPOINTS for o in ("ok", "error"))

        async def drive():
            # Until 30 requests went out and a summary was logged (counted, not timed).
            task = asyncio.create_task(gen.run())
            for _ in range(400):
                if sent() >= 30 and '"loadgen: ' in out.getvalue():
                    break
                await asyncio.sleep(0.05)
            task.cancel()
            await gen.client.aclose()

        asyncio.run(drive())
        tel.tracer_provider.force_flush()
        spans = stack.flush()
    finally:
        shop.stop()

    reg = tel.metrics.registry
    ok = sum(reg.get_sample_value("demo_loadgen_requests_total", {"endpoint": e, "outcome": "ok"})
             for e in loadgen.ENDPOINTS)
    err = sum(reg.get_sample_value("demo_loadgen_requests_total", {"endpoint": e, "outcome": "error"})
              for e in loadgen.ENDPOINTS)
    assert ok + err >= 30 and err == 0, (ok, err)
    summaries = [json.loads(x) for x in out.getvalue().splitlines() if '"loadgen: ' in x]
    assert summaries and summaries[0]["requests"] > 0 and summaries[0]["target"] == shop.url
    # loadgen starts the traces: its client spans are the parents of shop's server spans
    lg = {s.context.span_id for s in spans if s.resource.attributes["service.name"] == "loadgen"}
    shop_roots = [s for s in spans if s.resource.attributes["service.name"] == "shop" and s.kind.name == "SERVER"]
    assert shop_roots and all(s.parent is not None and s.parent.span_id in lg for s in shop_roots)
