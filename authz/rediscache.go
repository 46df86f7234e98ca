package authz

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis configures the Redis tier of the token cache, shared by every
// scopegate instance. One address is a standalone server, several are the
// seeds of a Cluster, and a master name makes them Sentinels.
type Redis struct {
	Addrs []string `yaml:"addrs"` // host:port
	// MasterName is the Sentinel master name; Addrs are then the Sentinels.
	MasterName string `yaml:"master_name"`
	// Cluster treats a single address as a Cluster seed, for a cluster
	// behind one configuration endpoint.
	Cluster  bool   `yaml:"cluster"`
	Username string `yaml:"username"`
	// The password is read from a file or from an environment variable,
	// never from the configuration itself.
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	DB           int    `yaml:"db"` // standalone and Sentinel only
	// Timeout bounds every Redis call, so that a slow Redis delays a check
	// by at most this much before the provider is asked instead; default
	// DefaultRedisTimeout.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultRedisTimeout is the Timeout of a Redis configuration that sets
// none.
const DefaultRedisTimeout = 50 * time.Millisecond

func (c *Redis) cluster() bool {
	return c.MasterName == "" && (c.Cluster || len(c.Addrs) > 1)
}

// Validate reports every problem of c, with fields named as in YAML
// relative to the redis block.
func (c *Redis) Validate() []FieldError {
	var errs []FieldError
	if len(c.Addrs) == 0 {
		errs = append(errs, FieldError{Field: "addrs", Msg: "at least one host:port address is required"})
	}
	for i, a := range c.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, FieldError{Field: fmt.Sprintf("addrs[%d]", i), Msg: fmt.Sprintf("%q is not a host:port address", a)})
		}
	}
	if c.MasterName != "" && c.Cluster {
		errs = append(errs, FieldError{Field: "cluster", Msg: "a Cluster has no Sentinel master: set cluster or master_name, not both"})
	}
	if c.PasswordFile != "" && c.PasswordEnv != "" {
		errs = append(errs, FieldError{Field: "password_file", Msg: "set password_file or password_env, not both"})
	}
	switch {
	case c.DB < 0:
		errs = append(errs, FieldError{Field: "db", Msg: "must not be negative"})
	case c.DB != 0 && c.cluster():
		errs = append(errs, FieldError{Field: "db", Msg: "a Redis Cluster has only database 0"})
	}
	if c.Timeout < 0 {
		errs = append(errs, FieldError{Field: "timeout", Msg: "must not be negative"})
	}
	return errs
}

// NewClient returns a client for c, reading its password. It does not
// connect: go-redis dials on first use and again whenever a connection
// breaks.
func (c *Redis) NewClient() (redis.UniversalClient, error) {
	password, err := readSecret(c.PasswordFile, c.PasswordEnv)
	if err != nil {
		return nil, fmt.Errorf("redis password: %w", err)
	}
	timeout := cmp.Or(c.Timeout, DefaultRedisTimeout)
	return redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:         c.Addrs,
		MasterName:    c.MasterName,
		IsClusterMode: c.Cluster,
		Username:      c.Username,
		Password:      password,
		DB:            c.DB,
		DialTimeout:   timeout,
		ReadTimeout:   timeout,
		WriteTimeout:  timeout,
		PoolTimeout:   timeout,
		// Every call is bounded by its context; a retry would spend that
		// budget on a server that just failed, when the provider can be
		// asked instead.
		ContextTimeoutEnabled: true,
		MaxRetries:            -1,
		DialerRetries:         1,
	}), nil
}

// readSecret returns the secret held in file, or else in the environment
// variable env; none when both are empty. Its errors name where it looked,
// never what it found.
func readSecret(file, env string) (string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		s := strings.TrimSpace(string(b))
		if s == "" {
			return "", fmt.Errorf("%s is empty", file)
		}
		return s, nil
	case env != "":
		s := os.Getenv(env)
		if s == "" {
			return "", fmt.Errorf("environment variable %s is not set", env)
		}
		return s, nil
	}
	return "", nil
}

// RedisKeyPrefix begins the Redis key of every cached token. The key goes
// on with the namespace of the provider that answered, a colon, and the hex
// SHA-256 of the token: a token itself is never written to Redis. An
// Introspector's namespace is the first 16 hex digits of the SHA-256 of its
// endpoint, a newline and its client_id, so that instances asking other
// providers (staging and production, say) never read each other's answers
// from one Redis.
const RedisKeyPrefix = "scopegate:tok:"

// providerNamespace is the namespace of the Redis keys of the answers that
// the endpoint gives client. An endpoint, a URL, holds no newline, so that
// no other pair has the same hashed string.
func providerNamespace(endpoint, client string) string {
	h := sha256.Sum256([]byte(endpoint + "\n" + client))
	return hex.EncodeToString(h[:8])
}

// RedisCache is the TokenCache tier in Redis, shared by every scopegate
// instance. Each value is a compact binary record of the claims (see
// appendCachedToken) followed by its HMAC-SHA256, and Redis expires it when
// the answer goes stale. The MAC covers the key too: without the secret,
// one who can write to Redis can neither forge an answer nor move a token's
// answer to another token's key. A value whose MAC is not that of a key in
// use is a miss, not an error: another instance may have written it with
// another client secret, mid-rotation, and the provider is asked instead.
type RedisCache struct {
	client    redis.UniversalClient
	timeout   time.Duration
	namespace string
	keys      func() recordKeys
}

// NewRedisCache returns a RedisCache on client whose keys are in namespace
// and whose records are authenticated with secret. An Introspector's
// namespace is that of its provider and client, and its secret is derived
// from the client secret in use, following its rotations. Every call is
// bounded by timeout, or DefaultRedisTimeout when timeout is not positive.
func NewRedisCache(client redis.UniversalClient, namespace string, secret []byte, timeout time.Duration) *RedisCache {
	keys := recordKeys{current: secret}
	return newRedisCache(client, namespace, func() recordKeys { return keys }, timeout)
}

// newRedisCache returns a RedisCache whose records' MACs are under the
// keys that keys returns at each call.
func newRedisCache(client redis.UniversalClient, namespace string, keys func() recordKeys, timeout time.Duration) *RedisCache {
	if timeout <= 0 {
		timeout = DefaultRedisTimeout
	}
	return &RedisCache{client: client, timeout: timeout, namespace: namespace, keys: keys}
}

func (r *RedisCache) key(key [32]byte) string {
	return RedisKeyPrefix + r.namespace + ":" + hex.EncodeToString(key[:])
}

// mac appends to b the MAC under secret of the record rec stored under the
// Redis key k. The key's length goes first, so that no other key and
// record run together into the same bytes.
func mac(secret, b []byte, k, rec string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(binary.AppendUvarint(nil, uint64(len(k))))
	m.Write([]byte(k))
	m.Write([]byte(rec))
	return m.Sum(b)
}

// Get returns the fresh entry for key, if any.
func (r *RedisCache) Get(ctx context.Context, key [32]byte) (CachedToken, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	k := r.key(key)
	v, err := r.client.Get(ctx, k).Result()
	if err == redis.Nil {
		return CachedToken{}, false, nil
	}
	if err != nil {
		return CachedToken{}, false, fmt.Errorf("token cache: redis GET: %w", err)
	}
	if len(v) < sha256.Size {
		return CachedToken{}, false, nil
	}
	rec, sum := v[:len(v)-sha256.Size], v[len(v)-sha256.Size:]
	keys := r.keys()
	// A record under the previous key was written before the rotation, or
	// by an instance that has not read it yet, or forged with a leaked
	// secret: it is taken only if it goes stale by the end of the grace,
	// so that none outlives it here or in the memory tier.
	var graceEnd time.Time
	switch {
	case hmac.Equal(mac(keys.current, nil, k, rec), []byte(sum)):
	case keys.previous != nil && hmac.Equal(mac(keys.previous, nil, k, rec), []byte(sum)):
		graceEnd = keys.graceEnd
	default:
		return CachedToken{}, false, nil
	}
	if rec == "" || rec[0] != cachedTokenVersion {
		// Another release's record, under a secret both hold.
		return CachedToken{}, false, nil
	}
	t, err := parseCachedToken(rec)
	if err != nil {
		return CachedToken{}, false, fmt.Errorf("token cache: redis value: %w", err)
	}
	// Until was set by whichever instance asked the provider; its clock
	// may run behind this one.
	if !time.Now().Before(t.Until) || !graceEnd.IsZero() && t.Until.After(graceEnd) {
		return CachedToken{}, false, nil
	}
	return t, true, nil
}

// Set stores t under key until t.Until.
func (r *RedisCache) Set(ctx context.Context, key [32]byte, t CachedToken) error {
	ttl := time.Until(t.Until)
	if ttl <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	k := r.key(key)
	rec := appendCachedToken(nil, t)
	if err := r.client.Set(ctx, k, mac(r.keys().current, rec, k, string(rec)), ttl).Err(); err != nil {
		return fmt.Errorf("token cache: redis SET: %w", err)
	}
	return nil
}

// cachedTokenVersion is the first byte of a cached token's record. A new
// encoding takes a new version, so that instances of two releases sharing
// one Redis during a rollout read each other's records as misses.
const cachedTokenVersion = 2

// appendCachedToken appends the record of t to b:
//
//	version  byte, cachedTokenVersion
//	until    varint, Unix milliseconds
//	active   byte, 0 or 1; the claims follow only when it is 1:
//	iss, sub, client_id        string
//	aud, scopes                uvarint count, then as many strings
//	exp, iat                   varint Unix seconds, 0 when absent
//	extra                      uvarint count, then as many name, value strings
//	cnf methods                byte, the ConfirmationMethods
//	cnf x5t#S256               32 bytes, with ConfirmCertificate only
//	cnf jkt                    32 bytes, with ConfirmDPoPKey only
//
// where a string is its uvarint length followed by its bytes.
func appendCachedToken(b []byte, t CachedToken) []byte {
	b = append(b, cachedTokenVersion)
	b = binary.AppendVarint(b, t.Until.UnixMilli())
	c := t.Claims
	if c == nil {
		return append(b, 0)
	}
	b = append(b, 1)
	b = appendString(b, c.Issuer)
	b = appendString(b, c.Subject)
	b = appendString(b, c.ClientID)
	b = appendStrings(b, c.Audience)
	b = appendStrings(b, c.Scopes)
	b = binary.AppendVarint(b, unixSeconds(c.Expiry))
	b = binary.AppendVarint(b, unixSeconds(c.IssuedAt))
	b = binary.AppendUvarint(b, uint64(len(c.Extra)))
	for k, v := range c.Extra {
		b = appendString(b, k)
		b = appendString(b, v)
	}
	cnf := &c.Confirmation
	b = append(b, byte(cnf.Methods))
	if cnf.Methods&ConfirmCertificate != 0 {
		b = append(b, cnf.CertificateSHA256[:]...)
	}
	if cnf.Methods&ConfirmDPoPKey != 0 {
		b = append(b, cnf.KeyThumbprint[:]...)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendStrings(b []byte, ss []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

func unixSeconds(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func fromUnixSeconds(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0)
}

var errBadRecord = errors.New("not a cached token record")

// parseCachedToken decodes a record made by appendCachedToken. The claims'
// strings share the memory of s rather than copying it.
func parseCachedToken(s string) (CachedToken, error) {
	r := record{s: s}
	if r.byte() != cachedTokenVersion {
		return CachedToken{}, fmt.Errorf("%w: unknown version", errBadRecord)
	}
	t := CachedToken{Until: time.UnixMilli(r.varint())}
	if r.byte() == 1 {
		c := &Claims{
			Issuer:   r.string(),
			Subject:  r.string(),
			ClientID: r.string(),
			Audience: r.strings(),
			Scopes:   r.strings(),
			Expiry:   fromUnixSeconds(r.varint()),
			IssuedAt: fromUnixSeconds(r.varint()),
		}
		if n := r.count(); n > 0 {
			c.Extra = make(map[string]string, n)
			for range n {
				k := r.string()
				c.Extra[k] = r.string()
			}
		}
		cnf := &c.Confirmation
		cnf.Methods = ConfirmationMethods(r.byte())
		if cnf.Methods&^(ConfirmCertificate|ConfirmDPoPKey|ConfirmUnsupported) != 0 {
			r.bad = true
		}
		if cnf.Methods&ConfirmCertificate != 0 {
			r.sum(&cnf.CertificateSHA256)
		}
		if cnf.Methods&ConfirmDPoPKey != 0 {
			r.sum(&cnf.KeyThumbprint)
		}
		t.Claims = c
	}
	if r.bad || r.s != "" {
		return CachedToken{}, errBadRecord
	}
	return t, nil
}

// record reads a record field by field. A read past the end or a malformed
// number sets bad and yields zero values from then on.
type record struct {
	s   string
	bad bool
}

func (r *record) byte() byte {
	if r.s == "" {
		r.bad = true
		return 0
	}
	c := r.s[0]
	r.s = r.s[1:]
	return c
}

// sum reads the 32 bytes of a SHA-256 into dst.
func (r *record) sum(dst *[32]byte) {
	if len(r.s) < len(dst) {
		r.bad = true
		return
	}
	copy(dst[:], r.s)
	r.s = r.s[len(dst):]
}

func (r *record) uvarint() uint64 {
	var x uint64
	for shift := uint(0); shift < 64; shift += 7 {
		c := r.byte()
		if r.bad {
			return 0
		}
		x |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return x
		}
	}
	r.bad = true
	return 0
}

func (r *record) varint() int64 {
	u := r.uvarint()
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

// count reads a count of items that are at least one byte each, so that a
// corrupt count cannot make a huge allocation.
func (r *record) count() int {
	n := r.uvarint()
	if n > uint64(len(r.s)) {
		r.bad = true
		return 0
	}
	return int(n)
}

func (r *record) string() string {
	n := r.count()
	s := r.s[:n]
	r.s = r.s[n:]
	return s
}

func (r *record) strings() []string {
	n := r.count()
	if n == 0 {
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = r.string()
	}
	return ss
}
