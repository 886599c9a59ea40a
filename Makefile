# warpdns: CoreDNS v1.15.0 plus envalias and headlessonly.
#   make run    local control plane + demo world + our coredns on loopback
#   make test   unit and integration tests (real etcd + kube-apiserver)

GO          ?= go
BIN         := bin
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS     := -s -w -X main.Version=$(VERSION) -X github.com/coredns/coredns/coremain.GitCommit=$(COMMIT)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# make run's loopback ports, standing in for :53 (in-cluster) and :5353 (VPC).
PORT        ?= 1053
VPC_PORT    ?= 1054

# `make run KUBECONFIG=path` serves that cluster. Only a KUBECONFIG given on
# the command line counts: one exported in the shell must not send the demo
# to a real cluster by surprise.
ifeq ($(origin KUBECONFIG),command line)
RUN_CLUSTER := -kubeconfig $(KUBECONFIG)
endif

.PHONY: all build run test lint generate clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/coredns ./cmd/coredns

run: build
	$(GO) build -o $(BIN)/warpdns-run ./test/demo
	$(BIN)/warpdns-run -coredns $(BIN)/coredns -corefile Corefile.example -port $(PORT) -vpc-port $(VPC_PORT) $(RUN_CLUSTER)

# The first run builds etcd, kube-apiserver and upstream CoreDNS from the Go
# module proxy (several minutes) and caches them in ~/.cache/warpdns.
test:
	$(GO) test -count=1 -timeout 30m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Regenerate cmd/coredns/zplugin.go and zdirectives.go after editing plugin.cfg.
generate:
	cd cmd/coredns && $(GO) generate

clean:
	rm -rf $(BIN)
