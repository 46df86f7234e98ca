package authz

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/scopegate/scopegate/internal/devidp"
	"github.com/scopegate/scopegate/internal/testutil"
)

func TestJWTVerifyTokenWithoutKID(t *testing.T) {
	idp := testutil.NewIdP(t)
	opts := jwtOptions(&jwtLog{})
	opts.CacheSize = -1
	v := newTestJWTVerifier(t, opts, jwtIssuerFor(idp))
	noKID := testutil.Header("kid", nil)
	// The JWKS has one key for each algorithm: the one for the token's is
	// used.
	for _, alg := range []string{devidp.RS256, devidp.ES256, devidp.EdDSA} {
		if _, err := v.Verify(t.Context(), idp.Token(t, testutil.Alg(alg), noKID)); err != nil {
			t.Errorf("%s without kid: %v", alg, err)
		}
	}
	// With two RSA keys, the verifier does not choose.
	idp.Rotate(t, devidp.RS256, true)
	if _, err := v.Verify(t.Context(), idp.Token(t)); err != nil {
		t.Fatalf("Verify with the new kid: %v", err)
	}
	tok := idp.Token(t, noKID)
	c, err := v.Verify(t.Context(), tok)
	wantRefusal(t, tok, c, err, ReasonUnknownKey)
}

func TestJWTKeyRotation(t *testing.T) {
	idp := testutil.NewIdP(t)
	opts := jwtOptions(&jwtLog{})
	opts.CacheSize = -1
	opts.RefetchCooldown = time.Hour // the first unknown kid still refetches
	v := newTestJWTVerifier(t, opts, jwtIssuerFor(idp))
	old := idp.Token(t)
	if _, err := v.Verify(t.Context(), old); err != nil {
		t.Fatalf("Verify before the rotation: %v", err)
	}

	idp.Rotate(t, devidp.RS256, false)
	// Many checks of tokens signed with the new key arrive at once: they
	// share one fetch of the JWKS.
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			if _, err := v.Verify(t.Context(), idp.Token(t)); err != nil {
				errs <- err
			}
		})
	}
	testutil.Wait(t, &wg, testutil.WaitTimeout, "the checks after the rotation")
	close(errs)
	for err := range errs {
		t.Errorf("Verify after the rotation: %v", err)
	}
	if n := idp.JWKSFetches(); n != 2 {
		t.Errorf("%d JWKS fetches, want 2: the one at start and one for the new kid", n)
	}
	// The old key was withdrawn with the fetch.
	c, err := v.Verify(t.Context(), old)
	wantRefusal(t, old, c, err, ReasonUnknownKey)
}

func TestJWTUnknownKIDFloodFetchesOnce(t *testing.T) {
	for _, concurrent := range []bool{false, true} {
		t.Run(fmt.Sprintf("concurrent=%v", concurrent), func(t *testing.T) {
			idp := testutil.NewIdP(t)
			opts := jwtOptions(&jwtLog{})
			opts.RefetchCooldown = time.Hour
			v := newTestJWTVerifier(t, opts, jwtIssuerFor(idp))
			toks := make([]string, 1000)
			for i := range toks {
				toks[i] = idp.Token(t, testutil.RandomKID())
			}
			check := func(tok string) {
				c, err := v.Verify(t.Context(), tok)
				wantRefusal(t, tok, c, err, ReasonUnknownKey)
			}
			if concurrent {
				var wg sync.WaitGroup
				for _, tok := range toks {
					wg.Go(func() { check(tok) })
				}
				testutil.Wait(t, &wg, testutil.WaitTimeout, "the checks of the unknown kids")
			} else {
				for _, tok := range toks {
					check(tok)
				}
			}
			if n := idp.JWKSFetches(); n > 2 {
				t.Errorf("%d JWKS fetches for 1,000 unknown kids, want at most 2", n)
			}
			// Known keys are unaffected.
			if _, err := v.Verify(t.Context(), idp.Token(t)); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

// rawToken returns the compact JWS of the JSON header and payload given,
// with sig as its signature segment.
func rawToken(header, payload, sig string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload)) + "." + sig
}

// coolingVerifier returns a verifier of idp's tokens whose refetch for an
// unknown kid has just been spent, so that unknown kids are refused early.
func coolingVerifier(t testing.TB, idp *testutil.IdP) *JWTVerifier {
	t.Helper()
	v := newTestJWTVerifier(t, JWTOptions{Logger: slog.New(slog.DiscardHandler), RefetchCooldown: time.Hour}, jwtIssuerFor(idp))
	if _, err := v.Verify(context.Background(), idp.Token(t, testutil.RandomKID())); err == nil {
		t.Fatal("Verify accepted a token with an unknown kid")
	}
	return v
}

// earlyRefusalTokens are tokens of idp's issuer that name unknown keys or
// come close, each with whether unknownKey may refuse it early.
func earlyRefusalTokens(t testing.TB, idp *testutil.IdP) map[string]bool {
	kid := idp.KeyID(devidp.RS256)
	exp := time.Now().Add(time.Hour).Unix()
	payload := fmt.Sprintf(`{"iss":%q,"aud":%q,"exp":%d}`, idp.Issuer(), testutil.DefaultAudience, exp)
	sig := base64.RawURLEncoding.EncodeToString([]byte("signature"))
	return map[string]bool{
		idp.Token(t, testutil.RandomKID()):                                                    true,
		idp.Token(t, testutil.RandomKID(), testutil.Alg(devidp.EdDSA)):                        true,
		rawToken(`{"alg":"RS256","kid":"nope"}`, payload, sig):                                true,
		rawToken(` { "alg" : "RS256" , "\u006bid" : "nope" } `, payload, sig):                 true,
		rawToken(`{"alg":"RS256","kid":"`+kid+`","kid":"nope"}`, payload, sig):                true,
		rawToken(`{"alg":"RS256","kid":"nope"}`, `{"iss":"x","iss":"`+idp.Issuer()+`"}`, sig): true,
		rawToken(`{"alg":"RS256","kid":"nope","x":[1.5,-2,{"e":true}]}`, payload, sig):        true,
		// Each of these fails a check made before the key is read, or
		// names a known key: the full parse decides.
		idp.Token(t): false,
		rawToken(`{"alg":"RS256","kid":"nope","kid":"`+kid+`"}`, payload, sig):              false,
		rawToken(`{"alg":"RS256","Kid":"nope"}`, payload, sig):                              false,
		rawToken(`{"ALG":"RS256","kid":"nope"}`, payload, sig):                              false,
		rawToken(`{"alg":"HS256","kid":"nope"}`, payload, sig):                              false,
		rawToken(`{"alg":"RS384","kid":"nope"}`, payload, sig):                              false,
		rawToken(`{"alg":["RS256"],"kid":"nope"}`, payload, sig):                            false,
		rawToken(`{"alg":"RS256","kid":null}`, payload, sig):                                false,
		rawToken(`{"alg":"RS256","kid":7}`, payload, sig):                                   false,
		rawToken(`{"alg":"RS256","kid":"nope","crit":null}`, payload, sig):                  false,
		rawToken(`{"alg":"RS256","kid":"nope","x":1e999}`, payload, sig):                    false,
		rawToken(`{"alg":"RS256","kid":"nope"}`, `{"x":1e999,`+payload[1:], sig):            false,
		rawToken(`{"alg":"RS256","kid":"nope"}`, `{"iss":"`+idp.Issuer()+`",}`, sig):        false,
		rawToken(`{"alg":"RS256","kid":"nope"}`, `null`, sig):                               false,
		rawToken(`{"alg":"RS256","kid":"nope"}`, `{"iss":"https://other.example"}`, sig):    false,
		rawToken(`{"alg":"RS256","kid":"nope"}`, `{"iss":"`+idp.Issuer()+`","iss":1}`, sig): false,
		rawToken(`{"alg":"RS256","kid":"nope"}`, payload, "AB"):                             false,
		rawToken(`{"alg":"RS256","kid":"nope"}`, payload, sig+"."):                          false,
		rawToken(`["alg","RS256","kid","nope"]`, payload, sig):                              false,
		rawToken(`{"alg":"RS256","kid":"nope"`, payload, sig):                               false,
		rawToken(`{"alg":"RS256","kid":"nope"}`, payload, sig) + "=":                        false,
	}
}

// The early refusal of unknown kids refuses only tokens that the full
// parse refuses for the same reason.
func TestJWTUnknownKIDRefusedEarly(t *testing.T) {
	idp := testutil.NewIdP(t)
	v := coolingVerifier(t, idp)
	fetches := idp.JWKSFetches()
	for tok, early := range earlyRefusalTokens(t, idp) {
		te := v.unknownKey(tok)
		if (te != nil) != early {
			t.Errorf("unknownKey(%s) = %v, want early refusal %v", tok, te, early)
		}
		_, _, perr := v.parse(t.Context(), tok)
		c, err := v.Verify(t.Context(), tok)
		var full, got *TokenError
		errors.As(perr, &full)
		errors.As(err, &got)
		if (perr == nil) != (err == nil) || full != nil && (got == nil || got.Reason != full.Reason) {
			t.Errorf("token %s: Verify = %+v, %v; the full parse %v", tok, c, err, perr)
		}
		if te != nil {
			wantRefusal(t, tok, nil, te, ReasonUnknownKey)
			if full == nil || full.Reason != te.Reason || full.Description != te.Description || full.Unavailable != te.Unavailable ||
				!errors.Is(te, jwkset.ErrKeyNotFound) || !errors.Is(te, keyfunc.ErrKeyfunc) || !errors.Is(full, keyfunc.ErrKeyfunc) {
				t.Errorf("token %s: early refusal %v, the full parse %v", tok, te, perr)
			}
		}
	}
	if n := idp.JWKSFetches(); n != fetches {
		t.Errorf("%d JWKS fetches during the cooldown, want none", n-fetches)
	}
	// Past the cooldown, an unknown kid fetches the keys again.
	v.issuers[idp.Issuer()].keys.mu.Lock()
	v.issuers[idp.Issuer()].keys.last = time.Time{}
	v.issuers[idp.Issuer()].keys.mu.Unlock()
	tok := idp.Token(t, testutil.RandomKID())
	if te := v.unknownKey(tok); te != nil {
		t.Errorf("unknownKey past the cooldown = %v, want nil", te)
	}
	c, err := v.Verify(t.Context(), tok)
	wantRefusal(t, tok, c, err, ReasonUnknownKey)
	if n := idp.JWKSFetches(); n != fetches+1 {
		t.Errorf("%d JWKS fetches past the cooldown, want 1", n-fetches)
	}
}

// An issuer requiring a type refuses tokens of another type for that,
// not early for their unknown kid.
func TestJWTUnknownKIDRefusedEarlyKeepsTypeCheck(t *testing.T) {
	idp := testutil.NewIdP(t)
	iss := jwtIssuerFor(idp)
	iss.Type = "at+jwt"
	v := newTestJWTVerifier(t, JWTOptions{Logger: slog.New(slog.DiscardHandler), RefetchCooldown: time.Hour}, iss)
	prime := idp.Token(t, testutil.RandomKID(), testutil.Header("typ", "at+jwt"))
	c, err := v.Verify(t.Context(), prime)
	wantRefusal(t, prime, c, err, ReasonUnknownKey)
	for typ, reason := range map[string]Reason{"JWT": ReasonTokenType, "application/AT+JWT": ReasonUnknownKey} {
		tok := idp.Token(t, testutil.RandomKID(), testutil.Header("typ", typ))
		c, err := v.Verify(t.Context(), tok)
		wantRefusal(t, tok, c, err, reason)
	}
}

func TestJWTKeysOutliveAnIssuerOutage(t *testing.T) {
	for _, outage := range []string{"refused", "failing"} {
		t.Run(outage, func(t *testing.T) {
			idp := testutil.NewIdP(t)
			var log jwtLog
			opts := jwtOptions(&log)
			opts.RefreshInterval = 5 * time.Millisecond
			opts.CacheSize = -1
			v := newTestJWTVerifier(t, opts, jwtIssuerFor(idp))
			tok := idp.Token(t)
			if outage == "refused" {
				idp.Refuse()
			} else {
				idp.Fail()
			}
			eventually(t, "a failed refresh to be logged", func() bool {
				return strings.Count(log.String(), "cannot refresh the issuer's keys") >= 2
			})
			for _, tok := range []string{tok, idp.Token(t, testutil.Alg(devidp.EdDSA))} {
				if _, err := v.Verify(t.Context(), tok); err != nil {
					t.Errorf("Verify while the issuer is down: %v", err)
				}
			}
			unknown := idp.Token(t, testutil.RandomKID())
			c, err := v.Verify(t.Context(), unknown)
			wantRefusal(t, unknown, c, err, ReasonUnknownKey)
			if !v.Ready() {
				t.Error("Ready = false while the last keys fetched are in use")
			}
			if strings.Contains(log.String(), tok) || strings.Contains(log.String(), unknown) {
				t.Error("the log holds a token")
			}
		})
	}
}

func TestJWTIssuerDownAtStart(t *testing.T) {
	for _, discovery := range []bool{false, true} {
		t.Run(fmt.Sprintf("discovery=%v", discovery), func(t *testing.T) {
			idp := testutil.NewIdP(t)
			idp.Refuse()
			iss := jwtIssuerFor(idp)
			if discovery {
				iss.JWKSURI, iss.Discovery = "", true
			}
			var log jwtLog
			v := newTestJWTVerifier(t, jwtOptions(&log), iss)
			if v.Ready() {
				t.Error("Ready = true before any key was fetched")
			}
			tok := idp.Token(t)
			c, err := v.Verify(t.Context(), tok)
			wantRefusal(t, tok, c, err, ReasonIssuerUnavailable)
			if te := (*TokenError)(nil); errors.As(err, &te) && te.Unavailable {
				t.Error("Unavailable = true, want false")
			}
			if !strings.Contains(log.String(), "cannot fetch the issuer's keys") {
				t.Errorf("the failure is not logged; log:\n%s", log.String())
			}

			idp.Restore(t)
			eventually(t, "the issuer's tokens to verify", func() bool {
				_, err := v.Verify(t.Context(), tok)
				return err == nil
			})
			if !v.Ready() {
				t.Error("Ready = false after the keys were fetched")
			}
		})
	}
}

func TestJWTBackgroundRetryMakesReady(t *testing.T) {
	idp := testutil.NewIdP(t)
	idp.Fail()
	opts := jwtOptions(&jwtLog{})
	opts.RefetchCooldown = time.Millisecond
	v := newTestJWTVerifier(t, opts, jwtIssuerFor(idp))
	idp.Restore(t)
	// No token arrives: the verifier retries by itself.
	eventually(t, "Ready", v.Ready)
}

func TestJWTDiscovery(t *testing.T) {
	t.Run("issuer with a trailing slash", func(t *testing.T) {
		idp := testutil.NewIdP(t)
		idp.Provider().SetIssuer(idp.Issuer() + "/")
		v := newTestJWTVerifier(t, jwtOptions(&jwtLog{}), Issuer{Issuer: idp.Issuer(), Discovery: true})
		if _, err := v.Verify(t.Context(), idp.Token(t)); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	})
	t.Run("configuration of another issuer", func(t *testing.T) {
		idp := testutil.NewIdP(t)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode(map[string]string{"issuer": idp.Issuer(), "jwks_uri": idp.JWKSURL()})
		}))
		t.Cleanup(srv.Close)
		var log jwtLog
		v := newTestJWTVerifier(t, jwtOptions(&log), Issuer{Issuer: srv.URL, Discovery: true})
		tok := idp.Token(t, testutil.Claim("iss", srv.URL))
		c, err := v.Verify(t.Context(), tok)
		wantRefusal(t, tok, c, err, ReasonIssuerUnavailable)
		if !strings.Contains(log.String(), "is the configuration of issuer") {
			t.Errorf("the mismatch is not logged; log:\n%s", log.String())
		}
	})
}

func TestJWTRefusesOversizedJWKS(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"keys":[],"pad":%q}`, strings.Repeat("x", maxJWKSResponse))
	}))
	t.Cleanup(srv.Close)
	var log jwtLog
	v := newTestJWTVerifier(t, jwtOptions(&log), Issuer{Issuer: "https://big.test", JWKSURI: srv.URL})
	if v.Ready() || !strings.Contains(log.String(), "larger than") {
		t.Errorf("Ready = %v after an oversized JWKS; log:\n%s", v.Ready(), log.String())
	}
}
