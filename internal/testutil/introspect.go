package testutil

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// IntrospectionFault is how an IntrospectionServer misbehaves.
type IntrospectionFault int

// The faults an IntrospectionServer can be given.
const (
	IntrospectionHealthy IntrospectionFault = iota // answer as RFC 7662 says
	Introspection500                               // answer 500 Internal Server Error
	IntrospectionGarbage                           // answer 200 with a body that is not JSON
)

// IntrospectionServer is an RFC 7662 token introspection endpoint for
// tests. It answers with the response registered for a token, and
// {"active":false} for any other, once the client has authenticated with
// its AuthMethod.
type IntrospectionServer struct {
	URL          string // the endpoint
	ClientID     string
	ClientSecret string // the secret at start; see RotateSecret and AddSecret

	srv   *httptest.Server
	calls atomic.Int64

	mu         sync.Mutex
	secrets    []string          // accepted
	tokens     map[string][]byte // token → response body
	authMethod string
	delay      time.Duration
	fault      IntrospectionFault
	status     int
}

// NewIntrospectionServer starts an introspection endpoint that requires
// client_secret_basic authentication, and closes it when the test ends.
func NewIntrospectionServer(t testing.TB) *IntrospectionServer {
	s := &IntrospectionServer{
		ClientID:     "scopegate",
		ClientSecret: "s3cret: with & odd = characters",
		tokens:       map[string][]byte{},
		authMethod:   "client_secret_basic",
	}
	s.secrets = []string{s.ClientSecret}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + "/introspect"
	t.Cleanup(s.srv.Close)
	return s
}

// Register sets the response for token; response is marshaled to JSON as
// it is, so that it can hold members of the wrong type.
func (s *IntrospectionServer) Register(token string, response map[string]any) {
	b, err := json.Marshal(response)
	if err != nil {
		panic("testutil: unmarshalable introspection response: " + err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = b
}

// SetAuthMethod sets the client authentication the server requires:
// "client_secret_basic" or "client_secret_post".
func (s *IntrospectionServer) SetAuthMethod(method string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.authMethod = method
}

// SetDelay makes the server wait d before each answer, or until the client
// gives up.
func (s *IntrospectionServer) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// SetFault makes the server misbehave, or behave again with IntrospectionHealthy.
func (s *IntrospectionServer) SetFault(f IntrospectionFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// SetStatus makes the server answer every request with status and an OAuth
// error body, as a provider does that refuses the request (4xx), sheds load
// (429, with Retry-After) or fails (5xx); 0 lets it answer again as its
// fault says.
func (s *IntrospectionServer) SetStatus(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = status
}

// Close shuts the server down: every later request fails to connect.
func (s *IntrospectionServer) Close() { s.srv.Close() }

// Calls returns how many requests reached the server.
func (s *IntrospectionServer) Calls() int { return int(s.calls.Load()) }

func (s *IntrospectionServer) serve(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	s.mu.Lock()
	delay, fault, method, status := s.delay, s.fault, s.authMethod, s.status
	s.mu.Unlock()
	// Reading the body first lets the server notice a client that gives up
	// during the delay.
	formErr := r.ParseForm()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case status == http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "1")
		writeIntrospectionJSON(w, status, `{"error":"too_many_requests"}`)
		return
	case status >= 500:
		writeIntrospectionJSON(w, status, `{"error":"server_error"}`)
		return
	case status != 0:
		writeIntrospectionJSON(w, status, `{"error":"invalid_request"}`)
		return
	}
	switch fault {
	case Introspection500:
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	case IntrospectionGarbage:
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"active": tru`))
		return
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		writeIntrospectionJSON(w, http.StatusBadRequest, `{"error":"invalid_request"}`)
		return
	}
	if formErr != nil {
		writeIntrospectionJSON(w, http.StatusBadRequest, `{"error":"invalid_request"}`)
		return
	}
	if !s.authenticated(r, method) {
		w.Header().Set("WWW-Authenticate", `Basic realm="introspection"`)
		writeIntrospectionJSON(w, http.StatusUnauthorized, `{"error":"invalid_client"}`)
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		writeIntrospectionJSON(w, http.StatusBadRequest, `{"error":"invalid_request"}`)
		return
	}
	s.mu.Lock()
	body, ok := s.tokens[token]
	s.mu.Unlock()
	if !ok {
		body = []byte(`{"active":false}`)
	}
	writeIntrospectionJSON(w, http.StatusOK, string(body))
}

// authenticated checks the client's credentials as RFC 6749 section 2.3.1
// has them sent: form-encoded in the Basic credentials, or in the body, and
// never both ways at once.
func (s *IntrospectionServer) authenticated(r *http.Request, method string) bool {
	user, pass, basic := r.BasicAuth()
	_, post := r.PostForm["client_secret"]
	switch {
	case method == "client_secret_basic" && basic && !post:
		var err error
		if user, err = url.QueryUnescape(user); err != nil {
			return false
		}
		if pass, err = url.QueryUnescape(pass); err != nil {
			return false
		}
	case method == "client_secret_post" && post && !basic:
		user, pass = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	default:
		return false
	}
	s.mu.Lock()
	secrets := s.secrets
	s.mu.Unlock()
	known := false
	for _, secret := range secrets {
		known = subtle.ConstantTimeCompare([]byte(pass), []byte(secret)) == 1 || known
	}
	return user == s.ClientID && known
}

// RotateSecret makes the server accept only secret from now on.
func (s *IntrospectionServer) RotateSecret(secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets = []string{secret}
}

// AddSecret makes the server accept secret too, as providers do during a
// rotation while their client's instances move from the old secret to the
// new one; RotateSecret then retires the old.
func (s *IntrospectionServer) AddSecret(secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets = append(s.secrets[:len(s.secrets):len(s.secrets)], secret)
}

func writeIntrospectionJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write([]byte(body))
}
