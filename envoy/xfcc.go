package envoy

import (
	"errors"
	"strings"
)

// XFCCHeader is the header in which Envoy forwards what it verified of
// its client's certificate, when its HTTP connection manager sets
// forward_client_cert_details.
const XFCCHeader = "X-Forwarded-Client-Cert"

// xfccElement is the element of an x-forwarded-client-cert header that
// one proxy added: what it verified of the certificate of its client.
// Keys that scopegate does not read (Chain, Subject, and any that a later
// Envoy adds) are skipped.
type xfccElement struct {
	by   string // the first By: the URI SAN of the proxy's own certificate
	hash string // Hash: the hex SHA-256 of the client certificate's DER
	cert string // Cert: the client certificate, URL-encoded PEM
	uri  string // the first URI: the client certificate's URI SAN
	dns  string // the first DNS: the client certificate's DNS SAN
}

// lastXFCC returns the last element of the x-forwarded-client-cert header
// h: the one that the proxy that sent the request appended. Every element
// must be well formed, as Envoy's documentation of the header describes
// it: elements separated by ",", each of key=value pairs separated by
// ";", keys in any case, a value holding ",", ";" or a quote
// double-quoted, with \" for a quote inside. Space around an element or a
// pair, which Envoy never writes, is allowed.
//
// scopegate parses the header itself: no library that the module proxy
// serves reads it, and what it needs is a few dozen lines. FuzzXFCC and
// TestXFCC hold it to Envoy's documented examples and to an encoder that
// quotes as the documentation says.
func lastXFCC(h string) (xfccElement, error) {
	var e xfccElement
	p := xfccParser{s: h}
	for {
		var err error
		if e, err = p.element(); err != nil {
			return xfccElement{}, err
		}
		if p.done() {
			return e, nil
		}
		p.i++ // the ","
	}
}

// xfccParser reads an x-forwarded-client-cert header from s, at i.
type xfccParser struct {
	s string
	i int
}

func (p *xfccParser) done() bool { return p.i == len(p.s) }

func (p *xfccParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// element reads one element, up to the "," after it or the end.
func (p *xfccParser) element() (xfccElement, error) {
	var e xfccElement
	var seenHash, seenCert, seenBy, seenURI, seenDNS bool
	for {
		p.space()
		start := p.i
		for p.i < len(p.s) && p.s[p.i] != '=' && p.s[p.i] != ';' && p.s[p.i] != ',' && p.s[p.i] != '"' {
			p.i++
		}
		key := strings.TrimRight(p.s[start:p.i], " \t")
		if key == "" || p.done() || p.s[p.i] != '=' {
			return e, errors.New("an element of x-forwarded-client-cert is not a list of key=value pairs")
		}
		p.i++ // the "="
		v, err := p.value()
		if err != nil {
			return e, err
		}
		switch {
		case strings.EqualFold(key, "By"):
			if !seenBy {
				e.by, seenBy = v, true
			}
		case strings.EqualFold(key, "Hash"):
			if seenHash {
				return e, errors.New("an element of x-forwarded-client-cert has two hashes")
			}
			e.hash, seenHash = v, true
		case strings.EqualFold(key, "Cert"):
			if seenCert {
				return e, errors.New("an element of x-forwarded-client-cert has two certificates")
			}
			e.cert, seenCert = v, true
		case strings.EqualFold(key, "URI"):
			if !seenURI {
				e.uri, seenURI = v, true
			}
		case strings.EqualFold(key, "DNS"):
			if !seenDNS {
				e.dns, seenDNS = v, true
			}
		}
		p.space()
		switch {
		case p.done() || p.s[p.i] == ',':
			return e, nil
		case p.s[p.i] == ';':
			p.i++
		default:
			return e, errors.New("a value of x-forwarded-client-cert holds a quote, or text after its closing quote")
		}
	}
}

// value reads a value, quoted or not, up to the ";" or "," after it or
// the end.
func (p *xfccParser) value() (string, error) {
	p.space()
	if p.done() || p.s[p.i] != '"' {
		start := p.i
		// An "=" is let through: Envoy writes a URI SAN unquoted, and
		// one may hold a query.
		for p.i < len(p.s) && p.s[p.i] != ';' && p.s[p.i] != ',' {
			if p.s[p.i] == '"' {
				return "", errors.New("a value of x-forwarded-client-cert holds a quote without being quoted")
			}
			p.i++
		}
		return strings.TrimRight(p.s[start:p.i], " \t"), nil
	}
	p.i++ // the opening quote
	start := p.i
	var b []byte // the value unescaped, once it holds an escape
	for ; p.i < len(p.s); p.i++ {
		switch c := p.s[p.i]; {
		case c == '"':
			p.i++
			if b == nil {
				return p.s[start : p.i-1], nil
			}
			return string(b), nil
		case c == '\\' && p.i+1 < len(p.s) && p.s[p.i+1] == '"':
			if b == nil {
				b = append([]byte(nil), p.s[start:p.i]...)
			}
			b = append(b, '"')
			p.i++
		case b != nil:
			b = append(b, c)
		}
	}
	return "", errors.New("a quoted value of x-forwarded-client-cert has no closing quote")
}
