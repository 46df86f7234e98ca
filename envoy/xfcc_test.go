package envoy

import (
	"strings"
	"testing"
)

// The examples of x-forwarded-client-cert in Envoy's documentation of
// the header (configuration/http/http_conn_man/headers), and what each
// element says.
var xfccExamples = []struct {
	name, header string
	want         xfccElement
}{
	{"one certificate with a URI SAN",
		`By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com`,
		xfccElement{by: "http://frontend.lyft.com", hash: "468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688", uri: "http://testclient.lyft.com"}},
	{"two certificates: the last element is the nearest proxy's",
		`By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;URI=http://testclient.lyft.com,By=http://backend.lyft.com;Hash=9ba61d6425303443c0748a02dd8de688468ed33be74eee6556d90c0149c1309e;URI=http://frontend.lyft.com`,
		xfccElement{by: "http://backend.lyft.com", hash: "9ba61d6425303443c0748a02dd8de688468ed33be74eee6556d90c0149c1309e", uri: "http://frontend.lyft.com"}},
	{"URI and DNS SANs",
		`By=http://frontend.lyft.com;Hash=468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688;Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com;DNS=lyft.com;DNS=www.lyft.com`,
		xfccElement{by: "http://frontend.lyft.com", hash: "468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688", uri: "http://testclient.lyft.com", dns: "lyft.com"}},
}

func TestXFCCReadsEnvoysDocumentedExamples(t *testing.T) {
	for _, tt := range xfccExamples {
		t.Run(tt.name, func(t *testing.T) {
			got, err := lastXFCC(tt.header)
			if err != nil || got != tt.want {
				t.Errorf("lastXFCC = %+v, %v\nwant %+v", got, err, tt.want)
			}
		})
	}
}

func TestXFCC(t *testing.T) {
	tests := []struct {
		name, header string
		want         xfccElement
		err          bool
	}{
		{"keys in any case", `by=spiffe://td/gw;HASH=ab;cert="-----BEGIN%20CERTIFICATE-----%0A";uri=spiffe://td/a;dns=a.example`,
			xfccElement{by: "spiffe://td/gw", hash: "ab", cert: "-----BEGIN%20CERTIFICATE-----%0A", uri: "spiffe://td/a", dns: "a.example"}, false},
		{"the first URI, DNS and By", `By=b1;By=b2;URI=u1;URI=u2;DNS=d1;DNS=d2`, xfccElement{by: "b1", uri: "u1", dns: "d1"}, false},
		{"a quoted value holds separators and escaped quotes", `Subject="CN=a,O=\"b;c\"";URI="spiffe://td/x,y;z"`, xfccElement{uri: "spiffe://td/x,y;z"}, false},
		{"a backslash before another character stays", `URI="a\b\\c"`, xfccElement{uri: `a\b\\c`}, false},
		{"a backslash before the closing quote escapes it", `URI="a\"`, xfccElement{}, true},
		{"an unquoted value may hold =", `URI=spiffe://td/p?a=b`, xfccElement{uri: "spiffe://td/p?a=b"}, false},
		{"empty values", `By=;Hash=;URI=`, xfccElement{}, false},
		{"space around elements and pairs", ` Hash=aa ; URI=u1 , Hash=bb ; URI = u2 `, xfccElement{hash: "bb", uri: "u2"}, false},
		{"unknown keys are skipped", `Chain="x";Foo=bar;URI=u`, xfccElement{uri: "u"}, false},
		{"empty", ``, xfccElement{}, true},
		{"a trailing comma", `URI=u,`, xfccElement{}, true},
		{"an empty element", `URI=u,,URI=v`, xfccElement{}, true},
		{"a trailing semicolon", `URI=u;`, xfccElement{}, true},
		{"a pair without =", `URI`, xfccElement{}, true},
		{"no key", `=u`, xfccElement{}, true},
		{"an unterminated quote", `URI="u;Hash=aa`, xfccElement{}, true},
		{"text after the closing quote", `URI="u"x;Hash=aa`, xfccElement{}, true},
		{"a quote inside an unquoted value", `URI=u"v"`, xfccElement{}, true},
		{"a quote in a key", `U"RI=u`, xfccElement{}, true},
		{"two hashes", `Hash=aa;Hash=bb`, xfccElement{}, true},
		{"two certificates", `Cert=a;Cert=b`, xfccElement{}, true},
		{"a bad earlier element", `URI="u,URI=v`, xfccElement{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := lastXFCC(tt.header)
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("lastXFCC(%q) = %+v, %v\nwant %+v, error %v", tt.header, got, err, tt.want, tt.err)
			}
		})
	}
}

// encodeXFCC writes e as one element, as Envoy's documentation says a
// proxy writes it: a value holding ",", ";", "=" or a quote
// double-quoted, its quotes written \". An empty field is left out.
func encodeXFCC(e xfccElement) string {
	var pairs []string
	for _, kv := range [][2]string{{"By", e.by}, {"Hash", e.hash}, {"Cert", e.cert}, {"URI", e.uri}, {"DNS", e.dns}} {
		if kv[1] == "" {
			continue
		}
		v := kv[1]
		if strings.ContainsAny(v, `,;="`) {
			v = `"` + strings.ReplaceAll(v, `"`, `\"`) + `"`
		}
		pairs = append(pairs, kv[0]+"="+v)
	}
	return strings.Join(pairs, ";")
}

// encodable reports whether encodeXFCC writes e so that it reads back:
// the documentation's quoting cannot write a value that ends in a
// backslash, a quoted one that starts or ends with space, or a \" as
// such.
func encodable(e xfccElement) bool {
	for _, v := range []string{e.by, e.hash, e.cert, e.uri, e.dns} {
		if strings.HasSuffix(v, `\`) || strings.Contains(v, `\"`) || strings.TrimSpace(v) != v || strings.ContainsAny(v, "\t") {
			return false
		}
	}
	return e.by != "" || e.hash != "" || e.cert != "" || e.uri != "" || e.dns != ""
}

func FuzzXFCC(f *testing.F) {
	for _, tt := range xfccExamples {
		f.Add(tt.header, "", "", "", "")
	}
	f.Add(`Cert="-----BEGIN%20CERTIFICATE-----%0AMIIB%0A";URI=spiffe://td/a`, "spiffe://td/gw", "ab01", "%2D%2D", `spiffe://td/"q";x`)
	f.Add(`URI="a\"b",URI=c`, "b", "h", "c", "u,v=w")
	f.Fuzz(func(t *testing.T, header, by, hash, cert, uri string) {
		// Whatever the header, reading it neither panics nor makes up a
		// value: what it returns is in the header.
		if e, err := lastXFCC(header); err == nil {
			for _, v := range []string{e.by, e.hash, e.cert, e.uri, e.dns} {
				if !strings.Contains(strings.ReplaceAll(header, `\"`, `"`), v) {
					t.Fatalf("lastXFCC(%q) returned %q, which the header does not hold", header, v)
				}
			}
		}
		// An element written as the documentation says reads back as it
		// was, also after another proxy's.
		want := xfccElement{by: by, hash: hash, cert: cert, uri: uri}
		if !encodable(want) {
			return
		}
		enc := encodeXFCC(want)
		for _, h := range []string{enc, encodeXFCC(xfccElement{uri: "spiffe://td/earlier", hash: "00"}) + "," + enc} {
			got, err := lastXFCC(h)
			if err != nil || got != want {
				t.Fatalf("lastXFCC(%q) = %+v, %v\nwant %+v", h, got, err, want)
			}
		}
	})
}
