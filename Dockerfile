# warpdns: CoreDNS v1.15.0 with envalias and headlessonly, as a drop-in for
# the kube-dns/CoreDNS image. For users with Docker; `make image` builds the
# same image without a daemon or network (tools/warpdns-image). A test keeps the two
# in agreement: user 65532, entrypoint /coredns, the same ports.
#
#   docker build -t registry.example.com/warpdns:0.1.0 --build-arg VERSION=0.1.0 .
#
# Multi-platform: docker buildx build --platform linux/amd64,linux/arm64 ...
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.Version=${VERSION}" -o /out/coredns ./cmd/coredns
RUN printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > /out/passwd && \
    printf 'root:x:0:\nnonroot:x:65532:\n' > /out/group

# No base image: a static binary needs no libc, shell or package manager.
FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/passwd /etc/passwd
COPY --from=build /out/group /etc/group
COPY --from=build /out/coredns /coredns
USER 65532:65532
EXPOSE 53/udp 53/tcp 5353/udp 5353/tcp 8080/tcp 8181/tcp 9153/tcp
ENTRYPOINT ["/coredns"]
CMD ["-conf", "/etc/coredns/Corefile"]
