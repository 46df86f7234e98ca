package main

import (
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"
)

func TestJunkTokensHaveTheFormOfValidOnes(t *testing.T) {
	valid, junk := opaqueTokens(100), junkTokens(100)
	for i := range valid {
		if !harnessToken(valid[i]) || harnessToken(junk[i]) {
			t.Fatalf("harnessToken(%q) = %v, harnessToken(%q) = %v; want true, false",
				valid[i], harnessToken(valid[i]), junk[i], harnessToken(junk[i]))
		}
		if len(valid[i]) != 33 || len(junk[i]) != 33 {
			t.Fatalf("%q and %q do not have the 33 bytes of opaqueFormat", valid[i], junk[i])
		}
	}
}

func TestEncodeRequestCarriesThePeer(t *testing.T) {
	for _, peer := range []string{"", "127.0.0.7"} {
		b, err := encodeRequest(&Request{Method: "GET", Host: benchHost, Path: "/", Peer: peer})
		if err != nil {
			t.Fatal(err)
		}
		var m authv3.CheckRequest
		if err := proto.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		want := peer
		if want == "" {
			want = "127.0.0.1"
		}
		if got := m.GetAttributes().GetSource().GetAddress().GetSocketAddress().GetAddress(); got != want {
			t.Errorf("Peer %q: source address %q, want %q", peer, got, want)
		}
	}
}
