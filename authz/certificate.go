package authz

import (
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"net/url"
	"strings"
	"sync"
)

// Certificate is a peer's X.509 certificate as proxies forward it: PEM,
// URL-encoded. That is what Envoy sends as a CheckRequest's
// source.certificate (with include_peer_certificate), in the Cert of an
// x-forwarded-client-cert, and what nginx's $ssl_client_escaped_cert
// holds. The zero value is no certificate.
//
// It is kept as sent, so that reading a request costs nothing, and decoded
// only when a decision needs it.
type Certificate string

// CertificateFromPEM returns the Certificate of the PEM encoding pem,
// URL-encoded as Envoy encodes it: every byte but RFC 3986's unreserved
// characters percent-encoded.
func CertificateFromPEM(pem []byte) Certificate {
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(pem)*5/4)
	for _, c := range pem {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&0xf])
		}
	}
	return Certificate(b)
}

// CertificateFromDER returns the Certificate of the DER encoding der, for
// the proxies that forward DER (RFC 9440's Client-Cert).
func CertificateFromDER(der []byte) Certificate {
	return CertificateFromPEM(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// DER returns the DER encoding of the certificate: the bytes of its PEM
// block, which must be the first of the PEM and of type CERTIFICATE. The
// bytes are not parsed: the proxy that forwarded them accepted them in
// its TLS handshake, and RFC 8705 hashes them as they are.
func (c Certificate) DER() ([]byte, error) {
	if c == "" {
		return nil, errors.New("no certificate")
	}
	// PathUnescape, not QueryUnescape: a "+" of the base64 that an
	// encoder (nginx's) left as it is stays a "+".
	p, err := url.PathUnescape(string(c))
	if err != nil {
		return nil, errors.New("the certificate is not URL-encoded PEM")
	}
	b, _ := pem.Decode([]byte(p))
	switch {
	case b == nil:
		return nil, errors.New("the certificate is not PEM")
	case b.Type != "CERTIFICATE":
		return nil, errors.New("the certificate's PEM block is a " + b.Type + ", not a CERTIFICATE")
	}
	return b.Bytes, nil
}

// SHA256 returns the SHA-256 of the certificate's DER encoding, which RFC
// 8705 §3.1 compares with a token's x5t#S256. It is computed once per
// certificate, not per check: the hashes of the certificates seen last
// are kept.
func (c Certificate) SHA256() ([32]byte, error) {
	if sum, ok := certHashes.get(c); ok {
		return sum, nil
	}
	der, err := c.DER()
	if err != nil {
		return [32]byte{}, err
	}
	sum := sha256.Sum256(der)
	certHashes.add(c, sum)
	return sum, nil
}

// maxCertHashes bounds the certificates whose hash is kept. A mesh's
// workloads present a certificate each for hours: a few thousand cover
// the peers of a busy instance, at about 1 KiB a certificate.
const maxCertHashes = 4096

// certHashes holds the SHA-256 of the certificates seen last.
var certHashes = hashCache{m: make(map[Certificate][32]byte)}

// hashCache is a bounded map of certificates to their SHA-256, safe for
// concurrent use. When full, it drops an entry at random for a new one:
// what it holds is cheap to compute again.
type hashCache struct {
	mu sync.RWMutex
	m  map[Certificate][32]byte
}

func (h *hashCache) get(c Certificate) ([32]byte, bool) {
	h.mu.RLock()
	sum, ok := h.m[c]
	h.mu.RUnlock()
	return sum, ok
}

func (h *hashCache) add(c Certificate, sum [32]byte) {
	// A copy: c may be a view into a whole CheckRequest, which the key
	// would otherwise keep in memory.
	c = Certificate(strings.Clone(string(c)))
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.m) >= maxCertHashes {
		for k := range h.m { // map order is random
			delete(h.m, k)
			break
		}
	}
	h.m[c] = sum
}
