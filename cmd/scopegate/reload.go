package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/policy"
)

// policyState swaps in the policies a policy.Watcher reports and keeps
// what GET /policy shows. A policy that fails to load changes nothing but
// the counters and last_error: the last good one keeps serving, and the
// service stays ready.
type policyState struct {
	authorizer *authz.Authorizer
	logger     *slog.Logger
	ok, failed atomic.Int64 // reloads

	mu       sync.Mutex // orders swaps with reads of loadedAt and lastErr
	loadedAt time.Time  // of the policy in use
	lastErr  string     // of the last reload, if it failed
}

func newPolicyState(a *authz.Authorizer, logger *slog.Logger) *policyState {
	return &policyState{authorizer: a, logger: logger, loadedAt: time.Now()}
}

// changed is the policy.Watcher's OnChange.
func (s *policyState) changed(p *policy.Policy, err error) {
	if err != nil {
		s.failed.Add(1)
		s.mu.Lock()
		s.lastErr = err.Error()
		s.mu.Unlock()
		s.logger.Error("policy reload failed; the last good policy keeps serving",
			"policy_version", s.authorizer.Policy().Version, "err", err)
		return
	}
	s.mu.Lock()
	s.authorizer.SetPolicy(p)
	s.loadedAt, s.lastErr = time.Now(), ""
	s.mu.Unlock()
	s.ok.Add(1)
	s.logger.Info("policy reloaded", "policy", p.File, "policy_version", p.Version, "routes", len(p.Routes))
}

// ServeHTTP serves GET /policy: the policy in use and how reloads went.
func (s *policyState) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	p := s.authorizer.Policy()
	body := struct {
		File          string    `json:"file"`
		Version       string    `json:"version"`
		LoadedAt      time.Time `json:"loaded_at"`
		ReloadsOK     int64     `json:"reloads_ok"`
		ReloadsFailed int64     `json:"reloads_failed"`
		LastError     string    `json:"last_error,omitempty"`
	}{p.File, p.Version, s.loadedAt, s.ok.Load(), s.failed.Load(), s.lastErr}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(body)
}
