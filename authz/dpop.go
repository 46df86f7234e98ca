package authz

import (
	"context"
	"crypto"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"
)

// The verification of DPoP proofs (RFC 9449): the proof's signature is
// checked with golang-jwt, its jwk header parsed and thumbprinted
// (RFC 7638) with go-jose, so that no JOSE is written by hand here.

// Defaults of the DPoP settings.
const (
	DefaultDPoPMaxAge        = 60 * time.Second
	DefaultDPoPLeeway        = 5 * time.Second
	DefaultDPoPNonceLifetime = 5 * time.Minute
	DefaultDPoPReplayEntries = 100_000
)

// maxDPoPProof bounds the size of a proof: one with an RSA-4096 key is
// under 2 KiB.
const maxDPoPProof = 8 << 10

// defaultDPoPAlgorithms are the algorithms of a setting that names none.
var defaultDPoPAlgorithms = []string{"ES256", "EdDSA", "RS256", "PS256"}

// DPoP configures the verification of DPoP proofs (RFC 9449). Its zero
// value is usable: the default algorithms and window, no nonces, and a
// replay check that fails closed.
type DPoP struct {
	// Algorithms are the proof signature algorithms accepted; default
	// ES256, EdDSA, RS256 and PS256. RS, PS and ES with 256, 384 or 512,
	// and EdDSA, may be named; none and the HS algorithms never.
	Algorithms []string `yaml:"algorithms"`
	// MaxAge is how long after its iat a proof is accepted; nil means
	// DefaultDPoPMaxAge. It may not exceed 5m.
	MaxAge *time.Duration `yaml:"max_age"`
	// Leeway is how far in the future a proof's iat may be, for the
	// client's clock skew; nil means DefaultDPoPLeeway. It may not exceed
	// 5m.
	Leeway *time.Duration `yaml:"leeway"`
	// UseNonce requires proofs to carry a nonce that scopegate issued
	// (RFC 9449 §8): a proof without a fresh one is answered with
	// error="use_dpop_nonce" and a DPoP-Nonce header.
	UseNonce bool `yaml:"use_dpop_nonce"`
	// NonceLifetime is how long an issued nonce is accepted; zero means
	// DefaultDPoPNonceLifetime.
	NonceLifetime time.Duration `yaml:"nonce_lifetime"`
	// NonceSecretFile holds the secret (at least 32 bytes) that nonces are
	// authenticated with, shared by the instances behind one load
	// balancer. Without it each instance draws its own, and a nonce is
	// good only at the instance that issued it.
	NonceSecretFile string `yaml:"nonce_secret_file"`
	// Replay configures the check that a proof is used once.
	Replay DPoPReplay `yaml:"replay"`
}

// DPoPReplay configures the replay check of DPoP proofs: a proof's jti is
// accepted once within the proof window, across all instances when Redis
// is configured, per instance otherwise.
type DPoPReplay struct {
	// FailOpenWithoutRedis, when Redis cannot be asked, checks a proof's
	// jti against this instance's memory only, instead of refusing the
	// proof. Default false: the check fails closed.
	FailOpenWithoutRedis bool `yaml:"fail_open_without_redis"`
	// MaxEntries bounds the jtis held in memory; zero means
	// DefaultDPoPReplayEntries. When it is reached, new proofs are refused
	// until the oldest expire.
	MaxEntries int `yaml:"max_entries"`
	// RedisTimeout bounds the replay check in Redis; zero means
	// DefaultRedisTimeout.
	RedisTimeout time.Duration `yaml:"redis_timeout"`
}

// Validate returns the problems of the settings, each naming its field.
func (d *DPoP) Validate() []FieldError {
	var errs []FieldError
	add := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	checkAlgorithms(d.Algorithms, "a proof must be signed by the private key of its jwk", add)
	if d.MaxAge != nil && (*d.MaxAge <= 0 || *d.MaxAge > maxLeeway) {
		add("max_age", "must be more than 0s and at most %v", maxLeeway)
	}
	if d.Leeway != nil && (*d.Leeway < 0 || *d.Leeway > maxLeeway) {
		add("leeway", "must be between 0s and %v", maxLeeway)
	}
	if d.NonceLifetime < 0 {
		add("nonce_lifetime", "must not be negative")
	}
	if d.NonceSecretFile != "" && !d.UseNonce {
		add("nonce_secret_file", "is used only with use_dpop_nonce: true")
	}
	if d.Replay.MaxEntries < 0 {
		add("replay.max_entries", "must not be negative")
	}
	if d.Replay.RedisTimeout < 0 {
		add("replay.redis_timeout", "must not be negative")
	}
	return errs
}

// DPoPError is a DPoPVerifier's refusal of a proof, with what the answer's
// challenge needs.
type DPoPError struct {
	// Reason is ReasonDPoPProofInvalid, ReasonDPoPNonceRequired or
	// ReasonDPoPReplayUnavailable.
	Reason Reason
	// Description is safe to show the caller: it never contains the proof
	// or the token.
	Description string
	// Nonce, with ReasonDPoPNonceRequired, is the nonce to send in the
	// DPoP-Nonce header.
	Nonce string
	Err   error // the cause, for logs; may be nil
}

func (e *DPoPError) Error() string {
	msg := string(e.Reason) + ": " + e.Description
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *DPoPError) Unwrap() error { return e.Err }

// Status is the HTTP status of the answer: 503 when the replay check could
// not be made (the proof may be fine: retry with a new one), else 401.
func (e *DPoPError) Status() int {
	if e.Reason == ReasonDPoPReplayUnavailable {
		return http.StatusServiceUnavailable
	}
	return http.StatusUnauthorized
}

// Code is the error of the WWW-Authenticate challenge (RFC 9449 §12.2):
// "use_dpop_nonce" or "invalid_dpop_proof", or "" for a 503.
func (e *DPoPError) Code() string {
	switch e.Reason {
	case ReasonDPoPNonceRequired:
		return "use_dpop_nonce"
	case ReasonDPoPReplayUnavailable:
		return ""
	}
	return "invalid_dpop_proof"
}

func proofInvalid(desc string, err error) *DPoPError {
	return &DPoPError{Reason: ReasonDPoPProofInvalid, Description: desc, Err: err}
}

// DPoPCheck is the request that a proof must be for.
type DPoPCheck struct {
	// Method is the request's method, compared case-sensitively with htm.
	Method string
	// HTU is the request's URI as dpopHTU builds it from the request's
	// scheme, host and path.
	HTU string
	// AccessToken is the token the request carries, that ath must hash.
	AccessToken string
	// JKT is the token's cnf.jkt, the thumbprint of the key it is bound
	// to: a proof by another key is refused before its jti is recorded.
	// It is required, so that no caller can forget the comparison: a
	// token without one is not a DPoP-bound token.
	JKT string
}

// DPoPVerifier verifies DPoP proofs and remembers their jtis. It is safe
// for concurrent use.
type DPoPVerifier struct {
	algs     []string
	maxAge   time.Duration
	leeway   time.Duration
	parser   *jwt.Parser
	nonces   *dpopNonces // nil without use_dpop_nonce
	replay   replayStore
	fallback replayStore // with fail_open_without_redis; else nil
}

// NewDPoPVerifier returns a verifier with the settings d, which must be
// valid. With a Redis client, jtis are recorded in Redis, shared by every
// instance; without, in this instance's memory.
func NewDPoPVerifier(d DPoP, client redis.UniversalClient) (*DPoPVerifier, error) {
	if errs := d.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("dpop: %w", errs[0])
	}
	v := &DPoPVerifier{
		algs:   d.Algorithms,
		maxAge: DefaultDPoPMaxAge,
		leeway: DefaultDPoPLeeway,
	}
	if len(v.algs) == 0 {
		v.algs = defaultDPoPAlgorithms
	}
	if d.MaxAge != nil {
		v.maxAge = *d.MaxAge
	}
	if d.Leeway != nil {
		v.leeway = *d.Leeway
	}
	v.parser = jwt.NewParser(jwt.WithValidMethods(v.algs), jwt.WithoutClaimsValidation(), jwt.WithStrictDecoding())
	if d.UseNonce {
		var secret []byte
		if d.NonceSecretFile != "" {
			b, err := os.ReadFile(d.NonceSecretFile)
			if err != nil {
				return nil, fmt.Errorf("dpop: nonce_secret_file: %w", err)
			}
			if secret = []byte(strings.TrimSpace(string(b))); len(secret) < 32 {
				return nil, fmt.Errorf("dpop: nonce_secret_file: %s holds %d bytes, fewer than 32", d.NonceSecretFile, len(secret))
			}
		}
		lifetime := d.NonceLifetime
		if lifetime == 0 {
			lifetime = DefaultDPoPNonceLifetime
		}
		n, err := newDPoPNonces(secret, lifetime, v.leeway)
		if err != nil {
			return nil, fmt.Errorf("dpop: %w", err)
		}
		v.nonces = n
	}
	entries := d.Replay.MaxEntries
	if entries == 0 {
		entries = DefaultDPoPReplayEntries
	}
	if client != nil {
		timeout := d.Replay.RedisTimeout
		if timeout == 0 {
			timeout = DefaultRedisTimeout
		}
		v.replay = &redisReplay{client: client, timeout: timeout}
		if d.Replay.FailOpenWithoutRedis {
			v.fallback = newMemoryReplay(entries)
		}
	} else {
		v.replay = newMemoryReplay(entries)
	}
	return v, nil
}

// Nonce returns a fresh nonce to send in a DPoP-Nonce header, or "" when
// the verifier does not use nonces.
func (v *DPoPVerifier) Nonce(now time.Time) string {
	if v.nonces == nil {
		return ""
	}
	return v.nonces.issue(now)
}

// dpopClaims are the claims of a proof (RFC 9449 §4.2).
type dpopClaims struct {
	jwt.RegisteredClaims
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	ATH   string `json:"ath"`
	Nonce string `json:"nonce"`
}

// privateJWKMembers are the JWK members that hold private or secret key
// material (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2): a proof's jwk
// must have none.
var privateJWKMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}

// Verify verifies the DPoP proof, the value of the request's single DPoP
// header, for the request c, at now, as RFC 9449 §4.3 lists, and records
// its jti. It returns the RFC 7638 SHA-256 thumbprint of the proof's key,
// base64url-encoded, which is c.JKT. Every refusal is a *DPoPError. Call it
// once the access token is verified, so that proofs sent with tokens that
// are not good fill no replay store.
func (v *DPoPVerifier) Verify(ctx context.Context, proof string, c DPoPCheck, now time.Time) (jkt string, err error) {
	switch {
	case proof == "":
		return "", proofInvalid("the request has no DPoP proof", nil)
	case strings.IndexByte(proof, ',') >= 0:
		return "", proofInvalid("the request has more than one DPoP proof", nil)
	case len(proof) > maxDPoPProof:
		return "", proofInvalid("the DPoP proof is too large", nil)
	case c.AccessToken == "":
		// At a resource server a proof always goes with a token (§7.1).
		return "", proofInvalid("the DPoP proof comes without an access token", nil)
	case c.JKT == "":
		return "", proofInvalid("the access token is not bound to a DPoP key (cnf.jkt)", nil)
	}
	var claims dpopClaims
	var keyErr *DPoPError
	_, err = v.parser.ParseWithClaims(proof, &claims, func(t *jwt.Token) (any, error) {
		key, thumb, err := proofKey(t)
		if err != nil {
			keyErr = err
			return nil, err
		}
		jkt = thumb
		return key, nil
	})
	if keyErr != nil {
		return "", keyErr
	}
	if err != nil {
		switch {
		case errors.Is(err, jwt.ErrTokenMalformed):
			return "", proofInvalid("the DPoP proof is not a well-formed JWT", err)
		case jkt != "":
			// The key was read and fits the alg: the signature is not its.
			return "", proofInvalid("the DPoP proof's signature is not by its jwk", err)
		}
		return "", proofInvalid("the DPoP proof's alg is not one of "+strings.Join(v.algs, " "), err)
	}
	if claims.HTM == "" || claims.HTM != c.Method {
		return "", proofInvalid("the DPoP proof's htm is not the request's method", nil)
	}
	if htu, err := normalizeHTU(claims.HTU); err != nil || htu != c.HTU {
		return "", proofInvalid("the DPoP proof's htu is not the request's URI", err)
	}
	if claims.IssuedAt == nil {
		return "", proofInvalid("the DPoP proof has no iat", nil)
	}
	switch iat := claims.IssuedAt.Time; {
	case iat.After(now.Add(v.leeway)):
		return "", proofInvalid("the DPoP proof's iat is in the future", nil)
	case now.Sub(iat) > v.maxAge:
		return "", proofInvalid(fmt.Sprintf("the DPoP proof is older than %v", v.maxAge), nil)
	}
	if claims.ID == "" {
		return "", proofInvalid("the DPoP proof has no jti", nil)
	}
	ath := TokenKey(c.AccessToken)
	want := base64.RawURLEncoding.EncodeToString(ath[:])
	if subtle.ConstantTimeCompare([]byte(claims.ATH), []byte(want)) != 1 {
		return "", proofInvalid("the DPoP proof's ath is not the hash of the access token", nil)
	}
	if subtle.ConstantTimeCompare([]byte(jkt), []byte(c.JKT)) != 1 {
		return "", proofInvalid("the DPoP proof's key is not the one the token is bound to (cnf.jkt)", nil)
	}
	if v.nonces != nil && !v.nonces.valid(claims.Nonce, now) {
		desc := "the DPoP proof must carry the nonce of the DPoP-Nonce header"
		if claims.Nonce != "" {
			desc = "the DPoP proof's nonce is not a current one"
		}
		return "", &DPoPError{Reason: ReasonDPoPNonceRequired, Description: desc, Nonce: v.nonces.issue(now)}
	}
	if err := v.firstUse(ctx, replayKey(jkt, claims.ID), now); err != nil {
		return "", err
	}
	return jkt, nil
}

// proofKey returns the public key of the proof t's jwk header, once it has
// checked the header, and the key's thumbprint.
func proofKey(t *jwt.Token) (any, string, *DPoPError) {
	if typ, _ := t.Header["typ"].(string); mediaType(typ) != "dpop+jwt" {
		return nil, "", proofInvalid(`the DPoP proof's typ is not "dpop+jwt"`, nil)
	}
	if _, ok := t.Header["crit"]; ok {
		return nil, "", proofInvalid("the DPoP proof has critical header parameters", nil)
	}
	m, ok := t.Header["jwk"].(map[string]any)
	if !ok {
		return nil, "", proofInvalid("the DPoP proof has no jwk header", nil)
	}
	for _, name := range privateJWKMembers {
		if _, ok := m[name]; ok {
			return nil, "", proofInvalid("the DPoP proof's jwk holds private key material", nil)
		}
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, "", proofInvalid("the DPoP proof's jwk is not a key", err)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return nil, "", proofInvalid("the DPoP proof's jwk is not a key", err)
	}
	if !jwk.IsPublic() {
		return nil, "", proofInvalid("the DPoP proof's jwk is not a public key", nil)
	}
	alg, _ := t.Header["alg"].(string)
	// As for an issuer's keys, a key that names its alg or use is good
	// only for those.
	if !keyFits(jwk.Key, alg) || jwk.Algorithm != "" && jwk.Algorithm != alg || jwk.Use != "" && jwk.Use != "sig" {
		return nil, "", proofInvalid("the DPoP proof's jwk is not a key for its alg", nil)
	}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, "", proofInvalid("the DPoP proof's jwk has no thumbprint", err)
	}
	return jwk.Key, base64.RawURLEncoding.EncodeToString(thumb), nil
}

// firstUse records the proof whose replay key is key, refusing it when it
// was recorded before.
func (v *DPoPVerifier) firstUse(ctx context.Context, key [32]byte, now time.Time) error {
	// A proof is accepted from leeway before its iat to maxAge after it:
	// its jti must be remembered that long.
	ttl := v.maxAge + v.leeway
	first, err := v.replay.firstUse(ctx, key, ttl, now)
	if err != nil && v.fallback != nil {
		first, err = v.fallback.firstUse(ctx, key, ttl, now)
	}
	if err != nil {
		return &DPoPError{Reason: ReasonDPoPReplayUnavailable, Description: "the DPoP proof's jti could not be checked for replay", Err: err}
	}
	if !first {
		return proofInvalid("the DPoP proof was used before (jti)", nil)
	}
	return nil
}

// Challenge returns the WWW-Authenticate value of a DPoP challenge
// (RFC 9449 §7.1): the scheme with the accepted algs, and, when code is
// set, the error ("invalid_dpop_proof", "use_dpop_nonce", or a token's
// "invalid_token") and its description. realm is left out when empty.
func (v *DPoPVerifier) Challenge(realm, code, description string) string {
	var b strings.Builder
	b.WriteString("DPoP ")
	if realm != "" {
		b.WriteString(`realm="`)
		b.WriteString(quote(realm))
		b.WriteString(`", `)
	}
	b.WriteString(`algs="`)
	b.WriteString(strings.Join(v.algs, " "))
	b.WriteByte('"')
	if code != "" {
		b.WriteString(`, error="`)
		b.WriteString(quote(code))
		b.WriteString(`", error_description="`)
		b.WriteString(quote(description))
		b.WriteByte('"')
	}
	return b.String()
}
