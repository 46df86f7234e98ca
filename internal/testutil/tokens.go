package testutil

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/scopegate/scopegate/internal/devidp"
)

// A TokenOption changes the claims or the signing of a token that Token or
// one of the attack helpers makes.
type TokenOption func(*tokenSpec)

type tokenSpec struct {
	claims  map[string]any
	signing devidp.Signing
}

func (s *tokenSpec) header(name string, v any) {
	if s.signing.Header == nil {
		s.signing.Header = map[string]any{}
	}
	s.signing.Header[name] = v
}

// Scopes sets the scope claim to scopes, space-delimited.
func Scopes(scopes ...string) TokenOption {
	return Claim("scope", strings.Join(scopes, " "))
}

// Audience sets the aud claim: a string for one audience, an array for
// several; none removes it.
func Audience(aud ...string) TokenOption {
	switch len(aud) {
	case 0:
		return Claim("aud", nil)
	case 1:
		return Claim("aud", aud[0])
	}
	return Claim("aud", aud)
}

// Client makes the token be issued to the client id: it sets sub and
// client_id.
func Client(id string) TokenOption {
	return func(s *tokenSpec) {
		s.claims["sub"] = id
		s.claims["client_id"] = id
	}
}

// Claim sets the claim name to v, or removes it if v is nil.
func Claim(name string, v any) TokenOption {
	return func(s *tokenSpec) {
		if v == nil {
			delete(s.claims, name)
		} else {
			s.claims[name] = v
		}
	}
}

// Confirmation sets the RFC 7800 cnf claim to the members cnf, such as
// {"x5t#S256": CertificateThumbprint(t, cert)} for a token bound to a
// client certificate (RFC 8705) or {"jkt": thumbprint} for one bound to a
// DPoP key (RFC 9449).
func Confirmation(cnf map[string]any) TokenOption {
	return Claim("cnf", cnf)
}

// Header sets the header parameter name to v, or removes it if v is nil.
func Header(name string, v any) TokenOption {
	return func(s *tokenSpec) { s.header(name, v) }
}

// Alg makes the token be signed with the IdP's key for alg: devidp.RS256
// (the default), devidp.ES256 or devidp.EdDSA.
func Alg(alg string) TokenOption {
	return func(s *tokenSpec) { s.signing.Alg = alg }
}

// ExpiresIn sets exp to d from now; a negative d makes an expired token.
func ExpiresIn(d time.Duration) TokenOption {
	return func(s *tokenSpec) { s.claims["exp"] = time.Now().Add(d).Unix() }
}

// NotBeforeIn sets nbf to d from now.
func NotBeforeIn(d time.Duration) TokenOption {
	return func(s *tokenSpec) { s.claims["nbf"] = time.Now().Add(d).Unix() }
}

// IssuedIn sets iat to d from now; a positive d makes a token issued in
// the future.
func IssuedIn(d time.Duration) TokenOption {
	return func(s *tokenSpec) { s.claims["iat"] = time.Now().Add(d).Unix() }
}

// RandomKID names a random key, one the IdP does not have, in the kid
// header.
func RandomKID() TokenOption {
	return Header("kid", rand.Text())
}

// Padded adds a claim that makes the token at least size bytes long.
func Padded(size int) TokenOption {
	// Base64 makes 4 characters of 3 bytes.
	return Claim("pad", strings.Repeat("x", size*3/4))
}

// spec returns the claims of a token the IdP issues now to DefaultClientID
// for DefaultAudience, changed by opts.
func (i *IdP) spec(opts []TokenOption) *tokenSpec {
	s := &tokenSpec{claims: i.p.Claims(DefaultClientID, nil, []string{DefaultAudience})}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Token returns a token the IdP signs: issued now to DefaultClientID for
// DefaultAudience with no scope, valid for devidp.DefaultTTL and signed
// with RS256, unless opts say otherwise.
func (i *IdP) Token(t testing.TB, opts ...TokenOption) string {
	t.Helper()
	s := i.spec(opts)
	tok, err := i.p.Mint(s.claims, s.signing)
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	return tok
}

// UnsignedToken returns a token like Token's with the algorithm "none" and
// no signature (RFC 7519 section 6). It names the IdP's RS256 kid.
func (i *IdP) UnsignedToken(t testing.TB, opts ...TokenOption) string {
	t.Helper()
	s := i.spec(opts)
	return sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, i.p.KeyID(devidp.RS256), s)
}

// KeyConfusionTokens returns tokens like Token's signed with HS256 and the
// IdP's RSA public key as the HMAC secret, as an attacker who hopes that a
// verifier passes the key it finds to whatever algorithm the token names.
// They are keyed by the encoding of the key used as the secret: PKIX and
// PKCS #1, PEM and DER. They name the IdP's RS256 kid.
func (i *IdP) KeyConfusionTokens(t testing.TB, opts ...TokenOption) map[string]string {
	t.Helper()
	pub := i.p.PublicKey(devidp.RS256).(*rsa.PublicKey)
	pkix, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	pkcs1 := x509.MarshalPKCS1PublicKey(pub)
	secrets := map[string][]byte{
		"PKIX PEM":  pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix}),
		"PKCS1 PEM": pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pkcs1}),
		"PKIX DER":  pkix,
		"PKCS1 DER": pkcs1,
	}
	toks := make(map[string]string, len(secrets))
	for form, secret := range secrets {
		s := i.spec(opts)
		toks[form] = sign(t, jwt.SigningMethodHS256, secret, i.p.KeyID(devidp.RS256), s)
	}
	return toks
}

// sign signs s with method and key, outside any IdP, naming kid.
func sign(t testing.TB, method jwt.SigningMethod, key any, kid string, s *tokenSpec) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, jwt.MapClaims(s.claims))
	tok.Header["typ"] = devidp.TokenType
	tok.Header["kid"] = kid
	for name, v := range s.signing.Header {
		if v == nil {
			delete(tok.Header, name)
		} else {
			tok.Header[name] = v
		}
	}
	str, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("testutil: signing with %s: %v", method.Alg(), err)
	}
	return str
}

// Forge returns a token with the claims that victim's Token would have,
// its issuer included, but signed with i's key under i's kid: i plays an
// attacker who holds a key of its own.
func (i *IdP) Forge(t testing.TB, victim *IdP, opts ...TokenOption) string {
	t.Helper()
	s := victim.spec(opts)
	tok, err := i.p.Mint(s.claims, s.signing)
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	return tok
}

// JKUToken returns a token forged as by Forge whose jku header points at
// i's JWKS, which holds the forging key: a verifier that fetches keys from
// jku accepts it, and i's Requests count the fetches.
func (i *IdP) JKUToken(t testing.TB, victim *IdP, opts ...TokenOption) string {
	t.Helper()
	return i.Forge(t, victim, append([]TokenOption{Header("jku", i.JWKSURL())}, opts...)...)
}

// EmbeddedJWKToken returns a token forged as by Forge that carries the
// forging public key in its jwk header and names victim's kid for the
// algorithm: a verifier that trusts an embedded key accepts it.
func (i *IdP) EmbeddedJWKToken(t testing.TB, victim *IdP, opts ...TokenOption) string {
	t.Helper()
	s := victim.spec(opts)
	alg := cmp.Or(s.signing.Alg, devidp.RS256)
	jwk, err := jwkset.NewJWKFromKey(i.p.PublicKey(alg), jwkset.JWKOptions{
		Metadata: jwkset.JWKMetadataOptions{ALG: jwkset.ALG(alg), KID: victim.KeyID(alg)},
	})
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	header := map[string]any{"kid": victim.KeyID(alg), "jwk": jwk.Marshal()}
	maps.Copy(header, s.signing.Header)
	s.signing.Header = header
	tok, err := i.p.Mint(s.claims, s.signing)
	if err != nil {
		t.Fatalf("testutil: %v", err)
	}
	return tok
}

// Tamper returns token with its payload changed, the claim name set to v
// (or removed if v is nil), and its header and signature kept as they are.
func Tamper(t testing.TB, token, name string, v any) string {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("testutil: Tamper: the token has %d parts, not 3", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("testutil: Tamper: the payload: %v", err)
	}
	var claims map[string]any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		t.Fatalf("testutil: Tamper: the payload: %v", err)
	}
	if v == nil {
		delete(claims, name)
	} else {
		claims[name] = v
	}
	payload, err = json.Marshal(claims)
	if err != nil {
		t.Fatalf("testutil: Tamper: %v", err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}
