package authz_test

import (
	"crypto/sha256"
	"encoding/pem"
	"net/url"
	"strings"
	"testing"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/testutil"
)

func TestCertificateHashesTheDEROfEveryEncoding(t *testing.T) {
	certPEM, _ := testutil.NewCA(t, "ca").Issue(t, "client")
	block, _ := pem.Decode(certPEM)
	want := sha256.Sum256(block.Bytes)
	for _, tt := range []struct {
		name string
		c    authz.Certificate
	}{
		// Envoy escapes all but the unreserved characters; nginx leaves
		// "+" and "/" as they are.
		{"escaped as Envoy escapes it", authz.CertificateFromPEM(certPEM)},
		{"path-escaped, + and / left as they are", authz.Certificate(url.PathEscape(string(certPEM)))},
		{"escaped, with text before the PEM", authz.CertificateFromPEM(append([]byte("subject=CN=client\n"), certPEM...))},
		{"from DER", authz.CertificateFromDER(block.Bytes)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			der, err := tt.c.DER()
			if err != nil || string(der) != string(block.Bytes) {
				t.Fatalf("DER = %x, %v; want the certificate's", der, err)
			}
			for range 2 { // the second comes from the cache
				if sum, err := tt.c.SHA256(); err != nil || sum != want {
					t.Fatalf("SHA256 = %x, %v; want %x", sum, err, want)
				}
			}
		})
	}
}

func TestCertificateRefusesWhatIsNotOne(t *testing.T) {
	_, keyPEM := testutil.NewCA(t, "ca").Issue(t, "client")
	for _, tt := range []struct {
		name string
		c    authz.Certificate
	}{
		{"empty", ""},
		{"bad escape", "%zz"},
		{"not PEM", "hello"},
		{"form-encoded, a space as +", authz.Certificate(url.QueryEscape("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"))},
		{"a key", authz.CertificateFromPEM(keyPEM)},
		{"truncated", authz.CertificateFromPEM([]byte("-----BEGIN CERTIFICATE-----\nMIIB"))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.c.SHA256(); err == nil {
				t.Error("SHA256 hashed it")
			}
		})
	}
}

func TestCertificateHashIsCachedPerCertificate(t *testing.T) {
	certPEM, _ := testutil.NewCA(t, "ca").Issue(t, "client")
	c := authz.CertificateFromPEM(certPEM)
	if _, err := c.SHA256(); err != nil {
		t.Fatal(err)
	}
	// Another string of the same bytes, as the next CheckRequest of the
	// same peer brings.
	again := authz.Certificate(strings.Clone(string(c)))
	if n := testing.AllocsPerRun(100, func() { again.SHA256() }); n != 0 {
		t.Errorf("a certificate seen before costs %v allocations to hash, want 0", n)
	}
}

func BenchmarkCertificateSHA256(b *testing.B) {
	certPEM, _ := testutil.NewCA(b, "ca").Issue(b, "client")
	c := authz.CertificateFromPEM(certPEM)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.SHA256(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestContextLaterValuesReplaceEarlierOnes(t *testing.T) {
	var c authz.Context
	if _, ok := c.Get("a"); ok {
		t.Fatal("the zero Context has a key")
	}
	c.Set("b", "1")
	c.Set("a", "x")
	c.Set("b", "2")
	if v, ok := c.Get("b"); !ok || v != "2" {
		t.Errorf("Get(b) = %q, %v; want 2", v, ok)
	}
	var got []string
	for k, v := range c.All() {
		got = append(got, k+"="+v)
	}
	if strings.Join(got, ",") != "a=x,b=2" {
		t.Errorf("All = %v, want [a=x b=2]", got)
	}
}
