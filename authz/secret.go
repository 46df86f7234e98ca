package authz

import (
	"log/slog"
	"os"
	"sync"
	"time"
)

// secretCheckInterval bounds how often a secret file is looked at again.
const secretCheckInterval = time.Second

// fileSecret is a secret read from a file and read again when the file
// changes, so that a rotated secret (a Kubernetes Secret mount, say) is
// used without a restart. A file that becomes unreadable or empty keeps
// the last good secret in use.
type fileSecret struct {
	path string
	log  *slog.Logger

	mu      sync.Mutex
	value   string
	mod     time.Time
	size    int64
	checked time.Time
}

func newFileSecret(path string, log *slog.Logger) (*fileSecret, error) {
	s := &fileSecret{path: path, log: log}
	v, err := readSecret(path, "")
	if err != nil {
		return nil, err
	}
	s.value = v
	if fi, err := os.Stat(path); err == nil {
		s.mod, s.size = fi.ModTime(), fi.Size()
	}
	s.checked = time.Now()
	return s, nil
}

// get returns the secret, reading the file again if it changed since it
// was last looked at, at most once every secretCheckInterval.
func (s *fileSecret) get() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if now.Sub(s.checked) < secretCheckInterval {
		return s.value
	}
	s.checked = now
	fi, err := os.Stat(s.path)
	if err != nil || (fi.ModTime().Equal(s.mod) && fi.Size() == s.size) {
		return s.value
	}
	v, err := readSecret(s.path, "")
	if err != nil {
		s.log.Warn("introspection: the client secret file changed but cannot be used; keeping the last good secret", "file", s.path, "err", err)
		return s.value
	}
	s.value, s.mod, s.size = v, fi.ModTime(), fi.Size()
	s.log.Info("introspection: read the rotated client secret", "file", s.path)
	return s.value
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
