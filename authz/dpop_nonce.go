package authz

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// dpopNonces issues and checks the server nonces of DPoP proofs
// (RFC 9449 §8) without keeping them: a nonce is the second it was issued
// and a MAC of it, so that any instance holding the secret accepts it
// until it is older than the lifetime.
type dpopNonces struct {
	secret   []byte
	lifetime time.Duration
	leeway   time.Duration // for instances whose clocks differ
}

// nonceMACSize is the length of a nonce's truncated HMAC-SHA256.
const nonceMACSize = 16

func newDPoPNonces(secret []byte, lifetime, leeway time.Duration) (*dpopNonces, error) {
	if secret == nil {
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
	}
	return &dpopNonces{secret: secret, lifetime: lifetime, leeway: leeway}, nil
}

// issue returns a nonce issued at now.
func (n *dpopNonces) issue(now time.Time) string {
	var b [8 + nonceMACSize]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.Unix()))
	copy(b[8:], n.mac(nil, b[:8]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// valid reports whether nonce is one that issue returned, no longer ago
// than the lifetime.
func (n *dpopNonces) valid(nonce string, now time.Time) bool {
	var b [8 + nonceMACSize]byte
	if base64.RawURLEncoding.EncodedLen(len(b)) != len(nonce) {
		return false
	}
	if _, err := base64.RawURLEncoding.Strict().Decode(b[:], []byte(nonce)); err != nil {
		return false
	}
	if !hmac.Equal(n.mac(nil, b[:8]), b[8:]) {
		return false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(b[:8])), 0)
	return !issued.After(now.Add(n.leeway)) && now.Sub(issued) <= n.lifetime
}

// mac appends to b the truncated MAC of the nonce's time ts.
func (n *dpopNonces) mac(b, ts []byte) []byte {
	m := hmac.New(sha256.New, n.secret)
	m.Write([]byte("scopegate dpop nonce\x00"))
	m.Write(ts)
	return m.Sum(b)[:len(b)+nonceMACSize]
}
