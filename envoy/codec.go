package envoy

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// message is a CheckRequest or CheckResponse in its wire encoding, which
// the Server reads and writes itself (see wire.go): the codec passes it
// through untouched.
type message struct{ b []byte }

// codec is gRPC's proto codec, except for messages, which it passes
// through. It replaces the proto codec for the whole process, clients
// included, when this package is imported: a Server must never meet a
// codec that cannot carry its messages, since a call that fails on the
// codec is one that Envoy's failure_mode_allow lets through. Every other
// message goes to the proto codec as before.
type codec struct{ encoding.CodecV2 }

func init() { encoding.RegisterCodecV2(codec{encoding.GetCodecV2(proto.Name)}) }

// Marshal implements encoding.CodecV2.
func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*message); ok {
		return mem.BufferSlice{mem.SliceBuffer(m.b)}, nil
	}
	return c.CodecV2.Marshal(v)
}

// Unmarshal implements encoding.CodecV2. A message gets a copy of data:
// gRPC recycles data's buffers once Unmarshal returns, and the request
// the Server reads keeps views into the bytes, which outlive the call
// when a token introspection that the call started goes on without it.
func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(*message); ok {
		m.b = data.Materialize()
		return nil
	}
	return c.CodecV2.Unmarshal(data, v)
}
