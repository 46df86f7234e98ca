package authz

import (
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCachedTokenRecordRoundTrip(t *testing.T) {
	until := time.UnixMilli(time.Now().Add(time.Minute).UnixMilli())
	tests := []struct {
		name string
		t    CachedToken
	}{
		{"inactive", CachedToken{Until: until}},
		{"bare active", CachedToken{Claims: &Claims{}, Until: until}},
		{"full active", CachedToken{Until: until, Claims: &Claims{
			Issuer:   "https://idp.example.com",
			Subject:  "svc-billing",
			ClientID: "billing",
			Audience: []string{"orders", "invoices"},
			Scopes:   []string{"orders:read", "invoices:write"},
			Expiry:   time.Unix(2000000000, 0),
			IssuedAt: time.Unix(1700000000, 0),
			Extra:    map[string]string{"tenant": "acme", "empty": ""},
		}}},
		{"long strings", CachedToken{Until: until, Claims: &Claims{Subject: strings.Repeat("s", 1000)}}},
		{"bound to a certificate", CachedToken{Until: until, Claims: &Claims{Subject: "svc",
			Confirmation: Confirmation{Methods: ConfirmCertificate, CertificateSHA256: sha256.Sum256([]byte("cert"))}}}},
		{"bound to a DPoP key", CachedToken{Until: until, Claims: &Claims{Subject: "svc",
			Confirmation: Confirmation{Methods: ConfirmDPoPKey, KeyThumbprint: sha256.Sum256([]byte("key"))}}}},
		{"bound to both and more", CachedToken{Until: until, Claims: &Claims{Extra: map[string]string{"k": "v"},
			Confirmation: Confirmation{Methods: ConfirmCertificate | ConfirmDPoPKey | ConfirmUnsupported,
				CertificateSHA256: sha256.Sum256([]byte("cert")), KeyThumbprint: sha256.Sum256([]byte("key"))}}}},
		{"bound by an unsupported method only", CachedToken{Until: until, Claims: &Claims{
			Confirmation: Confirmation{Methods: ConfirmUnsupported}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := appendCachedToken(nil, tt.t)
			got, err := parseCachedToken(string(rec))
			if err != nil {
				t.Fatalf("parseCachedToken: %v", err)
			}
			if !reflect.DeepEqual(got, tt.t) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, tt.t)
			}
			if got.Claims != nil {
				t.Logf("record of %d bytes", len(rec))
			}
		})
	}
}

func TestCachedTokenRecordRejectsCorruption(t *testing.T) {
	rec := string(appendCachedToken(nil, CachedToken{Until: time.Now(), Claims: &Claims{
		Issuer: "iss", Audience: []string{"a"}, Scopes: []string{"s"}, Extra: map[string]string{"k": "v"},
		Confirmation: Confirmation{Methods: ConfirmCertificate | ConfirmDPoPKey,
			CertificateSHA256: sha256.Sum256([]byte("cert")), KeyThumbprint: sha256.Sum256([]byte("key"))},
	}}))
	// The record of a bare active token, with its cnf methods last.
	bare := string(appendCachedToken(nil, CachedToken{Until: time.Now(), Claims: &Claims{}}))
	for i := range len(rec) {
		if _, err := parseCachedToken(rec[:i]); err == nil {
			t.Errorf("record cut to %d of %d bytes parsed", i, len(rec))
		}
	}
	for _, bad := range []string{
		"",
		"\x03" + rec[1:],   // unknown version
		"\x01" + rec[1:],   // the version before cnf
		rec + "x",          // trailing bytes
		"\x02\x00\x01\xff", // string length past the end
		"\x02\x00\x01\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", // varint overflow
		bare[:len(bare)-1] + "\x08",                           // an unknown cnf method
		bare[:len(bare)-1] + "\x01" + strings.Repeat("h", 31), // a SHA-256 cut short
	} {
		if _, err := parseCachedToken(bad); err == nil {
			t.Errorf("parseCachedToken(%q) succeeded", bad)
		}
	}
}

func TestRedisKeyNamesTheProviderAndNotTheToken(t *testing.T) {
	const (
		endpoint = "https://idp.example.com/oauth2/introspect"
		client   = "scopegate"
		token    = "opaque-token-value"
	)
	key := TokenKey(token)
	k := (&RedisCache{namespace: providerNamespace(endpoint, client)}).key(key)
	sum := sha256.Sum256([]byte(endpoint + "\n" + client))
	if want := RedisKeyPrefix + hex.EncodeToString(sum[:8]) + ":" + hex.EncodeToString(key[:]); k != want {
		t.Errorf("key = %q, want %q", k, want)
	}
	if strings.Contains(k, token) {
		t.Errorf("key %q contains the token", k)
	}
	for _, other := range []struct{ name, endpoint, client string }{
		{"another endpoint", "https://staging.idp.example.com/oauth2/introspect", client},
		{"another client", endpoint, "scopegate-staging"},
		{"the client moved into the endpoint", endpoint + client, ""},
	} {
		if providerNamespace(other.endpoint, other.client) == providerNamespace(endpoint, client) {
			t.Errorf("%s: same namespace", other.name)
		}
	}
}
