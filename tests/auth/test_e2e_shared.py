"""The e2e tests of every signal, run again on the shared stack (STACK_AUTH on): the stack's
own clients log in (Prometheus' scrapes of itself and Alertmanager, its alerts, Jaeger's
Monitor tab, Grafana's datasources) and the suite reaches every published port over TLS
with the login. Imported from tests/e2e as they are; this package's `stack` fixture is the
shared stack; each keeps its module's signal mark (tests/auth/conftest.py), so they run in
the e2e order (tests/e2e/report.py) and the summary names what they prove."""
from __future__ import annotations

import pytest

from tests.e2e.test_alerts import test_errors_alert_fires_reaches_the_sink_and_resolves, test_watchdog_reaches_the_sink
from tests.e2e.test_grafana import (test_committed_dashboards_are_provisioned, test_every_dashboard_query_returns_data,
                                    test_every_datasource_health_check_passes,
                                    test_grafana_is_healthy_and_refuses_anonymous)
from tests.e2e.test_logs import test_demo_logs_in_loki_with_service_name_and_trace_id, test_log_trace_id_resolves_in_jaeger
from tests.e2e.test_metrics import (test_demo_red_metrics_are_queryable, test_every_scrape_target_of_a_running_service_is_up,
                                    test_exemplar_with_trace_id_is_queryable, test_loadgen_traffic_arrives,
                                    test_span_metrics_from_the_collector_arrive)
from tests.e2e.test_stack import (test_collector_health_check_answers_inside_the_network,
                                  test_demo_health_and_readiness, test_fault_switch_needs_the_generated_token,
                                  test_make_urls_lists_every_published_endpoint,
                                  test_no_get_on_a_published_port_changes_anything,
                                  test_published_ports_are_loopback_only,
                                  test_started_services_are_running_and_healthy)
from tests.e2e.test_traces import (test_exemplar_trace_id_opens_a_trace_in_jaeger,
                                   test_jaeger_monitor_api_returns_call_rates,
                                   test_shop_request_trace_has_inventory_and_database_spans)

pytestmark = [pytest.mark.e2e]
