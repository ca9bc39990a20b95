# webinfer: `make help` lists the targets. `make serve` and `make test` do
# every set-up step they need (scripts/setup.sh), idempotently.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO       ?= go
PORT     ?= 8080
GOROOT   := $(shell $(GO) env GOROOT)
WASMENV  := GOOS=js GOARCH=wasm
# Native builds use Go's experimental SIMD package (simd/archsimd) for the
# CPU engine's AVX2 kernels; the portable kernels are built and tested too.
SIMDENV  := GOEXPERIMENT=simd
VERSION  := $(shell git describe --always --dirty 2>/dev/null || echo dev)
# js/wasm packages whose Go tests also run inside the browsers.
BROWSER_TEST_PKGS := webgpu jsutil selfcheck kernels gpumodel cpu
# SwiftShader, as Chromium ships it, for Dawn under Node without a GPU.
SWIFTSHADER := LD_LIBRARY_PATH=/usr/lib/chromium VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json

.PHONY: kernels fixtures h100-pack help setup setup-serve generate build dist build-tests serve check test test-unit test-simd test-parity test-wasm test-dawn test-browser bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

setup: ## install everything the tests need (apt, npm, Go modules)
	scripts/setup.sh test

setup-serve: ## install what serving needs (Go modules)
	scripts/setup.sh serve

generate: ## regenerate the Vugu components' Go code (ui/*_gen.go)
	$(GO) generate ./ui
	gofmt -w ui

build: generate ## build bin/webinfer, the page's WASM and the JS API's engine (dist/)
	mkdir -p bin dist
	$(SIMDENV) $(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/webinfer ./cmd/webinfer
	$(WASMENV) $(GO) build -ldflags "-s -w" -o dist/app.wasm ./wasm/app
	$(WASMENV) $(GO) build -ldflags "-s -w" -o dist/webinfer.wasm ./wasm/apihost
	cp $(GOROOT)/lib/wasm/wasm_exec.js dist/wasm_exec.js

dist: build ## the package for web apps: dist/webinfer/ (the JS API, its WASM, webinfer.d.ts, package.json)
	VERSION=$(VERSION) scripts/dist.sh

kernels: ## rebuild the browser CPU path's WASM SIMD128 kernels (shim/simd128/kernels.wasm, committed) from kernels.c
	scripts/build-kernels.sh

build-tests: ## build the js/wasm Go test binaries the browsers run (dist/test/)
	mkdir -p dist/test
	for p in $(BROWSER_TEST_PKGS); do $(WASMENV) $(GO) test -c -o dist/test/$$p.test.wasm ./wasm/$$p; done

serve: setup-serve build ## serve the page at http://127.0.0.1:$(PORT)/
	PORT=$(PORT) bin/webinfer serve

check: generate ## gofmt and go vet, natively and for js/wasm; the JS API's types (tsc on tests/types); the committed SIMD128 kernels rebuild to the same bytes
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	scripts/build-kernels.sh --check
	$(GO) vet ./...
	$(SIMDENV) $(GO) vet ./wasm/cpu
	$(GO) vet -tags browser ./tests/browser
	$(WASMENV) $(GO) vet ./wasm/... ./ui/...
	node_modules/.bin/tsc -p tests/types

test-unit: ## Go unit tests, native (portable kernels), with the race detector
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /tests/parity)

test-simd: ## the CPU kernels again, built with the AVX2 (simd/archsimd) paths
	$(SIMDENV) $(GO) test -count=1 ./wasm/cpu ./wasm/engine

test-parity: ## our engine against llama.cpp (node-llama-cpp) on synthetic models in every tensor type
	$(SIMDENV) $(GO) test -count=1 -v -timeout 20m ./tests/parity

test-wasm: ## Go unit tests compiled to js/wasm, under Node
	$(WASMENV) $(GO) test -count=1 -exec="$(GOROOT)/lib/wasm/go_js_wasm_exec" ./wasm/... ./ui/...

fixtures: build ## synthetic models the js/wasm GPU tests read (.cache/models)
	mkdir -p .cache/models
	for t in Q4_0 F32 F16 Q4_K Q6_K; do f=.cache/models/tiny-$$t-s1.gguf; [ -f $$f ] || bin/webinfer synth --preset tiny --type $$t --seed 1 --out $$f; done
	f=.cache/models/qwen2-Q4_K-s1.gguf; [ -f $$f ] || bin/webinfer synth --preset qwen2 --type Q4_K --seed 1 --out $$f

test-dawn: build-tests fixtures ## the WebGPU Go tests under Node with Dawn (SwiftShader here, a real GPU on a GPU server)
	for p in webgpu selfcheck kernels gpumodel; do $(SWIFTSHADER) node scripts/node-gpu.mjs dist/test/$$p.test.wasm -test.v -test.count=1 -test.short 2>&1 | grep -v XDG_RUNTIME_DIR; done

test-browser: dist build-tests ## the page and the js/wasm tests in Chromium, Firefox and WebKit
	$(GO) test -tags browser -count=1 -v -timeout 20m ./tests/browser

test: setup check test-unit test-simd test-wasm test-dawn test-parity test-browser ## every test: what CI (.ci/run) runs
	@echo "make test: all passed"

bench: ## benchmarks: our CPU engine and llama.cpp, our page (WebGPU, CPU-WASM) and wllama in Chromium, side by side; JSON on stdout
	@scripts/setup.sh test >&2
	@$(MAKE) --no-print-directory build >&2
	@bin/webinfer bench --json

h100-pack: build fixtures ## pack what scripts/h100-bench.sh needs on a GPU server into .gl, .dawn, .h100t (tests) and .h100 (benchmarks)
	scripts/h100-pack.sh

clean: ## remove build outputs
	rm -rf bin dist
