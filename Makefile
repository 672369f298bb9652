# Local observability stack. `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
COMPOSE ?= docker compose
SERVICE ?=
SCENARIO ?=

# Twin images from `make twins` (machines without a container registry) are used when
# twins/images.env exists; a variable already set in the environment or on the command
# line wins.
ifneq ($(wildcard twins/images.env),)
TWIN_VARS := $(shell sed -n 's/^\([A-Z_][A-Z0-9_]*\)=.*/\1/p' twins/images.env)
$(foreach v,$(TWIN_VARS),$(if $(filter environment command line,$(origin $(v))),,$(eval $(v) := $(shell sed -n 's/^$(v)=//p' twins/images.env))))
export $(TWIN_VARS)
endif

.PHONY: help up down restart ps logs urls validate test reload clean uninstall \
        twins bench dashboards drill-up drill drill-reset env

help: ## Show this help
	@echo "Usage: make <target> [VAR=value]"
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

env: ## Create .env from .env.example with generated secrets (no-op when present)
	@$(PYTHON) scripts/init_env.py

up: env ## Start the stack and wait until every service is healthy
	$(COMPOSE) up -d --wait
	@$(MAKE) --no-print-directory urls
	@echo "Grafana login: user GRAFANA_ADMIN_USER, password GRAFANA_ADMIN_PASSWORD, both in $(CURDIR)/.env"

down: ## Stop and remove the containers (data volumes are kept)
	$(COMPOSE) down

restart: ## Restart every service (or SERVICE=name)
	$(COMPOSE) restart $(SERVICE)

ps: ## Show services and their health
	$(COMPOSE) ps

logs: ## Follow logs of every service (or SERVICE=name)
	$(COMPOSE) logs -f --tail=100 $(SERVICE)

urls: ## Print every UI and endpoint with its port
	@a=$$(sed -n 's/^BIND_ADDRESS=//p' .env 2>/dev/null); a=$${BIND_ADDRESS:-$${a:-127.0.0.1}}; \
	case "$$a" in 0.0.0.0|127.0.0.1) h=localhost ;; *) h=$$a ;; esac; \
	echo "Grafana        http://$$h:3000   dashboards (login: see .env)"; \
	echo "Prometheus     http://$$h:9090   metrics, rules, targets"; \
	echo "Alertmanager   http://$$h:9093   alert routing, silences"; \
	echo "Jaeger         http://$$h:16686  traces, Monitor tab"; \
	echo "Loki           http://$$h:3100   logs API (browse it in Grafana)"; \
	echo "Alert sink     http://$$h:8090   notifications received from Alertmanager"; \
	echo "Shop           http://$$h:8080   demo front service (/api/products)"; \
	echo "Inventory      http://$$h:8081   demo back service (/api/items)"; \
	echo "OTLP           $$h:4317 (gRPC), http://$$h:4318 (HTTP)  send your own telemetry"

validate: ## Run the real validators (promtool, amtool, otelcol, jaeger, loki, compose)
	$(PYTHON) scripts/validate.py

test: ## Run all tests (unit, config, e2e where images exist)
	$(PYTHON) -m pytest

reload: ## Reload Prometheus and Alertmanager config without a restart
	$(COMPOSE) exec prometheus wget -q -O /dev/null --post-data= http://localhost:9090/-/reload
	$(COMPOSE) exec alertmanager wget -q -O /dev/null --post-data= http://localhost:9093/-/reload
	@echo "Reloaded Prometheus and Alertmanager."

clean: ## Stop the stack and DELETE its data volumes (metrics, logs, dashboards state)
	$(COMPOSE) down -v --remove-orphans

uninstall: ## clean, then remove the stack's images too (.env is kept)
	$(COMPOSE) down -v --remove-orphans --rmi all

twins: ## Build same-version local images for machines without a registry
	bash twins/build.sh

bench: ## Measure the cost of instrumentation in the demo service
	$(PYTHON) demo_app/bench/bench.py

dashboards: ## Regenerate Grafana dashboards JSON from their Python source
	$(PYTHON) grafana/generate.py

drill-up: env ## Start the stack with the drill profile (5s scrape/evaluation, short group_wait)
	PROMETHEUS_CONFIG_FILE=prometheus.drill.yml ALERTMANAGER_CONFIG_FILE=alertmanager.drill.yml \
	  $(COMPOSE) up -d --wait
	@echo "Drill profile on; make up returns to the normal one."

drill: ## Run a fire drill: make drill SCENARIO=<name>
	@test -n "$(SCENARIO)" || { echo "usage: make drill SCENARIO=<name>"; $(PYTHON) drills/drill.py --help; exit 2; }
	$(PYTHON) drills/drill.py $(SCENARIO)

drill-reset: ## Clear every fault switch and start the services a drill stopped
	$(PYTHON) drills/drill.py --reset
