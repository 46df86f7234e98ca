package main

import (
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/scopegate/scopegate/envoy"
)

// The harness sends its CheckRequests and reads the CheckResponses in
// their wire encoding: it runs on the cores of the server it measures,
// and building and decoding the messages with the generated code cost it
// more CPU than the calls themselves, which every figure of a shared
// machine paid for.

// raw is a message in its wire encoding, which rawCodec passes through.
type raw struct{ b []byte }

// rawCodec is the codec of the harness's calls.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(*raw).b)}, nil
}

// Unmarshal copies data into v's bytes, reusing them: gRPC recycles data
// once Unmarshal returns.
func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	r := v.(*raw)
	n := data.Len()
	if cap(r.b) < n {
		r.b = make([]byte, n)
	}
	r.b = r.b[:n]
	data.CopyTo(r.b)
	return nil
}

// encodeRequest returns the encoding of the CheckRequest that Envoy sends
// for r, without an authorization header.
func encodeRequest(r *Request) ([]byte, error) {
	m := envoy.CheckRequest(r.Method, r.Host, r.Path, nil)
	if r.Peer != "" {
		m.Attributes.Source.Address.GetSocketAddress().Address = r.Peer
	}
	return proto.Marshal(m)
}

// Field numbers of the CheckRequest and CheckResponse fields the harness
// writes or reads.
const (
	fieldAttributes = 1 // CheckRequest.attributes
	fieldRequest    = 4 // AttributeContext.request
	fieldHTTP       = 2 // AttributeContext.Request.http
	fieldHeaders    = 3 // HttpRequest.headers, map<string, string>
	fieldKey        = 1 // a map entry's key
	fieldValue      = 2 // a map entry's value

	fieldStatus   = 1 // CheckResponse.status
	fieldMetadata = 4 // CheckResponse.dynamic_metadata
	fieldCode     = 1 // google.rpc.Status.code
	fieldMessage  = 2 // google.rpc.Status.message
	fieldFields   = 1 // google.protobuf.Struct.fields
	fieldString   = 3 // google.protobuf.Value.string_value
)

// appendAuthorization appends to the encoding of a CheckRequest the
// authorization header h. Protobuf merges a message field that comes
// twice, so the request reads as if the header were in its headers map.
func appendAuthorization(b []byte, h string) []byte {
	const name = "authorization"
	entry := 2 + protowire.SizeBytes(len(name)) + protowire.SizeBytes(len(h))
	http := 1 + protowire.SizeBytes(entry)
	req := 1 + protowire.SizeBytes(http)
	attrs := 1 + protowire.SizeBytes(req)
	for _, f := range [...]struct {
		num  protowire.Number
		size int
	}{{fieldAttributes, attrs}, {fieldRequest, req}, {fieldHTTP, http}, {fieldHeaders, entry}} {
		b = protowire.AppendTag(b, f.num, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(f.size))
	}
	b = protowire.AppendTag(b, fieldKey, protowire.BytesType)
	b = protowire.AppendString(b, name)
	b = protowire.AppendTag(b, fieldValue, protowire.BytesType)
	return protowire.AppendString(b, h)
}

// answer is what the harness reads of a CheckResponse.
type answer struct {
	code int32 // the gRPC status code: OK allows
	// reason is the reason scopegate gives in its dynamic metadata, or
	// else the status message of a deny; "" when there is none, as from
	// the floor.
	reason string
}

// readAnswer reads the answer of the encoding of a CheckResponse, and
// reports whether it is well formed.
func readAnswer(b []byte) (a answer, ok bool) {
	var message, metadataReason string
	ok = eachField(b, func(num protowire.Number, v []byte, x uint64) bool {
		switch num {
		case fieldStatus:
			return eachField(v, func(num protowire.Number, v []byte, x uint64) bool {
				switch {
				case num == fieldCode && v == nil:
					a.code = int32(x)
				case num == fieldMessage:
					message = string(v)
				}
				return true
			})
		case fieldMetadata:
			return eachField(v, func(num protowire.Number, entry []byte, _ uint64) bool {
				if num != fieldFields {
					return true
				}
				var key, value string
				ok := eachField(entry, func(num protowire.Number, v []byte, _ uint64) bool {
					switch num {
					case fieldKey:
						key = string(v)
					case fieldValue:
						return eachField(v, func(num protowire.Number, v []byte, _ uint64) bool {
							if num == fieldString {
								value = string(v)
							}
							return true
						})
					}
					return true
				})
				if key == "reason" {
					metadataReason = value
				}
				return ok
			})
		}
		return true
	})
	a.reason = message
	if metadataReason != "" {
		a.reason = metadataReason
	}
	return a, ok
}

// eachField calls fn with each field of the message m: the bytes of a
// length-delimited field (empty, not nil), or the value of a varint
// field (with nil bytes). Other fields are skipped.
func eachField(m []byte, fn func(num protowire.Number, b []byte, v uint64) bool) bool {
	for len(m) > 0 {
		num, typ, n := protowire.ConsumeTag(m)
		if n < 0 {
			return false
		}
		m = m[n:]
		var b []byte
		var v uint64
		switch typ {
		case protowire.BytesType:
			b, n = protowire.ConsumeBytes(m)
			if b == nil {
				b = []byte{}
			}
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(m)
		default:
			n = protowire.ConsumeFieldValue(num, typ, m)
			if n >= 0 {
				m = m[n:]
				continue
			}
		}
		if n < 0 {
			return false
		}
		m = m[n:]
		if !fn(num, b, v) {
			return false
		}
	}
	return true
}
