// Package config reads scopegate's configuration file. It is neither the
// domain nor an adapter: it gathers the settings of every package from one
// strict YAML file and reports every problem at once with file, line and
// field.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scopegate/scopegate/authz"
	"github.com/scopegate/scopegate/internal/tlsfiles"
	"github.com/scopegate/scopegate/internal/yamlfile"
	"github.com/scopegate/scopegate/policy"
)

// Config is the whole configuration file.
type Config struct {
	Listen  Listen         `yaml:"listen"`
	Issuers []authz.Issuer `yaml:"issuers"`
	// Introspection, when set, checks opaque tokens (and the JWTs of
	// issuers marked introspect_jwts) with RFC 7662 introspection.
	Introspection *authz.Introspection `yaml:"introspection"`
	// DPoP, when set, accepts DPoP-bound tokens sent with the DPoP scheme
	// and their proofs (RFC 9449). Proof jtis are remembered in the
	// introspection cache's Redis when one is configured, else in this
	// instance's memory.
	DPoP   *authz.DPoP `yaml:"dpop"`
	Policy struct {
		File string `yaml:"file"` // relative to the config file's folder
	} `yaml:"policy"`
	// Realm is the realm of RFC 6750 challenges.
	Realm        string            `yaml:"realm"`
	MaxTokenSize int               `yaml:"max_token_size"`
	Headers      authz.HeaderNames `yaml:"headers"`
	JWKS         JWKS              `yaml:"jwks"`
	// TokenCacheSize bounds the verified-token cache; negative disables it.
	TokenCacheSize int `yaml:"token_cache_size"`
	// TLS, when set, serves the ext_authz listeners (gRPC and HTTP) over
	// TLS, and over mutual TLS with a client CA. Paths are relative to the
	// config file's folder.
	TLS   *tlsfiles.Files `yaml:"tls"`
	Audit Audit           `yaml:"audit"`
	// CAFile, when set, is a PEM bundle of the CAs that calls to identity
	// providers (keys, discovery, introspection) trust instead of the
	// system's; relative to the config file's folder.
	CAFile string `yaml:"ca_file"`

	// File is the path the configuration was read from.
	File string         `yaml:"-"`
	src  *yamlfile.File // locates the fields, for errors found after parsing
}

// Listen holds the listener addresses.
type Listen struct {
	GRPC  string `yaml:"grpc"`  // ext_authz for Envoy; default 127.0.0.1:9001
	Admin string `yaml:"admin"` // /healthz, /readyz, /metrics; default 127.0.0.1:9002
	// HTTP, when set, serves the same decisions over HTTP, for Envoy's
	// http_service, nginx's auth_request and Traefik's forwardAuth.
	HTTP string `yaml:"http"`
	// HTTPCheckTimeout bounds each check of the HTTP listener, to which
	// proxies send no deadline; keep it below the proxies' own timeouts.
	// Zero means envoy.DefaultHTTPCheckTimeout, 200ms.
	HTTPCheckTimeout time.Duration `yaml:"http_check_timeout"`
	// TrustedProxies lists the addresses, CIDRs or single IPs, of the
	// proxies whose word on the client the HTTP listener believes: its
	// certificate headers (x-forwarded-client-cert, Client-Cert,
	// Ssl-Client-Cert), X-Forwarded-Proto and X-Forwarded-For. Those of
	// any other peer are ignored, since a caller can send them.
	TrustedProxies []string `yaml:"trusted_proxies"`

	trusted []netip.Prefix // TrustedProxies, parsed by validate
}

// TrustedProxyPrefixes returns the trusted proxies' addresses.
func (l *Listen) TrustedProxyPrefixes() []netip.Prefix { return l.trusted }

// Audit configures the audit log: one JSON line per decision.
type Audit struct {
	// Enabled turns the audit log off when false; nil means on.
	Enabled *bool `yaml:"enabled"`
	// Output is stdout (the default), stderr, or a file to append to,
	// relative to the config file's folder.
	Output string `yaml:"output"`
	// AllowSampleRate is the fraction of allows logged, from 0 to 1; nil
	// means 1. Denies are always logged.
	AllowSampleRate *float64 `yaml:"allow_sample_rate"`
}

// On reports whether the audit log is written.
func (a *Audit) On() bool { return a.Enabled == nil || *a.Enabled }

// SampleRate returns the fraction of allows logged.
func (a *Audit) SampleRate() float64 {
	if a.AllowSampleRate == nil {
		return 1
	}
	return *a.AllowSampleRate
}

// JWKS tunes key-set fetching for every issuer.
type JWKS struct {
	RefreshInterval time.Duration `yaml:"refresh_interval"` // default 5m
	RefetchCooldown time.Duration `yaml:"refetch_cooldown"` // default 10s
}

// DPoPRedis returns the Redis settings that DPoP proof jtis are recorded
// in: the introspection cache's, or nil for none.
func (c *Config) DPoPRedis() *authz.Redis {
	if c.Introspection == nil {
		return nil
	}
	return c.Introspection.Cache.Redis
}

// Resolution says which of the files and environment variables that a
// configuration refers to Load reads, besides the configuration itself.
type Resolution int

const (
	// Everything reads every file and environment variable that serve
	// reads: the TLS files, ca_file, the introspection client secret and
	// the Redis password.
	Everything Resolution = iota
	// Offline reads the files usually kept with the configuration, the
	// TLS files and ca_file, but no secret: for CI, where the secrets are
	// absent.
	Offline
)

// Load reads and validates the configuration file at name, reads what it
// refers to as r says, without contacting any identity provider or Redis,
// and loads the policy file it names. serve loads its configuration with
// it, and config check too, so that check passes what serve accepts and
// nothing else.
//
// Every problem is reported at once, each naming file, line and field:
// those of the configuration file (a file it names that cannot be read as
// well as a setting out of range), sorted by line, then those of the
// policy file. Only a configuration file that is not well-formed YAML
// stops at its first error, and hides the policy's.
func Load(name string, r Resolution) (*Config, *policy.Policy, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	c, f, err := parse(name, data)
	if f == nil {
		return nil, nil, err
	}
	// Validation first: it makes the paths relative to the config file.
	cfgErr := f.Err(c.validate(), c.resolve(r))
	var p *policy.Policy
	var polErr error
	if c.Policy.File != "" && !f.Failed("$.policy") {
		p, polErr = c.loadPolicy()
	}
	if err := errors.Join(cfgErr, polErr); err != nil {
		return nil, nil, err
	}
	return c, p, nil
}

// Parse decodes and validates a configuration read from name. It reads
// no file the configuration names.
func Parse(name string, data []byte) (*Config, error) {
	c, f, err := parse(name, data)
	if f == nil {
		return nil, err
	}
	if err := f.Err(c.validate()); err != nil {
		return nil, err
	}
	return c, nil
}

// parse decodes data. The File is nil when data is not well-formed YAML;
// otherwise the Config holds every setting that decoded, to be validated.
func parse(name string, data []byte) (*Config, *yamlfile.File, error) {
	var c Config
	f, err := yamlfile.Decode(name, data, &c)
	if f == nil {
		return nil, nil, err
	}
	c.File, c.src = name, f
	return &c, f, nil
}

// resolve reads what the configuration refers to, as r says, and returns
// every problem found, naming the field that refers to it.
func (c *Config) resolve(r Resolution) yamlfile.Errors {
	var errs yamlfile.Errors
	if c.TLS != nil {
		_, err := tlsfiles.NewServer(*c.TLS, 0, slog.New(slog.DiscardHandler))
		var fes tlsfiles.Errors
		if errors.As(err, &fes) {
			for _, fe := range fes {
				errs = append(errs, c.Errorf("$.tls."+fe.Field, "%v", fe.Err))
			}
		}
	}
	if c.CAFile != "" {
		if _, err := tlsfiles.Pool(c.CAFile); err != nil {
			errs = append(errs, c.Errorf("$.ca_file", "%v", err))
		}
	}
	if r == Everything && c.Introspection != nil {
		for _, fe := range c.Introspection.CheckSecrets() {
			errs = append(errs, c.Errorf("$.introspection."+fe.Field, "%s", fe.Msg))
		}
	}
	return errs
}

// loadPolicy reads the policy file that the configuration names. When the
// file cannot be read the error names the configuration's policy.file
// field; the problems of a file that was read name the policy file's own
// lines.
func (c *Config) loadPolicy() (*policy.Policy, error) {
	p, err := policy.Load(c.Policy.File)
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		return nil, c.Errorf("$.policy.file", "%v", err)
	}
	return p, err
}

// Errorf returns an error for the field at path, a YAMLPath such as
// "$.tls.cert_file", naming the configuration file and the line of the
// field, or of its nearest parent present in the file.
func (c *Config) Errorf(path, format string, args ...any) *yamlfile.Error {
	if c.src == nil {
		return &yamlfile.Error{File: c.File, Field: strings.TrimPrefix(path, "$."), Msg: fmt.Sprintf(format, args...)}
	}
	return c.src.Errorf(path, format, args...)
}

// validate checks the settings, sets the defaults and makes the paths
// relative to the configuration file's folder.
func (c *Config) validate() yamlfile.Errors {
	f := c.src
	var errs yamlfile.Errors
	if c.Listen.GRPC == "" {
		c.Listen.GRPC = "127.0.0.1:9001"
	}
	if c.Listen.Admin == "" {
		c.Listen.Admin = "127.0.0.1:9002"
	}
	taken := map[string]string{} // address → field
	for _, l := range []struct{ field, addr string }{{"grpc", c.Listen.GRPC}, {"admin", c.Listen.Admin}, {"http", c.Listen.HTTP}} {
		if l.addr == "" {
			continue
		}
		_, port, err := net.SplitHostPort(l.addr)
		switch {
		case err != nil:
			errs = append(errs, f.Errorf("$.listen."+l.field, "%q is not a host:port address", l.addr))
		case taken[l.addr] != "" && port != "0":
			errs = append(errs, f.Errorf("$.listen."+l.field, "%s is also listen.%s", l.addr, taken[l.addr]))
		default:
			taken[l.addr] = l.field
		}
	}
	switch {
	case c.Listen.HTTPCheckTimeout < 0:
		errs = append(errs, f.Errorf("$.listen.http_check_timeout", "must not be negative"))
	case c.Listen.HTTPCheckTimeout > 0 && c.Listen.HTTP == "":
		errs = append(errs, f.Errorf("$.listen.http_check_timeout", "needs listen.http"))
	}
	if len(c.Listen.TrustedProxies) > 0 && c.Listen.HTTP == "" {
		errs = append(errs, f.Errorf("$.listen.trusted_proxies", "needs listen.http"))
	}
	c.Listen.trusted = nil
	for i, p := range c.Listen.TrustedProxies {
		prefix, err := parseProxy(p)
		if err != nil {
			errs = append(errs, f.Errorf("$.listen.trusted_proxies["+strconv.Itoa(i)+"]", "%v", err))
			continue
		}
		c.Listen.trusted = append(c.Listen.trusted, prefix)
	}
	if len(c.Issuers) == 0 && c.Introspection == nil {
		errs = append(errs, f.Errorf("$.issuers", "at least one issuer, or introspection, is required"))
	}
	seen := map[string]int{}
	for i := range c.Issuers {
		path := "$.issuers[" + strconv.Itoa(i) + "]"
		iss := &c.Issuers[i]
		if j, dup := seen[iss.Issuer]; dup && iss.Issuer != "" {
			errs = append(errs, f.Errorf(path+".issuer", "issuer %q is configured twice (also issuers[%d])", iss.Issuer, j))
		}
		seen[iss.Issuer] = i
		for _, fe := range iss.Validate() {
			errs = append(errs, f.Errorf(path+"."+fe.Field, "%s", fe.Msg))
		}
		if iss.IntrospectJWTs && c.Introspection == nil {
			errs = append(errs, f.Errorf(path+".introspect_jwts", "needs the introspection block"))
		}
	}
	if d := c.DPoP; d != nil {
		for _, fe := range d.Validate() {
			errs = append(errs, f.Errorf("$.dpop."+fe.Field, "%s", fe.Msg))
		}
		if d.NonceSecretFile != "" {
			d.NonceSecretFile = c.relative(d.NonceSecretFile)
		}
	}
	if in := c.Introspection; in != nil {
		for _, fe := range in.Validate() {
			errs = append(errs, f.Errorf("$.introspection."+fe.Field, "%s", fe.Msg))
		}
		if in.ClientSecretFile != "" {
			in.ClientSecretFile = c.relative(in.ClientSecretFile)
		}
		if r := in.Cache.Redis; r != nil && r.PasswordFile != "" {
			r.PasswordFile = c.relative(r.PasswordFile)
		}
		// Opaque tokens of a configured issuer are held to its audiences,
		// as its JWTs are, unless introspection names its own.
		needAudiences := false
		for _, iss := range c.Issuers {
			if len(in.Audiences) == 0 && in.Issuer != "" && iss.Issuer == in.Issuer {
				in.Audiences = iss.Audiences
			}
			needAudiences = needAudiences || len(iss.Audiences) > 0
		}
		if needAudiences && len(in.Audiences) == 0 {
			errs = append(errs, f.Errorf("$.introspection", "audiences is required: the issuers accept JWTs only for their audiences, and opaque tokens must not skip that check"))
		}
		// Introspected tokens must come from a trusted issuer too.
		if len(in.Issuers) == 0 && len(c.Issuers) > 0 {
			for _, iss := range c.Issuers {
				in.Issuers = append(in.Issuers, iss.Issuer)
			}
			if in.Issuer != "" && !slices.Contains(in.Issuers, in.Issuer) {
				in.Issuers = append(in.Issuers, in.Issuer)
			}
		}
	}
	if c.Policy.File == "" {
		errs = append(errs, f.Errorf("$.policy.file", "the policy file is required"))
	} else {
		c.Policy.File = c.relative(c.Policy.File)
	}
	if t := c.TLS; t != nil {
		for _, fl := range []struct {
			field string
			file  *string
		}{{"cert_file", &t.CertFile}, {"key_file", &t.KeyFile}, {"client_ca_file", &t.ClientCAFile}} {
			switch {
			case *fl.file != "":
				*fl.file = c.relative(*fl.file)
			case fl.field != "client_ca_file":
				errs = append(errs, f.Errorf("$.tls."+fl.field, "is required with tls"))
			}
		}
	}
	switch c.Audit.Output {
	case "", "stdout", "stderr":
	default:
		c.Audit.Output = c.relative(c.Audit.Output)
	}
	if r := c.Audit.AllowSampleRate; r != nil && (*r < 0 || *r > 1) {
		errs = append(errs, f.Errorf("$.audit.allow_sample_rate", "must be between 0 and 1"))
	}
	if c.CAFile != "" {
		c.CAFile = c.relative(c.CAFile)
	}
	if c.MaxTokenSize < 0 {
		errs = append(errs, f.Errorf("$.max_token_size", "must not be negative"))
	}
	if c.JWKS.RefreshInterval < 0 {
		errs = append(errs, f.Errorf("$.jwks.refresh_interval", "must not be negative"))
	}
	if c.JWKS.RefetchCooldown < 0 {
		errs = append(errs, f.Errorf("$.jwks.refetch_cooldown", "must not be negative"))
	}
	return errs
}

// parseProxy reads a trusted proxy's address: a CIDR, or one IP.
func parseProxy(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8", s)
		}
		if p != p.Masked() {
			return netip.Prefix{}, fmt.Errorf("%q has host bits set: did you mean %s?", s, p.Masked())
		}
		return p, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or a CIDR", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// relative returns file as a path from the config file's folder, unless it
// is absolute.
func (c *Config) relative(file string) string {
	if filepath.IsAbs(file) {
		return file
	}
	return filepath.Join(filepath.Dir(c.File), file)
}

// JWTOptions returns the verifier options the configuration sets.
func (c *Config) JWTOptions() authz.JWTOptions {
	return authz.JWTOptions{
		RefreshInterval: c.JWKS.RefreshInterval,
		RefetchCooldown: c.JWKS.RefetchCooldown,
		CacheSize:       c.TokenCacheSize,
		ExtraClaims:     c.ExtraClaims(),
	}
}

// ExtraClaims lists the claims that the claim → header map forwards.
func (c *Config) ExtraClaims() []string {
	extra := make([]string, 0, len(c.Headers.Claims))
	for claim := range c.Headers.Claims {
		extra = append(extra, claim)
	}
	return extra
}

// IntrospectIssuers returns the set of issuers marked introspect_jwts.
func (c *Config) IntrospectIssuers() map[string]bool {
	set := map[string]bool{}
	for _, iss := range c.Issuers {
		if iss.IntrospectJWTs {
			set[iss.Issuer] = true
		}
	}
	return set
}

// AuthzOptions returns the decision options the configuration sets.
func (c *Config) AuthzOptions() authz.Options {
	return authz.Options{Realm: c.Realm, MaxTokenSize: c.MaxTokenSize, Headers: c.Headers}
}
