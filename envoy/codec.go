package envoy

import (
	"sync"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	protobuf "google.golang.org/protobuf/proto"
)

// encodedOKs maps each allow response held by a Server's cache
// (*authv3.CheckResponse) to its wire encoding (a mem.Buffer over the
// bytes), so that codec sends it without marshaling it again. An entry
// is added before its response enters a cache and removed when the
// cache lets it go (see Server.ok), so it holds no more entries than the
// caches do. Only the Server adds entries: a response that is not in it
// is marshaled as usual.
var encodedOKs sync.Map

// encodeOK records the wire encoding of resp, an allow response about to
// be cached and never modified after.
func encodeOK(resp *authv3.CheckResponse) {
	b, err := protobuf.MarshalOptions{Deterministic: false}.Marshal(resp)
	if err != nil {
		return // the codec marshals it as usual, and reports the error
	}
	// gRPC only reads a buffer's bytes (mem.Buffer.ReadOnlyData), and a
	// SliceBuffer's Ref and Free do nothing: the bytes are never recycled
	// into a pool, so they can be sent by any number of calls at once.
	encodedOKs.Store(resp, mem.Buffer(mem.SliceBuffer(b)))
}

// forgetOK drops the wire encoding of resp, which has left a cache.
func forgetOK(resp *authv3.CheckResponse) { encodedOKs.Delete(resp) }

// codec is the gRPC server codec of ServerOptions: the default proto
// codec, except that a cached allow response is sent as encoded when it
// was cached. Unmarshal is the default one's.
type codec struct{ encoding.CodecV2 }

func newCodec() codec { return codec{encoding.GetCodecV2(proto.Name)} }

// Marshal implements encoding.CodecV2.
func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if resp, ok := v.(*authv3.CheckResponse); ok {
		if b, ok := encodedOKs.Load(resp); ok {
			return mem.BufferSlice{b.(mem.Buffer)}, nil
		}
	}
	return c.CodecV2.Marshal(v)
}
