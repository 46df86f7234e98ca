# Build a static binary, then ship it alone on a distroless, non-root base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/scopegate ./cmd/scopegate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/scopegate /usr/local/bin/scopegate
USER nonroot:nonroot
EXPOSE 9001 9002
ENTRYPOINT ["/usr/local/bin/scopegate"]
CMD ["serve", "--config", "/etc/scopegate/config.yaml"]
