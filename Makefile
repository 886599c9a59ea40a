# warpdns: CoreDNS v1.15.0 plus envalias and headlessonly.
#   make run    local control plane + demo world + our coredns on loopback
#   make unit   the product module's unit tests with the race detector (seconds)
#   make test   unit and integration tests (real etcd + kube-apiserver)
#   make e2e    laptop -> gateway -> two clusters in network namespaces (root)
#   make image  OCI image index (linux/amd64, linux/arm64) bin/warpdns-image.tar (no Docker needed)
#   make manifests-check  build and server-side dry-run every manifest
#   make bench  ours vs upstream CoreDNS: speed, memory, propagation (docs/benchmarks.md)

GO          ?= go
# Four Go modules: the product (root: plugin/, internal/, cmd/coredns), the
# tests and their harness (test/), the tools users run (tools/: make image,
# make run) and the benchmarks (bench/). No go.work: each is built on its own,
# so test and tool dependencies never reach the coredns binary's module graph.
MODULES     := . test tools bench
export GOWORK := off
BIN         := bin
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS     := -s -w -X main.Version=$(VERSION) -X github.com/coredns/coredns/coremain.GitCommit=$(COMMIT)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# make image: the name the image tarball carries (docker load tags it so).
# Push it to your registry under the name your overlay's `images:` uses.
IMAGE       ?= registry.example.com/warpdns:0.1.0
# make run's loopback ports, standing in for :53 (in-cluster) and :5353 (VPC).
PORT        ?= 1053
VPC_PORT    ?= 1054

# `make run KUBECONFIG=path` serves that cluster. Only a KUBECONFIG given on
# the command line counts: one exported in the shell must not send the demo
# to a real cluster by surprise.
ifeq ($(origin KUBECONFIG),command line)
RUN_CLUSTER := -kubeconfig $(KUBECONFIG)
endif

.PHONY: all build run unit test lint generate clean image manifests-check manifests-corefiles

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/coredns ./cmd/coredns

run: build
	$(GO) -C tools build -o $(CURDIR)/$(BIN)/warpdns-run ./warpdns-demo
	$(BIN)/warpdns-run -coredns $(BIN)/coredns -corefile Corefile.example -port $(PORT) -vpc-port $(VPC_PORT) $(RUN_CLUSTER)

# The product module's tests (plugin/, internal/, cmd/coredns) run with the
# race detector, which needs cgo and a C compiler (gcc; "The race detector
# requires cgo to be enabled", go.dev/doc/articles/race_detector). No control
# plane: seconds once built (the first -race build of the module takes a few
# minutes).
unit:
	CGO_ENABLED=1 $(GO) test -race -count=1 ./...

# The first run builds etcd, kube-apiserver and upstream CoreDNS from the Go
# module proxy (several minutes) and caches them in ~/.cache/warpdns. Every
# module's tests run, even after one fails; make fails if any did. The
# product module's tests are make unit (with the race detector).
test:
	@status=0; for m in $(MODULES); do \
		echo "== go mod tidy -diff, go test ./... in module $$m"; \
		$(GO) -C $$m mod tidy -diff || { echo "module $$m: go.mod/go.sum not tidy (a module it requires changed): run go mod tidy there"; status=1; }; \
		if [ "$$m" = . ]; then $(MAKE) --no-print-directory unit || status=1; \
		else $(GO) -C $$m test -count=1 -timeout 30m ./... || status=1; fi; \
	done; exit $$status

# The whole WARP path in network namespaces: laptop (dig, curl) -> gateway
# (resolver policies) -> two clusters (control plane, our coredns with
# Corefile.example, load balancer, pods). Prints a table of checks. Needs root
# and `ip netns`; without them it says why and skips. See test/e2e.
.PHONY: e2e
e2e:
	WARPDNS_E2E=1 $(GO) -C test test -count=1 -timeout 20m -v -run '^TestE2E$$' ./e2e/

# Ours against upstream CoreDNS v1.15.0 on this machine, loopback only:
# dnsperf throughput and latency (Corefile.example at a moderate load, plain
# server blocks saturated, k8s_gateway as a third side), memory (a small world
# and 10,000 Services), startup, propagation of endpoint readiness flips, the
# plugins' Go benchmarks. About 45 minutes on a quiet 2-core machine, more
# when the host steals CPU (those rounds are measured again); writes
# docs/benchmarks.md and docs/benchmarks.png. Needs dnsperf (Debian package
# dnsperf). k8s_gateway is not served by the module proxy: the first run
# builds it from a checkout of github.com/k8s-gateway/k8s_gateway named by
# WARPDNS_K8S_GATEWAY_SRC (then cached); without one its side says why it is
# missing. Not part of make test (a smoke variant of it is: go test ./ in
# bench/).
.PHONY: bench
bench:
	$(GO) -C bench run ./cmd/warpdns-bench -out $(CURDIR)/docs/benchmarks.md -chart $(CURDIR)/docs/benchmarks.png

# Builds every kustomization under manifests/ (overlays, bases, cloudflared,
# and each way with each platform), checks the output, server-side dry-run
# applies it to a local kube-apiserver (CRDs it needs from vendored minimal
# definitions), runs the standalone Corefile with its own RBAC, and checks the
# Terraform example against the Cloudflare provider v5 schema; lints, renders
# and dry-runs the Helm chart (helm.sh/helm/v4 as a Go module) and compares it
# object by object with the overlays; evaluates every NetworkPolicy with a
# policy engine; parses the monitoring rules and dashboard. Part of make test.
manifests-check:
	$(GO) -C test test -count=1 -timeout 20m ./manifests/

# After editing Corefile.example: rewrite the kustomize bases' copies of it
# (Corefile.example with envalias {$WARPDNS_ENV}) and the chart's
# (charts/warpdns/files/Corefile.example, a plain copy).
manifests-corefiles:
	$(GO) -C test test -count=1 -run 'TestCorefiles$$' ./manifests/ -update

# A multi-platform OCI image of our coredns, without a daemon or network:
# ./cmd/coredns cross-compiled (CGO off) for each of PLATFORMS, one image per
# platform with no base image, user 65532, entrypoint /coredns as upstream's,
# tied by an OCI image index that also carries each binary's CycloneDX SBOM.
# bin/warpdns-image.tar is an OCI image layout, also unpacked into
# bin/warpdns-image/; push it with one of
#   crane push bin/warpdns-image $(IMAGE)
#   skopeo copy --all oci-archive:bin/warpdns-image.tar docker://$(IMAGE)
PLATFORMS   ?= linux/amd64 linux/arm64
REVISION    ?= $(shell git rev-parse HEAD 2>/dev/null)
image:
	@for p in $(PLATFORMS); do \
		echo "== CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} go build ./cmd/coredns"; \
		CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build -trimpath -ldflags '$(LDFLAGS)' \
			-o $(BIN)/$${p%/*}-$${p#*/}/coredns ./cmd/coredns || exit 1; \
	done
	$(GO) -C tools run ./warpdns-image $(foreach p,$(PLATFORMS),-binary $(CURDIR)/$(BIN)/$(subst /,-,$(p))/coredns) \
		-out $(CURDIR)/$(BIN)/warpdns-image.tar -tag $(IMAGE) -version $(VERSION) -revision $(REVISION)
	rm -rf $(BIN)/warpdns-image && mkdir -p $(BIN)/warpdns-image && tar -xf $(BIN)/warpdns-image.tar -C $(BIN)/warpdns-image

# Every native fuzz target of the plugins, FUZZTIME each (make test runs
# their seed corpora only).
FUZZTIME ?= 30s
.PHONY: fuzz
fuzz:
	@for pkg in ./plugin/envalias ./plugin/headlessonly; do \
		for target in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$pkg/*_test.go | cut -d' ' -f2); do \
			echo "== fuzz $$pkg $$target for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

# Both listeners under sustained queries while endpoints churn, SOAKTIME long
# (make test runs a short one): zero SERVFAIL, no stale endpoint, no
# goroutine or heap growth.
SOAKTIME ?= 60s
.PHONY: soak
soak:
	WARPDNS_SOAK=$(SOAKTIME) $(GO) -C test test -count=1 -v -run '^TestSoak$$' ./integration/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@status=0; for m in $(MODULES); do \
		echo "== go vet, staticcheck in module $$m"; \
		$(GO) -C $$m vet ./... && $(GO) -C $$m run $(STATICCHECK) ./... || status=1; \
	done; exit $$status

# Regenerate cmd/coredns/zplugin.go and zdirectives.go after editing plugin.cfg.
generate:
	cd cmd/coredns && $(GO) generate

clean:
	rm -rf $(BIN)
