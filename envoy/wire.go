package envoy

import (
	"net"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/scopegate/scopegate/authz"
)

// scopegate reads CheckRequests and writes CheckResponses on the wire
// itself. The generated code's proto.Unmarshal builds every message of a
// CheckRequest, every header in a Go map, with reflection, to read five
// strings; it and the garbage it left were the largest cost of a check
// after gRPC's own. The decoder below reads the fields a decision uses,
// with protobuf's merge semantics, and keeps them as views into the
// message; the encoders write the responses directly.

// Field numbers, from envoy/service/auth/v3 and envoy/config/core/v3.
const (
	checkRequestAttributes = 1 // CheckRequest.attributes

	attributesSource            = 1  // AttributeContext.source
	attributesDestination       = 2  // AttributeContext.destination
	attributesRequest           = 4  // AttributeContext.request
	attributesContextExtensions = 10 // AttributeContext.context_extensions, map<string, string>
	attributesTLSSession        = 12 // AttributeContext.tls_session

	peerAddress     = 1 // AttributeContext.Peer.address
	peerPrincipal   = 4 // AttributeContext.Peer.principal
	peerCertificate = 5 // AttributeContext.Peer.certificate

	tlsSNI = 1 // AttributeContext.TLSSession.sni

	addressSocket   = 1 // Address.socket_address, in oneof address
	addressPipe     = 2 // Address.pipe
	addressInternal = 3 // Address.envoy_internal_address

	socketAddress   = 2 // SocketAddress.address
	socketPortValue = 3 // SocketAddress.port_value, in oneof port_specifier
	socketNamedPort = 4 // SocketAddress.named_port

	requestHTTP = 2 // AttributeContext.Request.http

	httpMethod    = 2  // HttpRequest.method
	httpHeaders   = 3  // HttpRequest.headers, map<string, string>
	httpPath      = 4  // HttpRequest.path
	httpHost      = 5  // HttpRequest.host
	httpScheme    = 6  // HttpRequest.scheme
	httpHeaderMap = 13 // HttpRequest.header_map

	mapKey   = 1 // a map entry's key
	mapValue = 2 // a map entry's value

	headerMapHeaders = 1 // HeaderMap.headers
	headerKey        = 1 // HeaderValue.key
	headerValue      = 2 // HeaderValue.value
	headerRawValue   = 3 // HeaderValue.raw_value

	responseStatus   = 1 // CheckResponse.status
	responseDenied   = 2 // CheckResponse.denied_response, in oneof http_response
	responseOK       = 3 // CheckResponse.ok_response
	responseMetadata = 4 // CheckResponse.dynamic_metadata

	statusCode    = 1 // google.rpc.Status.code
	statusMessage = 2 // google.rpc.Status.message

	deniedStatus  = 1 // DeniedHttpResponse.status, an HttpStatus
	deniedHeaders = 2 // DeniedHttpResponse.headers
	deniedBody    = 3 // DeniedHttpResponse.body
	httpStatus    = 1 // HttpStatus.code

	okHeaders         = 2 // OkHttpResponse.headers
	okHeadersToRemove = 5 // OkHttpResponse.headers_to_remove

	optionHeader       = 1 // HeaderValueOption.header
	optionAppendAction = 3 // HeaderValueOption.append_action
	overwriteOrAdd     = 2 // HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD

	structFields = 1 // google.protobuf.Struct.fields, map<string, Value>
	valueString  = 3 // google.protobuf.Value.string_value
	valueBool    = 4 // google.protobuf.Value.bool_value
)

// field is one field of a message on the wire.
type field struct {
	num protowire.Number
	typ protowire.Type
	b   []byte // a length-delimited field's bytes
	v   uint64 // a varint field's value
}

// fields calls fn with each field of the message m in turn, and reports
// whether m was well formed and fn accepted every field. Groups and fixed
// fields are skipped: nothing read here has them.
func fields(m []byte, fn func(f field) bool) bool {
	for len(m) > 0 {
		num, typ, n := protowire.ConsumeTag(m)
		if n < 0 {
			return false
		}
		m = m[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.BytesType:
			f.b, n = protowire.ConsumeBytes(m)
		case protowire.VarintType:
			f.v, n = protowire.ConsumeVarint(m)
		default:
			n = protowire.ConsumeFieldValue(num, typ, m)
		}
		if n < 0 {
			return false
		}
		m = m[n:]
		if !fn(f) {
			return false
		}
	}
	return true
}

// str returns a view of b as a string: b is part of a message that is
// never modified (see decodeCheck).
func str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// headers are the request headers a decision reads.
type headers struct {
	authorization, dpop, requestID, authority, method, path, scheme header
}

// header is one request header as read so far.
type header struct {
	value string
	seen  bool
	// joined holds the values of a repeated header, joined: appended to
	// in place, so that many repeats cost their length, not its square.
	joined []byte
}

// get returns the header's value, repeats joined.
func (h *header) get() string {
	if h.joined != nil {
		return str(h.joined)
	}
	return h.value
}

// set sets the header name, in lower case, to v, or, with join, appends
// v to it after a ",", as Envoy joins repeated headers: an empty first
// value still counts, so that two authorization headers never pass for
// one.
func (h *headers) set(name, v string, join bool) {
	var p *header
	switch name {
	case "authorization":
		p = &h.authorization
	case "dpop":
		p = &h.dpop
	case "x-request-id":
		p = &h.requestID
	case ":authority":
		p = &h.authority
	case ":method":
		p = &h.method
	case ":path":
		p = &h.path
	case ":scheme":
		p = &h.scheme
	default:
		return
	}
	switch {
	case !join || !p.seen:
		p.value, p.seen, p.joined = v, true, nil
	case p.joined == nil:
		p.joined = append(append(append([]byte(nil), p.value...), ','), v...)
	default:
		p.joined = append(append(p.joined, ','), v...)
	}
}

// lower returns name in lower case, ASCII letters only, as Envoy and
// HTTP servers compare header names: a name with other letters whose
// Unicode lower case is ASCII (the dotted İ) is another header upstream,
// so it must not be read as one of these. It does not allocate for a
// name that is already lower case.
func lower(name string) string {
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' {
			b := []byte(name)
			for j := i; j < len(b); j++ {
				if c := b[j]; 'A' <= c && c <= 'Z' {
					b[j] = c + 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return name
}

// checkReader holds what decodeCheck has read so far. Each field is set
// as protobuf's merging of repeated occurrences would leave it: the last
// scalar wins, map entries accumulate, a oneof keeps its last member.
type checkReader struct {
	method, host, path, scheme string
	// fromMap holds the headers of the headers map, fromList those of
	// header_map, which Envoy sends instead when encode_raw_headers is set.
	fromMap, fromList headers
	mapEntries        bool // the headers map has an entry
	headerMap         bool // header_map is present
	http              bool // attributes.request.http is present
	peerAddr          string
	peerPort          uint64
	peerIsSocket      bool
	// The facts of the peer's TLS connection and the route's context.
	principal, destinationPrincipal, sni string
	certificate                          authz.Certificate
	context                              authz.Context
	contextNotUTF8                       bool
}

// decodeCheck reads the request a decision sees from msg, the wire
// encoding of a CheckRequest. The strings of the request are views into
// msg, which must never be modified after. bad says why msg could not be
// read, or that it carries no HTTP attributes.
func decodeCheck(msg []byte) (r authz.Request, bad string) {
	var c checkReader
	if !fields(msg, c.checkRequest) {
		return r, "the check request is not a well-formed CheckRequest"
	}
	h := &c.fromMap
	if !c.mapEntries && c.headerMap {
		h = &c.fromList
	}
	r = authz.Request{Method: c.method, Host: c.host, Path: c.path, Scheme: c.scheme,
		Authorization: h.authorization.get(), DPoP: h.dpop.get(), RequestID: h.requestID.get(),
		Principal: c.principal, Certificate: c.certificate, DestinationPrincipal: c.destinationPrincipal, SNI: c.sni,
		Context: c.context}
	if c.peerIsSocket {
		// JoinHostPort brackets an IPv6 address, which "addr:port" would
		// leave ambiguous.
		r.Peer = net.JoinHostPort(c.peerAddr, strconv.FormatUint(c.peerPort, 10))
	}
	if !c.http {
		return r, "the check request carries no HTTP attributes"
	}
	if r.Host == "" {
		r.Host = h.authority.get()
	}
	if r.Method == "" {
		r.Method = h.method.get()
	}
	if r.Path == "" {
		r.Path = h.path.get()
	}
	// Envoy sets both from the same value. As with the method, host and
	// path, the attribute wins and the pseudo-header stands in for it.
	if r.Scheme == "" {
		r.Scheme = h.scheme.get()
	}
	// Protobuf strings are UTF-8, which proto.Unmarshal enforces by
	// failing the whole call: a failed call is what failure_mode_allow
	// lets through, so scopegate denies instead. The authorization
	// header, which may come as a raw value, is left to the bearer token
	// check.
	if !utf8.ValidString(r.Method) || !utf8.ValidString(r.Host) || !utf8.ValidString(r.Path) {
		return r, "the check request carries a method, host or path that is not UTF-8"
	}
	// So are the facts a decision matches, but for the certificate, which
	// is decoded, and refused if it is not URL-encoded PEM, when a
	// decision needs it.
	if !utf8.ValidString(r.Scheme) || !utf8.ValidString(r.Principal) || !utf8.ValidString(r.DestinationPrincipal) || !utf8.ValidString(r.SNI) {
		return r, "the check request carries a scheme, principal or SNI that is not UTF-8"
	}
	if c.contextNotUTF8 {
		return r, "the check request carries context extensions that are not UTF-8"
	}
	return r, ""
}

func (c *checkReader) checkRequest(f field) bool {
	if f.num == checkRequestAttributes && f.typ == protowire.BytesType {
		return fields(f.b, c.attributes)
	}
	return true
}

func (c *checkReader) attributes(f field) bool {
	if f.typ != protowire.BytesType {
		return true
	}
	switch f.num {
	case attributesSource:
		return fields(f.b, c.source)
	case attributesDestination:
		return fields(f.b, c.destination)
	case attributesRequest:
		return fields(f.b, c.request)
	case attributesContextExtensions:
		k, v, ok := mapEntry(f.b)
		c.context.Set(k, v)
		c.contextNotUTF8 = c.contextNotUTF8 || !utf8.ValidString(k) || !utf8.ValidString(v)
		return ok
	case attributesTLSSession:
		return fields(f.b, c.tlsSession)
	}
	return true
}

func (c *checkReader) source(f field) bool {
	if f.typ != protowire.BytesType {
		return true
	}
	switch f.num {
	case peerAddress:
		return fields(f.b, c.address)
	case peerPrincipal:
		c.principal = str(f.b)
	case peerCertificate:
		c.certificate = authz.Certificate(str(f.b))
	}
	return true
}

func (c *checkReader) destination(f field) bool {
	if f.num == peerPrincipal && f.typ == protowire.BytesType {
		c.destinationPrincipal = str(f.b)
	}
	return true
}

func (c *checkReader) tlsSession(f field) bool {
	if f.num == tlsSNI && f.typ == protowire.BytesType {
		c.sni = str(f.b)
	}
	return true
}

// mapEntry reads the entry m of a map<string, string>: a missing key or
// value is "", as protobuf reads it.
func mapEntry(m []byte) (k, v string, ok bool) {
	ok = fields(m, func(f field) bool {
		if f.typ == protowire.BytesType {
			switch f.num {
			case mapKey:
				k = str(f.b)
			case mapValue:
				v = str(f.b)
			}
		}
		return true
	})
	return k, v, ok
}

func (c *checkReader) address(f field) bool {
	if f.typ != protowire.BytesType {
		return true
	}
	switch f.num {
	case addressSocket:
		if !c.peerIsSocket {
			c.peerIsSocket, c.peerAddr, c.peerPort = true, "", 0
		}
		return fields(f.b, c.socket)
	case addressPipe, addressInternal:
		c.peerIsSocket = false
	}
	return true
}

func (c *checkReader) socket(f field) bool {
	switch {
	case f.num == socketAddress && f.typ == protowire.BytesType:
		c.peerAddr = str(f.b)
	case f.num == socketPortValue && f.typ == protowire.VarintType:
		c.peerPort = uint64(uint32(f.v))
	case f.num == socketNamedPort && f.typ == protowire.BytesType:
		c.peerPort = 0
	}
	return true
}

func (c *checkReader) request(f field) bool {
	if f.num == requestHTTP && f.typ == protowire.BytesType {
		c.http = true
		return fields(f.b, c.httpRequest)
	}
	return true
}

func (c *checkReader) httpRequest(f field) bool {
	if f.typ != protowire.BytesType {
		return true
	}
	switch f.num {
	case httpMethod:
		c.method = str(f.b)
	case httpPath:
		c.path = str(f.b)
	case httpHost:
		c.host = str(f.b)
	case httpScheme:
		c.scheme = str(f.b)
	case httpHeaders:
		c.mapEntries = true
		k, v, ok := mapEntry(f.b)
		// Map keys are unique: a repeated key replaces the entry.
		c.fromMap.set(k, v, false)
		return ok
	case httpHeaderMap:
		c.headerMap = true
		return fields(f.b, c.headerList)
	}
	return true
}

func (c *checkReader) headerList(f field) bool {
	if f.num != headerMapHeaders || f.typ != protowire.BytesType {
		return true
	}
	var k, v, raw string
	ok := fields(f.b, func(f field) bool {
		if f.typ == protowire.BytesType {
			switch f.num {
			case headerKey:
				k = str(f.b)
			case headerValue:
				v = str(f.b)
			case headerRawValue:
				raw = str(f.b)
			}
		}
		return true
	})
	if v == "" {
		v = raw
	}
	// Envoy's map form has lower-case names; its list form keeps the
	// names as sent.
	c.fromList.set(lower(k), v, true)
	return ok
}

// appendMessage appends field num, a message that content appends.
func appendMessage(b []byte, num protowire.Number, content func([]byte) []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	start := len(b)
	b = content(b)
	// The length goes before the content, which is now known: move the
	// content up by the length's size.
	n := len(b) - start
	size := protowire.SizeVarint(uint64(n))
	b = append(b, make([]byte, size)...)
	copy(b[start+size:], b[start:start+n])
	protowire.AppendVarint(b[:start], uint64(n))
	return b
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// appendHeader appends field num, a HeaderValueOption that sets the
// header name to value, overwriting any the request has.
func appendHeader(b []byte, num protowire.Number, name, value string) []byte {
	return appendMessage(b, num, func(b []byte) []byte {
		b = appendMessage(b, optionHeader, func(b []byte) []byte {
			b = appendString(b, headerKey, name)
			return appendString(b, headerValue, value)
		})
		return appendVarint(b, optionAppendAction, overwriteOrAdd)
	})
}

// appendOK appends the CheckResponse that allows d: status OK, the
// identity headers to set and to remove (see authz.Authorizer.Upstream),
// and the decision as dynamic metadata.
func appendOK(b []byte, a *authz.Authorizer, d *authz.Decision) []byte {
	b = appendMessage(b, responseStatus, func(b []byte) []byte { return b })
	b = appendMessage(b, responseOK, func(b []byte) []byte {
		// Headers and headers_to_remove are different fields: they may
		// interleave on the wire.
		for name, value := range a.Upstream(d) {
			if value == "" {
				b = appendString(b, okHeadersToRemove, name)
			} else {
				b = appendHeader(b, okHeaders, name, value)
			}
		}
		return b
	})
	return appendMetadata(b, d)
}

// appendDenied appends the CheckResponse that denies d: its gRPC status
// (UNAUTHENTICATED for a 401, PERMISSION_DENIED otherwise), its HTTP
// status, headers and JSON body, and the decision as dynamic metadata.
func appendDenied(b []byte, a *authz.Authorizer, d *authz.Decision) []byte {
	code := uint64(codePermissionDenied)
	if d.Status == 401 {
		code = codeUnauthenticated
	}
	b = appendMessage(b, responseStatus, func(b []byte) []byte {
		b = appendVarint(b, statusCode, code)
		return appendString(b, statusMessage, string(d.Reason))
	})
	b = appendMessage(b, responseDenied, func(b []byte) []byte {
		b = appendMessage(b, deniedStatus, func(b []byte) []byte {
			return appendVarint(b, httpStatus, uint64(d.Status))
		})
		b = appendHeader(b, deniedHeaders, "content-type", "application/json")
		b = appendHeader(b, deniedHeaders, "x-scopegate-reason", string(d.Reason))
		if c := a.Challenge(d); c != "" {
			b = appendHeader(b, deniedHeaders, "www-authenticate", c)
		}
		if d.DPoPNonce != "" {
			b = appendHeader(b, deniedHeaders, "dpop-nonce", d.DPoPNonce)
		}
		return appendMessage(b, deniedBody, d.AppendBody)
	})
	return appendMetadata(b, d)
}

// The gRPC status codes of denies, from google.golang.org/grpc/codes.
const (
	codePermissionDenied = 7
	codeUnauthenticated  = 16
)

// appendMetadata appends the decision as Envoy dynamic metadata, for its
// access log: a Struct of reason, route, client_id, subject and, for a
// dry-run allow, would_deny.
func appendMetadata(b []byte, d *authz.Decision) []byte {
	return appendMessage(b, responseMetadata, func(b []byte) []byte {
		b = appendStructString(b, "reason", string(d.Reason))
		if d.Route != "" {
			b = appendStructString(b, "route", d.Route)
		}
		if c := d.Claims; c != nil {
			b = appendStructString(b, "client_id", c.ClientID)
			b = appendStructString(b, "subject", c.Subject)
		}
		if d.WouldDeny {
			// A dry-run route let the request through: the access log
			// shows what enforcing it would have done.
			b = appendMessage(b, structFields, func(b []byte) []byte {
				b = appendString(b, mapKey, "would_deny")
				return appendMessage(b, mapValue, func(b []byte) []byte {
					return appendVarint(b, valueBool, 1)
				})
			})
		}
		return b
	})
}

// appendStructString appends a Struct field named key holding the string
// value, "" included: a Value's kind is always set.
func appendStructString(b []byte, key, value string) []byte {
	return appendMessage(b, structFields, func(b []byte) []byte {
		b = appendString(b, mapKey, key)
		return appendMessage(b, mapValue, func(b []byte) []byte {
			b = protowire.AppendTag(b, valueString, protowire.BytesType)
			return protowire.AppendString(b, value)
		})
	})
}
