package authz

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// maxIntrospectionResponse bounds the response body read from a provider.
const maxIntrospectionResponse = 64 << 10

// newIntrospectionClient returns the client of the introspection requests,
// at most maxConcurrent at once: c, or a client of its own.
func newIntrospectionClient(c *http.Client, maxConcurrent int) *http.Client {
	var client http.Client
	if c != nil {
		client = *c
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		// Every check of an uncached token is a request to one host: keep
		// enough connections open that a burst does not dial anew.
		t.MaxIdleConnsPerHost = maxConcurrent
		client.Transport = t
	}
	// A redirect would carry the token and the client secret elsewhere.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &client
}

// call asks the provider about token for a check from peer, unless the
// breaker is open or the request would exceed MaxConcurrent or peer's share
// of MaxRate: then it refuses at once, since a check that waited would hold
// its caller for a request that a flood may never let through.
func (in *Introspector) call(ctx context.Context, token string, peer netip.Addr) (CachedToken, error) {
	select {
	case in.slots <- struct{}{}:
		defer func() { <-in.slots }()
	default:
		in.stats.throttled.Add(1)
		return CachedToken{}, introspectionThrottled()
	}
	probe, ok := in.breaker.allow(time.Now())
	if !ok {
		in.stats.shortCircuits.Add(1)
		return CachedToken{}, &TokenError{Reason: ReasonIntrospectionDown, Unavailable: true,
			Description: "the introspection endpoint is failing; retry later"}
	}
	// After the breaker, so that an open breaker spends none of the rate.
	if !in.budget.allow(peer, time.Now()) {
		in.breaker.cancel(probe)
		in.stats.throttled.Add(1)
		return CachedToken{}, introspectionThrottled()
	}
	in.stats.calls.Add(1)
	t, failing, err := in.introspect(ctx, token)
	in.breaker.record(probe, !failing, time.Now())
	var te *TokenError
	if errors.As(err, &te) && te.Unavailable {
		n := in.stats.failures.Add(1)
		if te.Reason == ReasonIntrospectionDown {
			in.downLogs.Do(func() {
				in.log.Warn("introspection: the endpoint could not be asked; checks that need it are refused with 503",
					"why", te.Description, "err", te.Err, "introspection_failures", n)
			})
		}
	}
	return t, err
}

func introspectionThrottled() *TokenError {
	return &TokenError{Reason: ReasonIntrospectionDown, Unavailable: true,
		Description: "too many tokens are being introspected; retry later"}
}

// introspect asks the provider about token. Its answer holds until the
// cache should drop it. failing reports a failure of the provider itself,
// which the breaker counts: no answer in time, 429 or a 5xx status.
func (in *Introspector) introspect(ctx context.Context, token string) (t CachedToken, failing bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, in.timeout)
	defer cancel()
	secret := in.credential.get()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	if in.post {
		form.Set("client_id", in.clientID)
		form.Set("client_secret", secret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, in.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return CachedToken{}, false, introspectionFailed("the introspection request could not be made", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if !in.post {
		// RFC 6749 section 2.3.1: the credentials are form-encoded first.
		req.SetBasicAuth(url.QueryEscape(in.clientID), url.QueryEscape(secret))
	}
	resp, err := in.client.Do(req)
	if err != nil {
		return CachedToken{}, true, introspectionDown(err)
	}
	defer resp.Body.Close()
	if code := resp.StatusCode; code != http.StatusOK {
		status := &statusError{resp.Status}
		switch {
		case code == http.StatusTooManyRequests, code == http.StatusBadGateway,
			code == http.StatusServiceUnavailable, code == http.StatusGatewayTimeout:
			return CachedToken{}, true, introspectionDown(status)
		case code >= 500:
			return CachedToken{}, true, introspectionFailed("the introspection endpoint failed", status)
		}
		// A 4xx (or a redirect, never followed) refuses this request: a
		// token the provider will not read, or scopegate's credentials or
		// endpoint. The provider itself is answering.
		return CachedToken{}, false, introspectionFailed("the introspection endpoint refused the request", status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIntrospectionResponse+1))
	if err != nil {
		return CachedToken{}, true, introspectionDown(err)
	}
	if len(body) > maxIntrospectionResponse {
		return CachedToken{}, false, introspectionFailed("the introspection response is too large",
			fmt.Errorf("introspection response exceeds %d bytes", maxIntrospectionResponse))
	}
	t, err = in.parse(body, time.Now())
	return t, false, err
}

// introspectionDown is the refusal of a token because the provider could
// not be asked, err saying why. The description tells a timeout from a
// refused connection, a name that does not resolve, a failed TLS handshake
// and a dropped connection, without the endpoint's address, which is only
// in err, for the logs.
func introspectionDown(err error) *TokenError {
	return &TokenError{Reason: ReasonIntrospectionDown, Unavailable: true,
		Description: "the introspection endpoint " + unreachable(err) + "; retry later", Err: err}
}

// unreachable says why a request got no answer, in words fit for the
// caller.
func unreachable(err error) string {
	var (
		status   *statusError
		dns      *net.DNSError
		verify   *tls.CertificateVerificationError
		record   tls.RecordHeaderError
		alert    tls.AlertError
		netError net.Error
	)
	switch {
	case errors.As(err, &status):
		return "answered " + status.status
	case errors.As(err, &dns):
		// First: a name server that times out or refuses is not the
		// endpoint doing so.
		return "has a host name that does not resolve"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netError) && netError.Timeout():
		return "did not answer in time"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused the connection"
	case errors.As(err, &verify), errors.As(err, &record), errors.As(err, &alert),
		// net/http's words for a plain HTTP answer to a TLS hello, which
		// it exports no error for.
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return "failed the TLS handshake"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		// And for a connection closed before any answer.
		strings.Contains(err.Error(), "server closed idle connection"):
		return "closed the connection"
	}
	return "could not be reached"
}

// statusError is an answer of the introspection endpoint that says it is
// down or overloaded.
type statusError struct{ status string }

func (e *statusError) Error() string { return "introspection endpoint answered " + e.status }

// introspectionFailed is the refusal of a token the provider gave no usable
// answer about. The token may be valid, so the caller should retry rather
// than fetch a new one.
func introspectionFailed(desc string, err error) *TokenError {
	return &TokenError{Reason: ReasonIntrospection, Unavailable: true, Description: desc, Err: err}
}
