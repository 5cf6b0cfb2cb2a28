# jiazheng: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
BUILD := .build
BUF_VERSION := 1.75.0
PROTOVALIDATE_VERSION := 1.3.0
BUF := $(BUILD)/npm/node_modules/.bin/buf
VALIDATE_PROTO := $(BUILD)/protodeps/buf/validate/validate.proto
PROTOS := $(shell find protos -name '*.proto' | sort)
GEN_STAMP := gen/.stamp
PROTOSET := gen/jiazheng.binpb
GRPCURL_VERSION := 1.9.4
GRPCURL_STAMP := $(BUILD)/go/bin/.grpcurl-$(GRPCURL_VERSION)
ASYNCAPI_CLI_VERSION := 6.2.0
ASYNCAPI_HOME := $(BUILD)/npm/asyncapi
ASYNCAPI := $(ASYNCAPI_HOME)/node_modules/.bin/asyncapi
# The CLI's usage tracking stays off, and its settings out of $HOME.
ASYNCAPI_RUN := ASYNCAPI_METRICS_CONFIG_PATH=$(CURDIR)/$(ASYNCAPI_HOME)/analytics.json SUPPRESS_NO_CONFIG_WARNING=1 $(ASYNCAPI)
AXE_CORE_VERSION := 4.14.1
AXE_HOME := $(BUILD)/npm/axe
AXE_STAMP := $(AXE_HOME)/.axe-core-$(AXE_CORE_VERSION)

.PHONY: run test stop status deps proto protoset api-docs grpcurl lint typecheck buf-lint asyncapi asyncapi-lint contract-snapshot lock k8s-validate unit integration bench clean images test-containers browser-deps

run: deps proto
	$(BIN)/jiazheng up

stop:
	@if [ -x $(BIN)/jiazheng ]; then $(BIN)/jiazheng down; fi

status: deps
	$(BIN)/jiazheng status

test: deps proto lint typecheck buf-lint asyncapi-lint k8s-validate unit integration

deps: $(VENV)/.installed $(BUF) $(VALIDATE_PROTO) $(BUILD)/fonts/.installed browser-deps

# setuptools announces every editable install with a banner (the filter drops only that one);
# other warnings and errors still show.
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	echo "$(CURDIR)/gen" > $$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/jiazheng-gen.pth
	touch $@

# constraints.txt: the newest versions pyproject.toml's ranges allow today, resolved in a venv of
# their own (the header's comment lines are kept). Then `make test`, and commit both.
lock:
	rm -rf $(BUILD)/lock && $(PYTHON) -m venv $(BUILD)/lock
	$(BUILD)/lock/bin/python -m pip install --quiet --upgrade pip
	PYTHONWARNINGS="ignore:Editable installation" $(BUILD)/lock/bin/python -m pip install --quiet -e '.[dev]'
	{ grep '^#' constraints.txt; $(BUILD)/lock/bin/python -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf $(BUILD)/lock

# buf comes from the npm registry; no lock file is written so no registry address lands in the repo.
$(BUF):
	mkdir -p $(BUILD)/npm
	npm install --silent --no-audit --no-fund --no-save --no-package-lock --prefix $(BUILD)/npm @bufbuild/buf@$(BUF_VERSION)
	$(BUF) --version

# protovalidate's validate.proto, taken from its Maven Central artifact (the schema registry is not reachable).
$(VALIDATE_PROTO):
	mkdir -p $(BUILD)/protodeps
	mvn -q -B dependency:copy -Dartifact=build.buf:protovalidate:$(PROTOVALIDATE_VERSION) -DoutputDirectory=$(BUILD)/protodeps
	cd $(BUILD)/protodeps && $(CURDIR)/$(BIN)/python -c "import zipfile; zipfile.ZipFile('protovalidate-$(PROTOVALIDATE_VERSION).jar').extract('buf/validate/validate.proto')"

# The CJK font contract PDFs are set in (Debian's fonts-wqy-zenhei), unpacked into .build/fonts:
# apt-get download and dpkg-deb -x need no root and install nothing system-wide. A fresh machine
# may have no package lists yet; then (as root) they are read once and the download retried.
$(BUILD)/fonts/.installed:
	rm -rf $(BUILD)/fonts && mkdir -p $(BUILD)/fonts
	cd $(BUILD)/fonts && { apt-get download fonts-wqy-zenhei || { apt-get update -qq && apt-get download fonts-wqy-zenhei; }; }
	cd $(BUILD)/fonts && dpkg-deb -x fonts-wqy-zenhei_*.deb .
	touch $@

# The browser tests (tests/integration/browser.py) drive Debian's chromium with PyPI's playwright
# (executable_path: no browser is downloaded), with fonts-noto-cjk for the Chinese text. Both come
# from Debian's packages: installed when missing if run as root (the package lists read only when
# the first try fails), otherwise the exact command to run is printed. Silent when both are there.
BROWSER_PACKAGES := chromium fonts-noto-cjk

browser-deps: $(AXE_STAMP)
	@if ! command -v chromium >/dev/null || ! dpkg-query -W -f='$${Status}' fonts-noto-cjk 2>/dev/null | grep -q 'ok installed'; then \
		if [ "$$(id -u)" -ne 0 ]; then \
			echo "The browser tests need Debian's chromium and fonts-noto-cjk: run \`sudo apt-get install $(BROWSER_PACKAGES)\`" >&2; \
			exit 1; \
		fi; \
		echo "Installing $(BROWSER_PACKAGES) from Debian's packages"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq $(BROWSER_PACKAGES) >/dev/null; } || exit 1; \
		chromium --version; \
	fi

# axe-core, the accessibility rules the browser tests run in the page, from the npm registry like
# buf, under a prefix of its own (another install without a package.json would remove the others).
$(AXE_STAMP):
	rm -rf $(AXE_HOME) && mkdir -p $(AXE_HOME)
	npm install --silent --no-audit --no-fund --no-save --no-package-lock --prefix $(AXE_HOME) axe-core@$(AXE_CORE_VERSION)
	test -s $(AXE_HOME)/node_modules/axe-core/axe.min.js
	touch $@

proto: $(GEN_STAMP) $(PROTOSET)

$(GEN_STAMP): $(PROTOS) $(VALIDATE_PROTO) $(VENV)/.installed
	rm -rf gen && mkdir -p gen
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m grpc_tools.protoc -Iprotos -I$(BUILD)/protodeps \
		--python_out=gen --grpc_python_out=gen --mypy_out=quiet:gen --mypy_grpc_out=quiet:gen \
		$(PROTOS) $(VALIDATE_PROTO)
	touch $@

# The descriptor set with comments that reflection answers from and docs/api.md is made from.
protoset: $(PROTOSET)

$(PROTOSET): $(GEN_STAMP)
	$(BIN)/python -m grpc_tools.protoc -Iprotos -I$(BUILD)/protodeps --include_source_info --include_imports \
		--descriptor_set_out=$@.tmp $(PROTOS) $(VALIDATE_PROTO)
	mv $@.tmp $@

api-docs: deps proto
	$(BIN)/python -m cli.protodoc --protoset $(PROTOSET) --out docs/api.md

# grpcurl for the integration tests, built with Go into .build/go (nothing lands in $HOME).
$(GRPCURL_STAMP):
	rm -f $(BUILD)/go/bin/.grpcurl-*
	GOBIN=$(CURDIR)/$(BUILD)/go/bin GOPATH=$(CURDIR)/$(BUILD)/go GOCACHE=$(CURDIR)/$(BUILD)/go/cache \
		GOFLAGS=-modcacherw go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v$(GRPCURL_VERSION)
	touch $@

grpcurl: $(GRPCURL_STAMP)

lint: deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: deps proto
	$(BIN)/mypy libs services cli deploy tests bench

# The published contracts: `make contract-snapshot` locks in what has landed; buf breaking
# then refuses any change that would break a platform, a regulator or another service.
CONTRACT := protos/released.binpb

buf-lint: deps
	$(BUF) lint
	$(BUF) format --diff --exit-code
	$(BUF) breaking protos --against $(CONTRACT)

# The AsyncAPI CLI, from the npm registry like buf, under a prefix of its own: another install
# without a package.json into buf's prefix would remove buf.
$(ASYNCAPI):
	mkdir -p $(ASYNCAPI_HOME)
	echo '{"analyticsEnabled": "false", "infoMessageShown": "true", "userID": "jiazheng"}' > $(ASYNCAPI_HOME)/analytics.json
	npm install --silent --no-audit --no-fund --no-save --no-package-lock --prefix $(ASYNCAPI_HOME) @asyncapi/cli@$(ASYNCAPI_CLI_VERSION)
	$(ASYNCAPI_RUN) --version

# The regulators' contract (docs/asyncapi.yaml), generated from the projection and the protos.
asyncapi: deps proto
	$(BIN)/python -m services.regulator.asyncapi

asyncapi-lint: $(ASYNCAPI)
	$(ASYNCAPI_RUN) validate docs/asyncapi.yaml --fail-severity warn

contract-snapshot: deps
	$(BUF) build protos --exclude-source-info -o $(CONTRACT)

# The Kubernetes manifests, offline: every kustomize build (base and overlays) validated in strict
# mode (Kubernetes' kinds with kubernetes-validate, the operators' against their vendored CRDs in
# deploy/k8s/crds), then scanned by checkov with the skips explained in deploy/k8s/.checkov.yaml.
# checkov pins many packages of its own, so it lives in a venv of its own under .build.
CHECKOV_VERSION := 3.3.30
CHECKOV := $(BUILD)/checkov/bin/checkov

$(CHECKOV):
	rm -rf $(BUILD)/checkov && $(PYTHON) -m venv $(BUILD)/checkov
	$(BUILD)/checkov/bin/python -m pip install --quiet --upgrade pip
	$(BUILD)/checkov/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)

k8s-validate: deps $(CHECKOV)
	rm -rf $(BUILD)/k8s
	$(BIN)/python -m deploy.k8s.validate --out $(BUILD)/k8s
	for build in $(BUILD)/k8s/*.yaml; do [ "$$build" = $(BUILD)/k8s/base.yaml ] || \
		$(CHECKOV) --config-file deploy/k8s/.checkov.yaml -f $$build || exit 1; done

unit: deps proto
	$(BIN)/pytest -q -m "not integration and not containers"

integration: deps proto $(GRPCURL_STAMP)
	$(BIN)/pytest -q -m integration

# The images (deploy/docker, docs/containers.md): the services' and the test stack's Kafka and
# PostgreSQL, built without any image registry; needs a running Docker engine and debootstrap.
images: deps proto
	bash deploy/docker/build.sh

# The container smoke test (tests/containers), then the integration suite on testcontainers
# (our Kafka and PostgreSQL images); both need `make images` and a running Docker engine.
test-containers: images $(GRPCURL_STAMP)
	$(BIN)/pytest -q -m containers tests/containers
	$(BIN)/pytest -q -m "integration and not own_stack" $(ARGS)

# The benchmarks on a stack of their own (.stack/bench): `make bench` writes bench/results/latest.json,
# `make bench ARGS=--quick` is a short smoke run (bench/results/quick.tmp); see bench/README.md.
bench: deps proto
	$(BIN)/python -m bench.run $(ARGS)

clean: stop
	for link in .stack/*/postgres; do if [ -L "$$link" ]; then rm -rf "$$(readlink -f "$$link")"; fi; done
	rm -rf $(VENV) $(BUILD) gen .stack *.egg-info
