package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The opaque tokens of the harness are opaquePrefix and the 26 upper-case
// letters and digits of rand.Text: its introspection endpoint answers
// active for any such token, so that the suite makes as many as it needs
// without registering them. Junk tokens have the same form in lower case,
// which the endpoint answers inactive.
const opaquePrefix = "opaque-"

// opaqueFormat is the token_format of the harness's opaque tokens, which
// junk tokens fit too.
const opaqueFormat = "{prefix: " + opaquePrefix + ", alphabet: base64url, segments: 1, min_length: 33, max_length: 33}"

// introspectionDelay stands for the round trip to a provider's
// introspection endpoint.
const introspectionDelay = time.Millisecond

// introspectionClient is the client scopegate authenticates as.
const introspectionClient = "scopegate"

// The limits on scopegate's introspection requests in the harness's
// configs: above what a run asks.
const (
	introspectionMaxConcurrent = 256
	introspectionMaxRate       = 100_000
)

// opaqueTokens returns n distinct opaque tokens.
func opaqueTokens(n int) []string {
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = opaquePrefix + rand.Text()
	}
	return tokens
}

// junkTokens returns n distinct tokens of the harness's form that its
// introspection endpoint answers inactive: random bearer strings that a
// token_format cannot tell from valid tokens.
func junkTokens(n int) []string {
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = opaquePrefix + strings.ToLower(rand.Text())
	}
	return tokens
}

// harnessToken reports whether token is one of opaqueTokens'.
func harnessToken(token string) bool {
	rest, ok := strings.CutPrefix(token, opaquePrefix)
	return ok && rest != "" && strings.Trim(rest, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") == ""
}

// introspection is an RFC 7662 introspection endpoint on loopback. It
// answers after introspectionDelay, that a token of the harness is active,
// for the harness's client, scopes and audience.
type introspection struct {
	srv    *http.Server
	url    string // of the endpoint
	secret string // the client secret scopegate presents
	active []byte // the answer about every token of the harness
}

func startIntrospection(issuer string) (*introspection, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	in := &introspection{url: "http://" + lis.Addr().String() + "/introspect", secret: rand.Text()}
	in.active, err = json.Marshal(map[string]any{
		"active": true, "iss": issuer, "sub": benchClient, "client_id": benchClient,
		"aud": benchAudience, "scope": strings.Join(benchScopes, " "), "token_type": "Bearer",
		"exp": time.Now().Add(tokenTTL).Unix(), "iat": time.Now().Unix(),
	})
	if err != nil {
		lis.Close()
		return nil, err
	}
	in.srv = &http.Server{Handler: http.HandlerFunc(in.serve), ReadHeaderTimeout: 5 * time.Second}
	go in.srv.Serve(lis)
	return in, nil
}

func (in *introspection) serve(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok || id != introspectionClient || subtle.ConstantTimeCompare([]byte(secret), []byte(in.secret)) != 1 {
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	time.Sleep(introspectionDelay)
	w.Header().Set("Content-Type", "application/json")
	if !harnessToken(r.PostFormValue("token")) {
		w.Write([]byte(`{"active":false}`))
		return
	}
	w.Write(in.active)
}

// Close stops the endpoint.
func (in *introspection) Close() error { return in.srv.Close() }

// redisServer is a redis-server that the suite runs for the scenario of
// a shared token cache.
type redisServer struct {
	*server
	addr string
}

// startRedis starts redis-server on a free loopback port, keeping nothing
// on disk, and waits until it answers.
func startRedis(logFile string) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	srv, err := startServer("redis-server", logFile, bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no")
	if err != nil {
		return nil, err
	}
	r := &redisServer{server: srv, addr: addr}
	for deadline := time.Now().Add(serveTimeout); ; time.Sleep(50 * time.Millisecond) {
		if err = r.ping(); err == nil {
			return r, nil
		}
		if time.Now().After(deadline) {
			srv.stop()
			return nil, fmt.Errorf("redis-server did not answer on %s: %v\n%s", addr, err, srv.tail())
		}
	}
}

// ping sends PING and expects PONG.
func (r *redisServer) ping() error {
	c := redis.NewClient(&redis.Options{Addr: r.addr, DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	defer c.Close()
	return c.Ping(context.Background()).Err()
}

// writeSecret writes the client secret of in to a file of dir, for
// scopegate's client_secret_file.
func (in *introspection) writeSecret(name string) error {
	return os.WriteFile(name, []byte(in.secret+"\n"), 0o600)
}
