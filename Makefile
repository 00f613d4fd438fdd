# Crucible: `make demo` and `make test` do all the set-up on a fresh Debian machine.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= $(shell nproc)
CRUCIBLE := $(BUILD_DIR)/cli/crucible

# Debian packages the build, the tests and the demo need (chromium: the
# browser test of the HTML report, tests/e2e/html_report_test).
DEB_PACKAGES := build-essential cmake pkg-config git \
  libzmq3-dev cppzmq-dev libprotobuf-dev protobuf-compiler \
  libseccomp-dev libcap-dev libgit2-dev librocksdb-dev \
  libgtest-dev libgmock-dev libbenchmark-dev \
  libcli11-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libyaml-cpp-dev \
  libpugixml-dev libre2-dev libcpp-httplib-dev \
  python3 python3-pytest iproute2 bubblewrap hyperfine \
  chromium
# Node.js and npm install the pinned Claude Code client the e2e tests run
# and the browser driver (playwright-core) of the HTML report test
# (tests/e2e/agents/). Checked by command, not by package: a node from another
# source (NodeSource bundles npm in its nodejs package) is fine as it is.
NODE_PACKAGES := nodejs npm

.PHONY: all deps build test demo bench format clean asan

all: build

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then missing="$$missing $(NODE_PACKAGES)"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "all Debian packages present"; fi

$(BUILD_DIR)/CMakeCache.txt:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS)

build: $(BUILD_DIR)/CMakeCache.txt
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: deps
	$(MAKE) build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 900

demo: deps
	$(MAKE) build
	$(CRUCIBLE) demo --html $(BUILD_DIR)/demo-report.html

bench: deps
	$(MAKE) build
	bash bench/run.sh

asan:
	LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  $(MAKE) test BUILD_DIR=build-asan BUILD_TYPE=Debug CMAKE_ARGS=-DCRUCIBLE_SANITIZE=ON

format:
	find . -path ./build -prune -o -path './build-*' -prune -o \( -name '*.cc' -o -name '*.h' \) -print | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR)
