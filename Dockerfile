# syntax=docker/dockerfile:1
#
# roomhook container image: a static, CGO-free binary on distroless (no shell, no package
# manager), running as the numeric non-root user 65532 so Kubernetes' runAsNonRoot can verify it.
#
#   docker build --build-arg VERSION=0.1.0 -t ghcr.io/roomhook/roomhook:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=0.1.0 \
#     -t ghcr.io/roomhook/roomhook:0.1.0 --push .

# The builder runs on the build host's platform and cross-compiles, which is much faster than
# emulating the target architecture.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src

# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o /roomhook .

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="roomhook" \
      org.opencontainers.image.description="NATS JetStream-native webhook dispatcher for plugNmeet and LiveKit" \
      org.opencontainers.image.source="https://github.com/roomhook/roomhook" \
      org.opencontainers.image.version="$VERSION"
COPY --from=build /roomhook /roomhook
# Numeric, so that runAsNonRoot can check it without resolving a user name.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/roomhook"]
