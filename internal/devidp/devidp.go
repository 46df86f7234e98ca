// Package devidp is a small OAuth 2.0 authorization server for development
// and tests. It issues JWT access tokens (RFC 9068) by the client-credentials
// grant (RFC 6749 section 4.4) and publishes its signing keys as a JWKS and
// in an OpenID discovery document. It keeps everything in memory, makes
// fresh keys every time it starts, and is meant to serve loopback only.
package devidp

import (
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
)

// The signature algorithms of the IdP's keys.
const (
	RS256 = "RS256"
	ES256 = "ES256"
	EdDSA = "EdDSA"
)

// The paths of the IdP's endpoints, below its issuer URL.
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	JWKSPath      = "/jwks.json"
	TokenPath     = "/dev/token"
)

// TokenType is the typ header of the IdP's access tokens (RFC 9068
// section 2.1).
const TokenType = "at+jwt"

// DefaultTTL is the lifetime of the tokens of an IdP configured without one.
const DefaultTTL = 5 * time.Minute

// maxTokenRequest bounds the body of a token request.
const maxTokenRequest = 64 << 10

// Client is a client registered with the IdP.
type Client struct {
	ID     string
	Secret string
	// Scopes are the scopes the client may be granted. A request that
	// names none is granted them all.
	Scopes []string
	// Audience lists the audiences (aud) the client's tokens may be meant
	// for. A request that names none gets them all.
	Audience []string
}

// Config configures an IdP.
type Config struct {
	// Issuer is the IdP's URL and the iss of its tokens. When it is known
	// only once the IdP listens, set it then with SetIssuer. Its path, if
	// any, is where Handler must be mounted.
	Issuer  string
	Clients []Client
	// TTL is the lifetime of the tokens; zero means DefaultTTL.
	TTL time.Duration
}

// IdP is an in-memory OAuth 2.0 authorization server. It holds an RS256, an
// ES256 and an EdDSA key, and publishes every key it holds; the newest key
// of an algorithm signs. It is safe for concurrent use.
type IdP struct {
	ttl     time.Duration
	clients map[string]Client

	mu     sync.RWMutex
	issuer string
	keys   []*signingKey // oldest first
}

type signingKey struct {
	kid    string
	alg    string
	method jwt.SigningMethod
	signer crypto.Signer
}

// New returns an IdP with a fresh key for each algorithm.
func New(cfg Config) (*IdP, error) {
	if cfg.TTL < 0 {
		return nil, errors.New("devidp: the token TTL must not be negative")
	}
	p := &IdP{
		ttl:     cmp.Or(cfg.TTL, DefaultTTL),
		clients: make(map[string]Client, len(cfg.Clients)),
		issuer:  cfg.Issuer,
	}
	for i, c := range cfg.Clients {
		switch _, dup := p.clients[c.ID]; {
		case c.ID == "":
			return nil, fmt.Errorf("devidp: clients[%d]: the client ID is required", i)
		case c.Secret == "":
			return nil, fmt.Errorf("devidp: client %q: the secret is required", c.ID)
		case dup:
			return nil, fmt.Errorf("devidp: client %q is registered twice", c.ID)
		}
		c.Scopes, c.Audience = slices.Clone(c.Scopes), slices.Clone(c.Audience)
		p.clients[c.ID] = c
	}
	for _, alg := range []string{RS256, ES256, EdDSA} {
		k, err := newSigningKey(alg)
		if err != nil {
			return nil, fmt.Errorf("devidp: %w", err)
		}
		p.keys = append(p.keys, k)
	}
	return p, nil
}

func newSigningKey(alg string) (*signingKey, error) {
	var (
		signer crypto.Signer
		err    error
	)
	switch alg {
	case RS256:
		signer, err = rsa.GenerateKey(rand.Reader, 2048)
	case ES256:
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("algorithm %q is not %s, %s or %s", alg, RS256, ES256, EdDSA)
	}
	if err != nil {
		return nil, fmt.Errorf("generating an %s key: %w", alg, err)
	}
	return &signingKey{kid: rand.Text(), alg: alg, method: jwt.GetSigningMethod(alg), signer: signer}, nil
}

// SetIssuer sets the IdP's URL, for when it is known only once the IdP
// listens.
func (p *IdP) SetIssuer(url string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.issuer = url
}

// Issuer returns the IdP's URL, the iss of its tokens.
func (p *IdP) Issuer() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.issuer
}

// Rotate makes a new key sign the tokens of algorithm alg and returns its
// kid. The IdP goes on publishing the older keys of alg if keepOld is set,
// so that the tokens they signed still verify, and drops them otherwise.
func (p *IdP) Rotate(alg string, keepOld bool) (kid string, err error) {
	k, err := newSigningKey(alg)
	if err != nil {
		return "", fmt.Errorf("devidp: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !keepOld {
		p.keys = slices.DeleteFunc(p.keys, func(old *signingKey) bool { return old.alg == alg })
	}
	p.keys = append(p.keys, k)
	return k.kid, nil
}

// KeyID returns the kid of the key that signs with alg, or "" if alg is not
// one of the IdP's algorithms.
func (p *IdP) KeyID(alg string) string {
	if k := p.signingKey(alg); k != nil {
		return k.kid
	}
	return ""
}

// PublicKey returns the public key that verifies the tokens signed with
// alg, or nil if alg is not one of the IdP's algorithms.
func (p *IdP) PublicKey(alg string) crypto.PublicKey {
	if k := p.signingKey(alg); k != nil {
		return k.signer.Public()
	}
	return nil
}

func (p *IdP) signingKey(alg string) *signingKey {
	p.mu.RLock()
	defer p.mu.RUnlock()
	for _, k := range slices.Backward(p.keys) {
		if k.alg == alg {
			return k
		}
	}
	return nil
}

// Claims returns the claims of an access token issued now to clientID for
// scopes and audience, as the token endpoint issues them (RFC 9068
// section 2.2). Empty scopes or audience leave the claim out.
func (p *IdP) Claims(clientID string, scopes, audience []string) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss":       p.Issuer(),
		"sub":       clientID,
		"client_id": clientID,
		"iat":       now.Unix(),
		"exp":       now.Add(p.ttl).Unix(),
		"jti":       rand.Text(),
	}
	if len(scopes) > 0 {
		c["scope"] = strings.Join(scopes, " ")
	}
	switch len(audience) {
	case 0:
	case 1:
		c["aud"] = audience[0]
	default:
		c["aud"] = slices.Clone(audience)
	}
	return c
}

// Signing says how Mint signs a token. The zero value signs with the
// current RS256 key.
type Signing struct {
	Alg string // RS256 (the default), ES256 or EdDSA
	// Header sets header parameters over those Mint sets (alg, typ
	// "at+jwt" and the key's kid), or adds others such as jku or crit. A
	// nil value removes a parameter.
	Header map[string]any
}

// Mint signs claims as they are, with the current key of s.Alg. It checks
// nothing, so that tests can make any token the IdP could sign.
func (p *IdP) Mint(claims map[string]any, s Signing) (string, error) {
	alg := cmp.Or(s.Alg, RS256)
	k := p.signingKey(alg)
	if k == nil {
		return "", fmt.Errorf("devidp: no %q key: the IdP signs with %s, %s or %s", alg, RS256, ES256, EdDSA)
	}
	t := jwt.NewWithClaims(k.method, jwt.MapClaims(claims))
	t.Header["typ"] = TokenType
	t.Header["kid"] = k.kid
	for name, v := range s.Header {
		if v == nil {
			delete(t.Header, name)
		} else {
			t.Header[name] = v
		}
	}
	tok, err := t.SignedString(k.signer)
	if err != nil {
		return "", fmt.Errorf("devidp: signing a token with %s: %w", alg, err)
	}
	return tok, nil
}

// JWKS returns the public keys of the IdP as a JSON Web Key Set.
func (p *IdP) JWKS() (jwkset.JWKSMarshal, error) {
	p.mu.RLock()
	keys := slices.Clone(p.keys)
	p.mu.RUnlock()
	set := jwkset.JWKSMarshal{Keys: make([]jwkset.JWKMarshal, 0, len(keys))}
	for _, k := range keys {
		jwk, err := jwkset.NewJWKFromKey(k.signer.Public(), jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.ALG(k.alg), KID: k.kid, USE: jwkset.UseSig},
		})
		if err != nil {
			return jwkset.JWKSMarshal{}, fmt.Errorf("devidp: the %s key %s as a JWK: %w", k.alg, k.kid, err)
		}
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	return set, nil
}

// Handler returns the IdP's endpoints: GET DiscoveryPath, GET JWKSPath and
// POST TokenPath, relative to the issuer URL.
func (p *IdP) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+DiscoveryPath, p.serveDiscovery)
	mux.HandleFunc("GET "+JWKSPath, p.serveJWKS)
	mux.HandleFunc("POST "+TokenPath, p.serveToken)
	return mux
}

func (p *IdP) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	iss := p.Issuer()
	base := strings.TrimSuffix(iss, "/")
	var scopes []string
	for _, c := range p.clients {
		scopes = append(scopes, c.Scopes...)
	}
	slices.Sort(scopes)
	writeJSON(w, http.StatusOK, struct {
		Issuer        string   `json:"issuer"`
		JWKSURI       string   `json:"jwks_uri"`
		TokenEndpoint string   `json:"token_endpoint"`
		GrantTypes    []string `json:"grant_types_supported"`
		AuthMethods   []string `json:"token_endpoint_auth_methods_supported"`
		Scopes        []string `json:"scopes_supported,omitempty"`
	}{
		Issuer:        iss,
		JWKSURI:       base + JWKSPath,
		TokenEndpoint: base + TokenPath,
		GrantTypes:    []string{"client_credentials"},
		AuthMethods:   []string{"client_secret_basic", "client_secret_post"},
		Scopes:        slices.Compact(scopes),
	})
}

func (p *IdP) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	set, err := p.JWKS()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, set)
}

// serveToken is the token endpoint of the client-credentials grant.
func (p *IdP) serveToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenRequest)
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "the request body is not a readable form")
		return
	}
	form := r.PostForm
	// RFC 6749 section 3.2: parameters must not be repeated.
	for _, name := range []string{"grant_type", "scope", "client_id", "client_secret"} {
		if len(form[name]) > 1 {
			oauthError(w, http.StatusBadRequest, "invalid_request", "the parameter "+name+" is repeated")
			return
		}
	}
	switch gt := form.Get("grant_type"); gt {
	case "client_credentials":
	case "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "grant_type is required")
		return
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
		return
	}
	c, errCode, errDesc := p.authenticate(r)
	if errCode != "" {
		status := http.StatusBadRequest
		if errCode == "invalid_client" {
			status = http.StatusUnauthorized
			w.Header().Set("WWW-Authenticate", `Basic realm="devidp"`)
		}
		oauthError(w, status, errCode, errDesc)
		return
	}
	scopes, bad := grant(strings.Fields(form.Get("scope")), c.Scopes)
	if bad != "" {
		oauthError(w, http.StatusBadRequest, "invalid_scope", fmt.Sprintf("the scope %q is not granted to this client", bad))
		return
	}
	audience, bad := grant(form["audience"], c.Audience)
	if bad != "" {
		oauthError(w, http.StatusBadRequest, "invalid_target", fmt.Sprintf("the audience %q is not granted to this client", bad))
		return
	}
	tok, err := p.Mint(p.Claims(c.ID, scopes, audience), Signing{})
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", "the token could not be signed")
		return
	}
	writeJSON(w, http.StatusOK, struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
		Scope       string `json:"scope,omitempty"`
	}{tok, "Bearer", int64(p.ttl / time.Second), strings.Join(scopes, " ")})
}

// authenticate returns the client that r authenticates as, by HTTP Basic
// or by the form's client_id and client_secret (RFC 6749 section 2.3.1),
// or the OAuth error code and description of the failure.
func (p *IdP) authenticate(r *http.Request) (c Client, errCode, errDesc string) {
	id, secret, basic := r.BasicAuth()
	formID, formSecret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if basic {
		// The credentials are form-encoded before they are Base64-encoded.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		switch {
		case err1 != nil || err2 != nil:
			return Client{}, "invalid_client", "the Basic credentials are not form-encoded"
		case formSecret != "", formID != "" && formID != id:
			return Client{}, "invalid_request", "the client authenticates in more than one way"
		}
	} else {
		id, secret = formID, formSecret
	}
	if id == "" {
		return Client{}, "invalid_client", "client authentication is required"
	}
	c, known := p.clients[id]
	// Compare digests in constant time, against a stand-in for an unknown
	// client too, so that timing tells neither the secret nor which clients
	// exist.
	want := sha256.Sum256([]byte(c.Secret))
	got := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(want[:], got[:]) != 1 || !known {
		return Client{}, "invalid_client", "the client is unknown or its secret is wrong"
	}
	return c, "", ""
}

// grant returns the requested values, without repeats, or all of allowed
// when none is requested; bad is the first requested value not allowed.
func grant(requested, allowed []string) (granted []string, bad string) {
	if len(requested) == 0 {
		return allowed, ""
	}
	for _, v := range requested {
		if !slices.Contains(allowed, v) {
			return nil, v
		}
		if !slices.Contains(granted, v) {
			granted = append(granted, v)
		}
	}
	return granted, ""
}

// oauthError writes an error response of RFC 6749 section 5.2.
func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{code, desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
