package envoy

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// CheckRequest builds the CheckRequest that Envoy's ext_authz filter sends
// for one HTTP/1.1 request from 127.0.0.1, with the pseudo-headers Envoy
// adds. Header names must be lower case, as Envoy sends them. It is for
// clients that stand in for Envoy: `scopegate check`, tests and the load
// harness.
func CheckRequest(method, host, path string, headers map[string]string) *authv3.CheckRequest {
	h := make(map[string]string, len(headers)+4)
	for k, v := range headers {
		h[k] = v
	}
	h[":method"], h[":authority"], h[":path"], h[":scheme"] = method, host, path, "http"
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 50000}},
		}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: method, Host: host, Path: path, Scheme: "http", Protocol: "HTTP/1.1", Headers: h,
		}},
	}}
}
