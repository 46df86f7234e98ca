package testutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"maps"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// DPoPKey is a client's DPoP key (RFC 9449), generated for a test, that
// signs proofs with golang-jwt.
type DPoPKey struct {
	Alg    string
	Signer crypto.Signer
	// JWK is the public key as a proof's jwk header carries it.
	JWK map[string]any
	// JKT is the key's RFC 7638 SHA-256 thumbprint, base64url, computed
	// here from the members that RFC 7638 §3.2 names, as a token's
	// cnf.jkt holds it.
	JKT string
}

// NewDPoPKey generates a key for alg: ES256 (P-256), EdDSA (Ed25519),
// or RS256 and PS256 (RSA 2048).
func NewDPoPKey(t testing.TB, alg string) *DPoPKey {
	t.Helper()
	var signer crypto.Signer
	var err error
	switch alg {
	case "ES256":
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	case "RS256", "PS256":
		signer, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		t.Fatalf("NewDPoPKey: no key for %s", alg)
	}
	if err != nil {
		t.Fatalf("NewDPoPKey: %v", err)
	}
	raw, err := json.Marshal(jose.JSONWebKey{Key: signer.Public()})
	if err != nil {
		t.Fatalf("NewDPoPKey: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("NewDPoPKey: %v", err)
	}
	// RFC 7638 §3.2: the required members only, in lexicographic order,
	// without whitespace; encoding/json sorts a map's keys.
	required := map[string][]string{"EC": {"crv", "kty", "x", "y"}, "OKP": {"crv", "kty", "x"}, "RSA": {"e", "kty", "n"}}
	thumb := map[string]any{}
	for _, name := range required[m["kty"].(string)] {
		thumb[name] = m[name]
	}
	canon, _ := json.Marshal(thumb)
	sum := sha256.Sum256(canon)
	return &DPoPKey{Alg: alg, Signer: signer, JWK: m, JKT: base64.RawURLEncoding.EncodeToString(sum[:])}
}

// DPoPProof describes a proof: the header and claims that DPoPKey.Proof
// signs, which a test may change before signing.
type DPoPProof struct {
	Header map[string]any
	Claims jwt.MapClaims
	// Method, when set, signs with it instead of the key's algorithm, and
	// SignKey with another key than the key's own.
	Method  jwt.SigningMethod
	SignKey any
}

// ATH returns the ath of a proof for token: base64url(SHA-256(token)).
func ATH(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Proof returns a proof by k for a request with method to htu carrying
// token, issued at iat, with a fresh jti, after change, if not nil, has
// changed it.
func (k *DPoPKey) Proof(t testing.TB, method, htu, token string, iat time.Time, change func(*DPoPProof)) string {
	t.Helper()
	jti := make([]byte, 16)
	rand.Read(jti)
	p := &DPoPProof{
		Header: map[string]any{"typ": "dpop+jwt", "jwk": maps.Clone(k.JWK)},
		Claims: jwt.MapClaims{
			"jti": base64.RawURLEncoding.EncodeToString(jti),
			"htm": method,
			"htu": htu,
			"iat": iat.Unix(),
			"ath": ATH(token),
		},
		Method:  jwt.GetSigningMethod(k.Alg),
		SignKey: k.Signer,
	}
	if change != nil {
		change(p)
	}
	tok := jwt.NewWithClaims(p.Method, p.Claims)
	maps.Copy(tok.Header, p.Header)
	for name, v := range p.Header {
		if v == nil {
			delete(tok.Header, name)
		}
	}
	s, err := tok.SignedString(p.SignKey)
	if err != nil {
		t.Fatalf("DPoPKey.Proof: %v", err)
	}
	return s
}
