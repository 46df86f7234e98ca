package main

import (
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/scopegate/scopegate/envoy"
)

func TestAppendedAuthorizationReadsAsTheHeader(t *testing.T) {
	r := &Request{Method: "GET", Host: benchHost, Path: "/orders/42"}
	for _, h := range []string{"Bearer short", "Bearer " + string(make([]byte, 300))} {
		b, err := encodeRequest(r)
		if err != nil {
			t.Fatal(err)
		}
		var got authv3.CheckRequest
		if err := proto.Unmarshal(appendAuthorization(b, h), &got); err != nil {
			t.Fatal(err)
		}
		want := envoy.CheckRequest(r.Method, r.Host, r.Path, map[string]string{"authorization": h})
		if !proto.Equal(&got, want) {
			t.Errorf("got %v\nwant %v", &got, want)
		}
	}
}

func TestReadAnswer(t *testing.T) {
	meta := func(reason string) *structpb.Struct {
		return &structpb.Struct{Fields: map[string]*structpb.Value{
			"route": structpb.NewStringValue("r"), "reason": structpb.NewStringValue(reason)}}
	}
	tests := []struct {
		name string
		resp *authv3.CheckResponse
		want answer
	}{
		{"floor allow", allowed, answer{code: 0}},
		{"scopegate allow", &authv3.CheckResponse{Status: &rpcstatus.Status{}, DynamicMetadata: meta("allowed"),
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}}}, answer{code: 0, reason: "allowed"}},
		{"deny with metadata", &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.Unauthenticated), Message: "m"},
			DynamicMetadata: meta("bad_signature"), HttpResponse: &authv3.CheckResponse_DeniedResponse{
				DeniedResponse: &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: 401}, Body: "{}"}}},
			answer{code: int32(codes.Unauthenticated), reason: "bad_signature"}},
		{"deny with a message only", &authv3.CheckResponse{Status: &rpcstatus.Status{Code: int32(codes.PermissionDenied), Message: "no"}},
			answer{code: int32(codes.PermissionDenied), reason: "no"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := proto.Marshal(tt.resp)
			if err != nil {
				t.Fatal(err)
			}
			if got, ok := readAnswer(b); !ok || got != tt.want {
				t.Errorf("readAnswer = %+v, %v; want %+v", got, ok, tt.want)
			}
		})
	}
	if _, ok := readAnswer([]byte{0x0a, 0x7f}); ok {
		t.Error("readAnswer read a truncated response")
	}
}
