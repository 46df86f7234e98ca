package envoy

import "context"

// CheckWire is Check as the gRPC handler runs it, for the benchmarks:
// a CheckRequest's encoding in, a CheckResponse's out.
func (s *Server) CheckWire(ctx context.Context, msg []byte) []byte { return s.check(ctx, msg) }
