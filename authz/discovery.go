package authz

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// jwksTimeout bounds one fetch of a JWKS or of a discovery document.
const jwksTimeout = 10 * time.Second

// maxJWKSResponse caps the body of a JWKS or discovery response: a broken
// or hostile endpoint must not exhaust memory.
const maxJWKSResponse = 1 << 20

// checkKeyURL requires an absolute https URL, or http to a loopback host,
// or to any host when insecureHTTP allows it: keys fetched in the clear
// could be replaced on the way.
func checkKeyURL(raw string, insecureHTTP bool) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return err
	case u.Host == "":
		return fmt.Errorf("%q is not an absolute URL", raw)
	case u.Scheme == "https", u.Scheme == "http" && (insecureHTTP || isLoopback(u.Hostname())):
		return nil
	}
	return fmt.Errorf("%q must be an https URL (http only to a loopback host, or with allow_insecure_http): keys fetched in the clear could be replaced on the way", raw)
}

// newJWKSClient returns the client of the key and discovery requests: c,
// or one with a jwksTimeout timeout, whose response bodies are capped and
// whose redirects must go where checkKeyURL allows without
// allow_insecure_http: a redirect never downgrades to plain http.
func newJWKSClient(c *http.Client) *http.Client {
	client := http.Client{Timeout: jwksTimeout}
	if c != nil {
		client = *c
	}
	client.Transport = cappedBodies{cmp.Or(client.Transport, http.DefaultTransport)}
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return checkKeyURL(req.URL.String(), false)
	}
	return &client
}

// cappedBodies is a RoundTripper whose response bodies fail past
// maxJWKSResponse bytes.
type cappedBodies struct{ rt http.RoundTripper }

func (c cappedBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(req)
	if err == nil {
		resp.Body = &cappedBody{ReadCloser: resp.Body, left: maxJWKSResponse}
	}
	return resp, err
}

type cappedBody struct {
	io.ReadCloser
	left int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("the response is larger than %d bytes", maxJWKSResponse)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

// discovery is the part of an OpenID Provider configuration (OpenID
// Connect Discovery 1.0, section 3) that scopegate uses.
type discovery struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
}

// discover fetches the OpenID Provider configuration of issuer, which must
// name the same issuer (section 4.3: a document for another issuer must not
// be used).
func discover(ctx context.Context, client *http.Client, issuer string) (*discovery, error) {
	where := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("discovery: %s answered %s", where, resp.Status)
	}
	var doc discovery
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return nil, fmt.Errorf("discovery: %s: %w", where, err)
	}
	if doc.Issuer != issuer {
		return nil, fmt.Errorf("discovery: %s is the configuration of issuer %q, not %q", where, doc.Issuer, issuer)
	}
	return &doc, nil
}

// discoverJWKSURI returns the jwks_uri of issuer's discovery document,
// which may be plain http when insecureHTTP allows it.
func discoverJWKSURI(ctx context.Context, client *http.Client, issuer string, insecureHTTP bool) (string, error) {
	doc, err := discover(ctx, client, issuer)
	if err != nil {
		return "", err
	}
	if doc.JWKSURI == "" {
		return "", fmt.Errorf("discovery: %s has no jwks_uri", issuer)
	}
	if err := checkKeyURL(doc.JWKSURI, insecureHTTP); err != nil {
		return "", fmt.Errorf("discovery: %s: jwks_uri: %w", issuer, err)
	}
	return doc.JWKSURI, nil
}

// DiscoverIntrospection fills c.Endpoint, when it is empty, from the
// introspection_endpoint of c.Issuer's discovery document, which it
// fetches with client (for a custom TLS configuration; nil means a client
// with a 10s timeout).
func DiscoverIntrospection(ctx context.Context, c *Introspection, client *http.Client) error {
	if c.Endpoint != "" {
		return nil
	}
	doc, err := discover(ctx, newJWKSClient(client), c.Issuer)
	if err != nil {
		return fmt.Errorf("introspection: %w", err)
	}
	if doc.IntrospectionEndpoint == "" {
		return fmt.Errorf("introspection: the discovery document of %s has no introspection_endpoint: set endpoint", c.Issuer)
	}
	if err := checkEndpoint(doc.IntrospectionEndpoint, c.AllowInsecureHTTP); err != nil {
		return fmt.Errorf("introspection: discovered endpoint: %w", err)
	}
	c.Endpoint = doc.IntrospectionEndpoint
	return nil
}
