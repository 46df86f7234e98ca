# Build a static binary, then ship it alone on a distroless, non-root base.
# Both images are pinned by digest; the Go image's version is go.mod's
# (a test holds them together). To move on: crane digest IMAGE:TAG.
FROM golang:1.26.8@sha256:3c3e25a4da13fd0478eed2df1eb35a0e667094a7124d3993a6a1d30f71c17e79 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# VERSION and COMMIT stamp `scopegate version` and scopegate_build_info:
# .git is not in the build context, so Go records no commit of its own.
ARG VERSION=
ARG COMMIT=
RUN CGO_ENABLED=0 go build -trimpath \
    -ldflags="-s -w ${VERSION:+-X github.com/scopegate/scopegate/internal/buildinfo.Version=${VERSION}} ${COMMIT:+-X github.com/scopegate/scopegate/internal/buildinfo.Commit=${COMMIT}}" \
    -o /out/scopegate ./cmd/scopegate

FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab
COPY --from=build /out/scopegate /usr/local/bin/scopegate
COPY examples/container/config.yaml /etc/scopegate/config.yaml
COPY examples/policy.yaml /etc/scopegate/policy.yaml
USER nonroot:nonroot
# ext_authz over HTTP, ext_authz over gRPC, admin (/healthz, /readyz, /metrics, /policy).
EXPOSE 9004 9001 9002
ENTRYPOINT ["/usr/local/bin/scopegate"]
CMD ["serve", "--config", "/etc/scopegate/config.yaml"]
