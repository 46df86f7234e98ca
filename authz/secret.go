package authz

import (
	"crypto/hkdf"
	"crypto/sha256"
	"log/slog"
	"os"
	"sync"
	"time"
)

// secretCheckInterval bounds how often a secret file is looked at again.
const secretCheckInterval = time.Second

// clientSecret is the introspection client secret in use, and the keys of
// the Redis records' MACs derived from it. A secret read from a file is
// read again when the file changes, so that a rotated secret (a Kubernetes
// Secret mount, say) is used without a restart, for the provider and for
// the records alike; a file that becomes unreadable or empty keeps the last
// good secret in use. A secret from the environment never changes.
type clientSecret struct {
	path string // empty for a secret from the environment
	log  *slog.Logger
	now  func() time.Time // the clock of rotations; tests set it

	mu            sync.Mutex
	value         string
	key, previous []byte    // of the records' MACs: see recordKeys
	rotated       time.Time // when value replaced the secret of previous
	mod           time.Time
	size          int64
	checked       time.Time
}

// recordKeys are the keys of the Redis records' MACs: current, derived from
// the secret in use, and during a rotation previous, derived from the
// secret before it, for records that go stale by graceEnd.
type recordKeys struct {
	current, previous []byte
	graceEnd          time.Time
}

// newClientSecret reads the secret held in file, or else in the
// environment variable env.
func newClientSecret(file, env string, log *slog.Logger) (*clientSecret, error) {
	s := &clientSecret{path: file, log: log, now: time.Now}
	v, err := readSecret(file, env)
	if err != nil {
		return nil, err
	}
	if s.key, err = recordKey(v); err != nil {
		return nil, err
	}
	s.value = v
	if file != "" {
		if fi, err := os.Stat(file); err == nil {
			s.mod, s.size = fi.ModTime(), fi.Size()
		}
	}
	s.checked = s.now()
	return s, nil
}

// recordKey derives the key of the Redis records' MACs from the client
// secret, which every instance asking the same provider as the same client
// holds, and Redis never sees.
func recordKey(clientSecret string) ([]byte, error) {
	return hkdf.Key(sha256.New, []byte(clientSecret), nil, "scopegate token cache record", sha256.Size)
}

// get returns the secret in use.
func (s *clientSecret) get() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh()
	return s.value
}

// recordKeys returns the keys of the records' MACs for the secret in use.
// The previous key is returned for grace after the rotation was read: the
// longest that a record written before it lives, and as long as one who
// holds the previous, perhaps leaked, secret can forge a record.
func (s *clientSecret) recordKeys(grace time.Duration) recordKeys {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh()
	keys := recordKeys{current: s.key}
	if end := s.rotated.Add(grace); s.previous != nil && s.now().Before(end) {
		keys.previous, keys.graceEnd = s.previous, end
	}
	return keys
}

// refresh reads the file again if it changed since it was last looked at,
// at most once every secretCheckInterval. A new secret makes the key of the
// one in use the previous key.
func (s *clientSecret) refresh() {
	if s.path == "" {
		return
	}
	now := s.now()
	if now.Sub(s.checked) < secretCheckInterval {
		return
	}
	s.checked = now
	fi, err := os.Stat(s.path)
	if err != nil || (fi.ModTime().Equal(s.mod) && fi.Size() == s.size) {
		return
	}
	v, err := readSecret(s.path, "")
	var key []byte
	if err == nil && v != s.value {
		key, err = recordKey(v)
	}
	if err != nil {
		s.log.Warn("introspection: the client secret file changed but cannot be used; keeping the last good secret", "file", s.path, "err", err)
		return
	}
	s.mod, s.size = fi.ModTime(), fi.Size()
	if v == s.value {
		return
	}
	s.value, s.key, s.previous, s.rotated = v, key, s.key, now
	s.log.Info("introspection: read the rotated client secret; Redis records under the previous one are accepted for at most the cache's max_ttl", "file", s.path)
}

// CheckSecrets reads the secrets that NewIntrospector reads for c, the
// client secret and, when answers are cached in Redis, the Redis password,
// and reports each that cannot be read, with fields named as in YAML
// relative to the introspection block. It keeps nothing and contacts
// nothing, so that a configuration can be checked before it is served.
func (c *Introspection) CheckSecrets() []FieldError {
	var errs []FieldError
	check := func(fileField, file, envField, env string) {
		if _, err := readSecret(file, env); err != nil {
			field := fileField
			if file == "" {
				field = envField
			}
			errs = append(errs, FieldError{Field: field, Msg: err.Error()})
		}
	}
	check("client_secret_file", c.ClientSecretFile, "client_secret_env", c.ClientSecretEnv)
	if r := c.Cache.Redis; r != nil && (c.Cache.MaxTTL == nil || *c.Cache.MaxTTL != 0) {
		check("cache.redis.password_file", r.PasswordFile, "cache.redis.password_env", r.PasswordEnv)
	}
	return errs
}
