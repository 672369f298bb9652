# Local observability stack. `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
# Any Python 3.11+: it only bootstraps .venv and runs standard-library scripts. Everything
# that needs packages runs from .venv (created from the pinned requirements by `make venv`).
PYTHON ?= python3
VENV_PYTHON := .venv/bin/python
COMPOSE ?= docker compose
SERVICE ?=
SCENARIO ?=
DAYS ?= 30
SEED ?= 1
ENDING ?= calm
MINUTES ?= 30
HOURS ?= 2
RATE ?= 0
FAULTS ?=
# Seconds `make up` waits for every service to be healthy (Grafana's first start migrates
# its database: minutes on a slow laptop) before it fails and says which one is not.
UP_TIMEOUT ?= 300
# Start only these services (and not their dependencies), e.g. where an image cannot be had.
SERVICES ?=
# $(call compose_up,VAR=value ...): start, wait until healthy; else say which service is not, and why.
compose_up = $(1) $(COMPOSE) up -d --wait --wait-timeout $(UP_TIMEOUT) $(if $(SERVICES),--no-deps $(SERVICES)) \
	|| { $(1) $(PYTHON) scripts/compose_info.py why $(COMPOSE); exit 1; }
# The compose files for this Docker engine (scripts/compose_info.py): the stack, plus faster
# start-up healthchecks where the engine supports them.
export COMPOSE_FILE ?= $(shell $(PYTHON) scripts/compose_info.py files 2>/dev/null || echo docker-compose.yml)
# The same for the scale-out profile (your forwarding and extras files included).
SCALE_COMPOSE_FILE := $(shell $(PYTHON) scripts/compose_info.py files --scale 2>/dev/null || echo docker-compose.yml:docker-compose.scale.yml)

# Twin images from `make twins` (machines without a container registry) are used when
# twins/images.env exists; a variable already set in the environment or on the command
# line wins.
ifneq ($(wildcard twins/images.env),)
TWIN_VARS := $(shell sed -n 's/^\([A-Z_][A-Z0-9_]*\)=.*/\1/p' twins/images.env)
TWINS_USED := $(foreach v,$(filter %_IMAGE,$(TWIN_VARS)),$(if $(filter environment command line,$(origin $(v))),,$(v)))
$(foreach v,$(TWIN_VARS),$(if $(filter environment command line,$(origin $(v))),,$(eval $(v) := $(shell sed -n 's/^$(v)=//p' twins/images.env))))
export $(TWIN_VARS)
endif

.PHONY: lock exercises exercise grade grade-all help up up-scale down restart ps disk logs urls validate venv test test-all reload certs upgrade measurements clean uninstall \
        twins bench bench-stack soak dashboards drill-up drill drill-reset record-drill history backtest backtest-docs chaos chaos-stop scorecard env grafana-password

help: ## Show this help
	@echo "Usage: make <target> [VAR=value]"
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

env: ## Create .env from .env.example with generated secrets, and your places (no-op when present)
	@$(PYTHON) scripts/compose_info.py check
	@$(PYTHON) scripts/init_env.py
	@$(PYTHON) scripts/places.py
	@$(auth_files)

# While STACK_AUTH is on (scripts/compose_info.py says so, and why): the certificates, web
# config and logins of docker-compose.auth.yml (scripts/auth.py, from the venv: bcrypt).
auth_files = $(PYTHON) scripts/compose_info.py auth; case $$? in \
	0) $(MAKE) --no-print-directory venv && $(VENV_PYTHON) scripts/auth.py ;; 1) ;; *) exit 1 ;; esac

# Said on every start, so no one mistakes a twin (no web UI in Prometheus and Alertmanager) for upstream.
twin_notice = $(if $(TWINS_USED),@echo "Using twin images from twins/images.env for $(TWINS_USED) (built here; the Prometheus and Alertmanager twins have no web UI). Delete twins/images.env to use the pinned upstream images.")

up: env ## Start the stack and wait until every service is healthy
	$(twin_notice)
	@$(PYTHON) scripts/compose_info.py off $(COMPOSE)
	@$(call compose_up,)
	@$(PYTHON) scripts/compose_info.py urls $(COMPOSE)
	@echo "Grafana login: user GRAFANA_ADMIN_USER, password GRAFANA_ADMIN_PASSWORD, both in $(CURDIR)/.env"

up-scale: env ## Start the scale-out profile: collector agent + 2 gateways, Alertmanager pair, Prometheus pair + Thanos
	@$(PYTHON) scripts/compose_info.py auth --scale >/dev/null; [ $$? -ne 2 ]
	$(twin_notice)
	@$(call compose_up,COMPOSE_FILE=$(SCALE_COMPOSE_FILE))
	@COMPOSE_FILE=$(SCALE_COMPOSE_FILE) $(PYTHON) scripts/compose_info.py urls $(COMPOSE)

down: ## Stop and remove the containers, the scale-out ones too (data volumes are kept)
	$(COMPOSE) down --remove-orphans

restart: ## Restart every service (or SERVICE=name)
	$(COMPOSE) restart $(SERVICE)

ps: ## Show services and their health
	$(COMPOSE) ps

disk: ## Each volume's use against its bound (README, "Bounds")
	@$(PYTHON) scripts/bounds.py $(COMPOSE)

logs: ## Follow logs of every service (or SERVICE=name)
	$(COMPOSE) logs -f --tail=100 $(SERVICE)

urls: ## Print every published UI and endpoint of the running stack
	@$(PYTHON) scripts/compose_info.py urls $(COMPOSE)

validate: venv ## Run the real validators (promtool, amtool, otelcol, jaeger, loki, compose)
	$(VENV_PYTHON) scripts/validate.py

venv: ## Create or refresh .venv from requirements.lock, hashes checked (make test does it)
	@$(PYTHON) scripts/venv.py

lock: ## Re-resolve requirements-dev.txt into requirements.lock (after changing a pin)
	@$(PYTHON) scripts/venv.py --lock

# TIERS=a,b picks tiers by name (python -m tests.tiers --list); TEST_LANES how many run at
# once; PYTEST_ARGS go to each tier's pytest.
test: venv ## Prove every signal travels, nothing is lost, alerts arrive (unit, config, exercises, e2e): minutes
	@$(VENV_PYTHON) -m tests.tiers $(or $(TIERS),quick) -- $(PYTEST_ARGS)

test-all: venv ## Run every test tier (make test, plus scale-out, forwarding, training ground, history, bench, ...)
	@$(VENV_PYTHON) -m tests.tiers $(or $(TIERS),all) -- $(PYTEST_ARGS)

reload: ## Reload Prometheus and Alertmanager config without a restart (SIGHUP); with STACK_AUTH, new certificates and logins too
	@$(auth_files)
	$(COMPOSE) exec -T alertmanager /bin/sh /etc/alertmanager/entrypoint.sh --render-only
	$(COMPOSE) kill -s SIGHUP prometheus alertmanager
	@echo "Sent SIGHUP: Prometheus and Alertmanager re-read their config (see make logs SERVICE=prometheus)."
	@# The services that read their certificate or login only as they start (the others
	@# re-read theirs: Prometheus and Alertmanager per connection, otel-edge and Jaeger's
	@# query server every minute; the stack's collector its login to Prometheus as it starts).
	@if $(PYTHON) scripts/compose_info.py auth >/dev/null 2>&1; then \
	  running=$$($(COMPOSE) ps --status running --services | grep -xE 'grafana|jaeger|otel-collector|shop|inventory|alert-sink' | tr '\n' ' '); \
	  [ -z "$$running" ] || { $(COMPOSE) restart $$running && echo "Restarted $$running: they read their certificate and login as they start."; }; \
	fi

certs: venv ## Make the local CA and server certificate for STACK_AUTH (FORCE=1: a new server certificate; then make reload)
	@$(VENV_PYTHON) scripts/certs.py $(if $(FORCE),--force)

upgrade: ## Move the running stack to the pinned images (after git pull) keeping its data: checks first, reports what each store kept
	@$(PYTHON) scripts/upgrade.py $(COMPOSE)

grafana-password: ## Change the Grafana admin password in Grafana and .env (generated, or NEW_FILE=path, NEW_FILE=- to type it)
	@$(PYTHON) scripts/grafana_password.py $(if $(NEW_FILE),--new-file "$(NEW_FILE)")

clean: ## Stop the stack and DELETE its data volumes (metrics, logs, dashboards state), the scale-out profile's too
	COMPOSE_FILE=$(SCALE_COMPOSE_FILE) $(COMPOSE) down -v --remove-orphans

uninstall: ## clean, then remove the stack's images too (.env and .venv are kept)
	COMPOSE_FILE=$(SCALE_COMPOSE_FILE) $(COMPOSE) down -v --remove-orphans --rmi all

twins: ## Build same-version local images for machines without a registry
	bash twins/build.sh

bench: venv ## Measure the cost of instrumentation in the demo service
	$(VENV_PYTHON) demo_app/bench/bench.py

soak: venv ## Leave the stack under load for HOURS=2 (RATE=spans/s on top), faults (FAULTS=a,b) on a schedule: build/soak.*
	$(VENV_PYTHON) -m bench.soak --hours $(HOURS) --rate $(RATE) $(if $(FAULTS),--faults $(FAULTS))

bench-stack: venv ## Measure how much telemetry the stack carries, against the collector alone (build/bench-stack.*)
	$(VENV_PYTHON) bench/stack.py $(BENCH_ARGS)

measurements: ## docs/measurements.md from the figures the last runs left in build/ (dated, with machine and images)
	@$(PYTHON) scripts/measurements.py

dashboards: venv ## Regenerate Grafana dashboards JSON from their Python source
	$(VENV_PYTHON) grafana/generate.py

drill-up: env ## Start the stack with the drill profile (5s scrape/evaluation, short group_wait, small collector queues)
	@$(call compose_up,$(shell $(PYTHON) scripts/profiles.py --env))
	@echo "Drill profile on; make up returns to the normal one."

drill: ## Run a fire drill: make drill SCENARIO=<name>
	@test -n "$(SCENARIO)" || { echo "usage: make drill SCENARIO=<name>"; $(PYTHON) drills/drill.py --help; exit 2; }
	$(PYTHON) drills/drill.py $(SCENARIO)

drill-reset: ## Clear every fault switch and start the services a drill stopped
	$(PYTHON) drills/drill.py --reset

record-drill: venv ## Turn the last live drill into a promtool test: make record-drill SCENARIO=<name>
	@test -n "$(SCENARIO)" || { echo "usage: make record-drill SCENARIO=<name> (after make drill SCENARIO=<name>)"; exit 2; }
	$(VENV_PYTHON) drills/record.py $(SCENARIO) $(COMPOSE)

exercises: venv ## List the graded alert-rule exercises by difficulty, with your status (docs/alert-training.md)
	@$(VENV_PYTHON) -m exercises.grader list

exercise: venv ## Show one exercise and copy its starter to workspace/ (gitignored): make exercise N=3
	@test -n "$(N)" || { echo "usage: make exercise N=<number> (make exercises lists them)"; exit 2; }
	@$(VENV_PYTHON) -m exercises.grader show $(N)

grade: venv ## Grade your copy of one exercise (exit 0 only if passed): make grade N=3 [LIVE=1 on the drill stack] [FILE=path]
	@test -n "$(N)" || { echo "usage: make grade N=<number> [LIVE=1] [FILE=path]"; exit 2; }
	@$(VENV_PYTHON) -m exercises.grader grade $(N) $(if $(LIVE),--live) $(if $(FILE),--file $(FILE))

grade-all: venv ## Grade every exercise you started: a score card (build/grades/)
	@$(VENV_PYTHON) -m exercises.grader grade-all

history: venv ## Backfill DAYS=30 of the demo's series with planted incidents (SEED=1, ENDING=calm|burning)
	$(VENV_PYTHON) drills/history.py --days $(DAYS) --seed $(SEED) --ending $(ENDING) -- $(COMPOSE)

chaos: ## Faults that come and go by themselves, in the background (SEED=1 MINUTES=30 FAULTS=a,b)
	@$(PYTHON) drills/chaos.py start --seed $(SEED) --minutes $(MINUTES) $(if $(FAULTS),--faults $(FAULTS)) $(COMPOSE)

chaos-stop: ## Stop the background chaos run (its faults are cleared)
	@$(PYTHON) drills/chaos.py stop

backtest: venv ## How a rule file would have paged over a month with planted incidents: make backtest RULES=path [DAYS=30] [OUT=build/backtest.json]
	@test -n "$(RULES)" || { echo "usage: make backtest RULES=path/to/rules.yml [DAYS=30] (loads make history's month first if needed)"; exit 2; }
	$(VENV_PYTHON) drills/backtest.py $(RULES) --days $(DAYS) $(if $(OUT),--out $(OUT)) -- $(COMPOSE)

backtest-docs: venv ## Write docs/backtest.md (table, incidents, timeline) from a backtest's JSON (JSON=build/backtest-shipped.json)
	$(VENV_PYTHON) drills/backtest.py --docs $(or $(JSON),build/backtest-shipped.json)

scorecard: venv ## Score the newest chaos run (or LOG=..., MANIFEST=build/history-manifest.json): table, JSON, PNG
	$(VENV_PYTHON) drills/scorecard.py $(if $(LOG),--log $(LOG)) $(if $(MANIFEST),--manifest $(MANIFEST)) $(COMPOSE)
