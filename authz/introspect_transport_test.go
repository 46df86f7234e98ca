package authz_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/testutil"
)

// TestIntrospectTellsWhyTheEndpointCouldNotBeAsked pins that a refused
// connection is not reported as a timeout, nor a timeout as a refusal: the
// description says what happened, with no address in it, and the reason
// stays introspection_unavailable, a 503.
func TestIntrospectTellsWhyTheEndpointCouldNotBeAsked(t *testing.T) {
	// The endpoints below never get far enough to check the secret.
	t.Setenv("SCOPEGATE_TEST_SECRET", "s3cret")
	tests := []struct {
		name     string
		endpoint func(t *testing.T) string
		want     string
	}{
		{"a server that is not TLS", func(t *testing.T) string {
			return "https://" + strings.TrimPrefix(answerWith("garbage garbage garbage\n")(t), "http://")
		}, "failed the TLS handshake"},
		{"a closed port refuses the connection", closedPort, "refused the connection"},
		{"a slow endpoint does not answer in time", func(t *testing.T) string {
			srv := testutil.NewIntrospectionServer(t)
			srv.SetDelay(time.Minute) // until the client gives up
			return srv.URL
		}, "did not answer in time"},
		{"a host name that cannot resolve", func(*testing.T) string { return "https://idp..example/introspect" }, "has a host name that does not resolve"},
		{"a certificate that is not trusted", func(t *testing.T) string {
			srv := httptest.NewTLSServer(http.NotFoundHandler())
			t.Cleanup(srv.Close)
			return srv.URL + "/introspect"
		}, "failed the TLS handshake"},
		{"TLS spoken to a plain HTTP server", func(t *testing.T) string {
			srv := httptest.NewServer(http.NotFoundHandler())
			t.Cleanup(srv.Close)
			return "https://" + strings.TrimPrefix(srv.URL, "http://") + "/introspect"
		}, "failed the TLS handshake"},
		{"a connection closed without an answer", answerWith(""), "closed the connection"},
		{"an endpoint shedding load", func(t *testing.T) string {
			srv := testutil.NewIntrospectionServer(t)
			srv.SetStatus(http.StatusServiceUnavailable)
			return srv.URL
		}, "answered 503 Service Unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			endpoint := tt.endpoint(t)
			// Long enough for a loaded machine to fail in every other way
			// first, short for the slow endpoint.
			timeout := 5 * time.Second
			if strings.Contains(tt.want, "in time") {
				timeout = 200 * time.Millisecond
			}
			in := newIntrospector(t, authz.Introspection{Endpoint: endpoint, ClientID: "scopegate", ClientSecretEnv: "SCOPEGATE_TEST_SECRET", Timeout: timeout})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := in.Verify(ctx, newToken(t))
			wantReason(t, err, authz.ReasonIntrospectionDown, true)
			var te *authz.TokenError
			errors.As(err, &te)
			if want := "the introspection endpoint " + tt.want + "; retry later"; te.Description != want {
				t.Errorf("description %q, want %q (cause: %v)", te.Description, want, te.Err)
			}
			host := strings.Split(strings.SplitN(endpoint, "//", 2)[1], "/")[0]
			if strings.Contains(te.Description, host) {
				t.Errorf("description %q shows the endpoint's address", te.Description)
			}
		})
	}
}

// closedPort returns an endpoint on a loopback port that was listened on
// and closed: connecting to it is refused.
func closedPort(t *testing.T) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return "http://" + addr + "/introspect"
}

// answerWith returns an endpoint that answers every connection with
// reply, without reading the request, and closes it.
func answerWith(reply string) func(t *testing.T) string {
	return func(t *testing.T) string {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { lis.Close() })
		go func() {
			for {
				c, err := lis.Accept()
				if err != nil {
					return
				}
				c.Write([]byte(reply))
				c.Close()
			}
		}()
		return "http://" + lis.Addr().String() + "/introspect"
	}
}
