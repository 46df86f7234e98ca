package telemetry_test

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/telemetry"
)

// BenchmarkObserve measures what the metrics and the audit log add to a
// check, as the listeners' Observer calls them.
func BenchmarkObserve(b *testing.B) {
	claims := &authz.Claims{Issuer: "https://idp.example.com", Subject: "svc", ClientID: "svc", Scopes: []string{"orders:read"}}
	allow := &authz.Decision{Allow: true, Status: 200, Reason: authz.ReasonAllowed, Route: "orders-read", Path: "/orders/1", PolicyVersion: "0123456789ab", Claims: claims}
	deny := &authz.Decision{Status: 403, Reason: authz.ReasonInsufficientScope, Route: "orders-create", Path: "/orders", PolicyVersion: "0123456789ab", Required: []string{"orders:write"}, Claims: claims}
	tests := []struct {
		name     string
		rate     float64
		buffered bool // as serve writes the audit log
		d        *authz.Decision
	}{
		{"allow/metrics only", -1, false, allow},
		{"allow/audit rate 0", 0, false, allow},
		{"allow/audit rate 1", 1, false, allow},
		{"deny/audited", 0, false, deny},
		{"deny/audited buffered", 0, true, deny},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			m := telemetry.NewMetrics()
			var a *telemetry.Audit
			switch {
			case tt.buffered:
				a = telemetry.NewBufferedAudit(io.Discard, tt.rate, 100*time.Millisecond, slog.New(slog.DiscardHandler))
				defer a.Close()
			case tt.rate >= 0:
				a = telemetry.NewAudit(io.Discard, tt.rate)
			}
			r := request()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					m.ObserveCheck(tt.d, 180*time.Microsecond)
					a.Record(r, tt.d, 180*time.Microsecond)
				}
			})
			// A buffered log drops what its writer, short of CPU while
			// every core records, does not take in time.
			b.ReportMetric(float64(a.Dropped())/float64(b.N), "dropped/op")
		})
	}
}

// BenchmarkAuditToFile measures an audited deny written to a file, as
// serve writes the audit log when audit.output names one: a Write a line,
// and buffered, as serve does.
func BenchmarkAuditToFile(b *testing.B) {
	claims := &authz.Claims{Issuer: "https://idp.example.com", Subject: "svc", ClientID: "svc", Scopes: []string{"orders:read"}}
	deny := &authz.Decision{Status: 403, Reason: authz.ReasonInsufficientScope, Route: "orders-create", Path: "/orders", PolicyVersion: "0123456789ab", Required: []string{"orders:write"}, Claims: claims}
	tests := []struct {
		name string
		new  func(io.Writer) *telemetry.Audit
	}{
		{"unbuffered", func(w io.Writer) *telemetry.Audit { return telemetry.NewAudit(w, 0) }},
		{"buffered", func(w io.Writer) *telemetry.Audit {
			return telemetry.NewBufferedAudit(w, 0, 100*time.Millisecond, slog.New(slog.DiscardHandler))
		}},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "audit.log"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			a := tt.new(f)
			defer a.Close()
			r := request()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					a.Record(r, deny, 180*time.Microsecond)
				}
			})
			b.ReportMetric(float64(a.Dropped())/float64(b.N), "dropped/op")
		})
	}
}
