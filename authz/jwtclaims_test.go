package authz

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/scopegate/scopegate/internal/testutil"
)

func TestJWTVerifyTimeClaims(t *testing.T) {
	idp := testutil.NewIdP(t)
	leeway := time.Minute
	iss := jwtIssuerFor(idp)
	iss.Leeway = &leeway
	iss.MaxLifetime = time.Hour
	v := newTestJWTVerifier(t, jwtOptions(&jwtLog{}), iss)
	tests := []struct {
		name string
		opts []testutil.TokenOption
		want Reason // "" to accept
	}{
		{"valid", nil, ""},
		{"expired within the leeway", []testutil.TokenOption{testutil.IssuedIn(-time.Hour), testutil.ExpiresIn(-30 * time.Second)}, ""},
		{"expired beyond the leeway", []testutil.TokenOption{testutil.IssuedIn(-time.Hour), testutil.ExpiresIn(-90 * time.Second)}, ReasonTokenExpired},
		{"nbf within the leeway", []testutil.TokenOption{testutil.NotBeforeIn(30 * time.Second)}, ""},
		{"nbf beyond the leeway", []testutil.TokenOption{testutil.NotBeforeIn(90 * time.Second)}, ReasonTokenNotYetValid},
		{"iat within the leeway", []testutil.TokenOption{testutil.IssuedIn(30 * time.Second)}, ""},
		{"iat beyond the leeway", []testutil.TokenOption{testutil.IssuedIn(90 * time.Second)}, ReasonTokenNotYetValid},
		{"lifetime at the maximum", []testutil.TokenOption{testutil.ExpiresIn(time.Hour)}, ""},
		{"lifetime beyond the maximum", []testutil.TokenOption{testutil.ExpiresIn(time.Hour + time.Second)}, ReasonTokenLifetime},
		{"no iat to bound the lifetime", []testutil.TokenOption{testutil.Claim("iat", nil)}, ReasonTokenLifetime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantVerdict(t, v, idp.Token(t, tt.opts...), tt.want)
		})
	}
}

func TestJWTVerifyLeewayZero(t *testing.T) {
	idp := testutil.NewIdP(t)
	var zero time.Duration
	iss := jwtIssuerFor(idp)
	iss.Leeway = &zero
	v := newTestJWTVerifier(t, jwtOptions(&jwtLog{}), iss)
	tok := idp.Token(t, testutil.ExpiresIn(-time.Second))
	c, err := v.Verify(t.Context(), tok)
	wantRefusal(t, tok, c, err, ReasonTokenExpired)
}

func TestJWTVerifyAudiences(t *testing.T) {
	idp := testutil.NewIdP(t)
	iss := jwtIssuerFor(idp)
	iss.Audiences = []string{"https://a.test", "https://b.test"}
	v := newTestJWTVerifier(t, jwtOptions(&jwtLog{}), iss)
	for _, aud := range [][]string{{"https://b.test"}, {"https://x.test", "https://a.test"}} {
		c, err := v.Verify(t.Context(), idp.Token(t, testutil.Audience(aud...)))
		if err != nil {
			t.Fatalf("aud %q: %v", aud, err)
		}
		if !slices.Equal(c.Audience, aud) {
			t.Errorf("Audience = %q, want %q", c.Audience, aud)
		}
	}
	// Without audiences set, any audience, or none, is accepted.
	iss.Audiences = nil
	iss.Issuer, iss.JWKSURI = "https://any-audience.test", idp.JWKSURL()
	v = newTestJWTVerifier(t, jwtOptions(&jwtLog{}), iss)
	for _, opt := range []testutil.TokenOption{testutil.Audience(), testutil.Audience("https://x.test")} {
		if _, err := v.Verify(t.Context(), idp.Token(t, opt, testutil.Claim("iss", iss.Issuer))); err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
}

func TestJWTVerifyScopeClaims(t *testing.T) {
	idp := testutil.NewIdP(t)
	tests := []struct {
		claim string // the issuer's ScopeClaim
		opts  []testutil.TokenOption
		want  []string
		err   bool
	}{
		{"", []testutil.TokenOption{testutil.Scopes("a", "b")}, []string{"a", "b"}, false},
		{"", []testutil.TokenOption{testutil.Claim("scp", []string{"a", "b"})}, []string{"a", "b"}, false},
		{"", []testutil.TokenOption{testutil.Claim("scp", "a b")}, []string{"a", "b"}, false},
		{"", []testutil.TokenOption{testutil.Scopes("a"), testutil.Claim("scp", []string{"b"})}, []string{"a"}, false},
		{"", nil, nil, false},
		{"", []testutil.TokenOption{testutil.Claim("scope", "  ")}, nil, false},
		{"scope", []testutil.TokenOption{testutil.Scopes("a", "b"), testutil.Claim("scp", []string{"c"})}, []string{"a", "b"}, false},
		{"scope", []testutil.TokenOption{testutil.Claim("scp", []string{"c"})}, nil, false},
		{"scp", []testutil.TokenOption{testutil.Scopes("a"), testutil.Claim("scp", []string{"c", "d"})}, []string{"c", "d"}, false},
		{"scp", []testutil.TokenOption{testutil.Claim("scp", "c d")}, []string{"c", "d"}, false},
		{"", []testutil.TokenOption{testutil.Claim("scope", []string{"a"})}, nil, true},
		{"scp", []testutil.TokenOption{testutil.Claim("scp", []any{"a", 1})}, nil, true},
		{"scp", []testutil.TokenOption{testutil.Claim("scp", 1)}, nil, true},
	}
	verifiers := map[string]*JWTVerifier{}
	for _, claim := range []string{"", "scope", "scp"} {
		iss := jwtIssuerFor(idp)
		iss.ScopeClaim = claim
		verifiers[claim] = newTestJWTVerifier(t, jwtOptions(&jwtLog{}), iss)
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%d/%s", i, tt.claim), func(t *testing.T) {
			tok := idp.Token(t, tt.opts...)
			c, err := verifiers[tt.claim].Verify(t.Context(), tok)
			if tt.err {
				wantRefusal(t, tok, c, err, ReasonTokenInvalid)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !slices.Equal(c.Scopes, tt.want) {
				t.Errorf("Scopes = %q, want %q", c.Scopes, tt.want)
			}
		})
	}
}

func TestJWTVerifyClientIDClaims(t *testing.T) {
	idp := testutil.NewIdP(t)
	// The claims of a token a user obtained: sub is the user, named like
	// a client.
	user := []testutil.TokenOption{testutil.Claim("sub", "billing-svc"), testutil.Claim("client_id", nil)}
	tests := []struct {
		name   string
		claims []string // the issuer's ClientIDClaims
		opts   []testutil.TokenOption
		want   string
		reason Reason // "" to accept
	}{
		{"client_id first", nil, []testutil.TokenOption{testutil.Claim("client_id", "cid"), testutil.Claim("azp", "azp")}, "cid", ""},
		{"then azp", nil, append(user, testutil.Claim("azp", "azp")), "azp", ""},
		{"an empty client_id counts as absent", nil, []testutil.TokenOption{testutil.Claim("client_id", ""), testutil.Claim("azp", "azp")}, "azp", ""},
		{"never sub by default", nil, user, "", ""},
		{"Okta's cid", []string{"cid"}, append(user, testutil.Claim("cid", "0oa1okta")), "0oa1okta", ""},
		{"Okta's cid, not client_id", []string{"cid"}, []testutil.TokenOption{testutil.Claim("cid", "0oa1okta"), testutil.Claim("client_id", "other")}, "0oa1okta", ""},
		{"Entra v1's appid after azp", []string{"azp", "appid"}, append(user, testutil.Claim("appid", "6e74172b")), "6e74172b", ""},
		{"sub when named", []string{"client_id", "sub"}, user, "billing-svc", ""},
		{"a configured claim not a string", []string{"cid"}, []testutil.TokenOption{testutil.Claim("cid", 7)}, "", ReasonTokenInvalid},
		{"azp not a string", nil, []testutil.TokenOption{testutil.Claim("azp", []string{"a"})}, "", ReasonTokenInvalid},
		{"an unnamed claim of any type", []string{"cid"}, []testutil.TokenOption{testutil.Claim("cid", "c"), testutil.Claim("azp", 7)}, "c", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss := jwtIssuerFor(idp)
			iss.ClientIDClaims = tt.claims
			v := newTestJWTVerifier(t, jwtOptions(&jwtLog{}), iss)
			tok := idp.Token(t, tt.opts...)
			c, err := v.Verify(t.Context(), tok)
			if tt.reason != "" {
				wantRefusal(t, tok, c, err, tt.reason)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.ClientID != tt.want {
				t.Errorf("ClientID %q, want %q", c.ClientID, tt.want)
			}
		})
	}
}

func TestJWTVerifyScopesSplitOnSpaceOnly(t *testing.T) {
	idp := testutil.NewIdP(t)
	scp := jwtIssuerFor(idp)
	scp.ScopeClaim = "scp"
	verifiers := map[string]*JWTVerifier{
		"scope": newTestJWTVerifier(t, jwtOptions(&jwtLog{}), jwtIssuerFor(idp)),
		"scp":   newTestJWTVerifier(t, jwtOptions(&jwtLog{}), scp),
	}
	tests := []struct {
		name  string
		claim string
		value any
		want  []string // nil with a refusal
	}{
		{"SP", "scope", "tenant:acme orders:read", []string{"tenant:acme", "orders:read"}},
		{"leading, trailing and repeated SP", "scope", "  tenant:acme   orders:read ", []string{"tenant:acme", "orders:read"}},
		{"every scope-token character", "scope", "!#[]~ a", []string{"!#[]~", "a"}},
		{"NO-BREAK SPACE", "scope", "tenant:acme\u00a0orders:admin", nil},
		{"IDEOGRAPHIC SPACE", "scope", "tenant:acme\u3000orders:admin", nil},
		{"LINE SEPARATOR", "scope", "tenant:acme\u2028orders:admin", nil},
		{"NEXT LINE", "scope", "tenant:acme\u0085orders:admin", nil},
		{"TAB", "scope", "tenant:acme\torders:admin", nil},
		{"VT", "scope", "tenant:acme\vorders:admin", nil},
		{"LF", "scope", "tenant:acme\norders:admin", nil},
		{"quote", "scope", `orders:"admin"`, nil},
		{"backslash", "scope", `orders:\admin`, nil},
		{"DEL", "scope", "orders:admin\x7f", nil},
		{"a letter beyond ASCII", "scope", "orders:\u00e4dmin", nil},
		{"scp as a string, NO-BREAK SPACE", "scp", "tenant:acme\u00a0orders:admin", nil},
		{"scp array", "scp", []string{"tenant:acme", "orders:read"}, []string{"tenant:acme", "orders:read"}},
		{"scp element with a space", "scp", []string{"tenant:acme orders:admin"}, nil},
		{"scp element with NO-BREAK SPACE", "scp", []string{"tenant:acme\u00a0orders:admin"}, nil},
		{"scp element empty", "scp", []string{"orders:read", ""}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := idp.Token(t, testutil.Claim(tt.claim, tt.value))
			c, err := verifiers[tt.claim].Verify(t.Context(), tok)
			if tt.want == nil {
				wantRefusal(t, tok, c, err, ReasonTokenMalformed)
				if desc := err.(*TokenError).Description; strings.Contains(desc, "orders:") {
					t.Errorf("the description %q quotes the scope", desc)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !slices.Equal(c.Scopes, tt.want) {
				t.Errorf("Scopes = %q, want %q", c.Scopes, tt.want)
			}
		})
	}
}

func TestJWTVerifyTimeClaimsOutsideTheYears1970To9999(t *testing.T) {
	idp := testutil.NewIdP(t)
	// No max_lifetime: nothing else bounds iat.
	v := newTestJWTVerifier(t, jwtOptions(&jwtLog{}), jwtIssuerFor(idp))
	exp := float64(time.Now().Add(time.Hour).Unix())
	tests := []struct {
		name  string
		claim string
		value float64
		want  Reason // "" to accept
	}{
		{"iat 1e300", "iat", 1e300, ReasonTokenMalformed},
		{"iat -1e300", "iat", -1e300, ReasonTokenMalformed},
		{"iat beyond an int64", "iat", 1e19, ReasonTokenMalformed},
		{"iat before 1970", "iat", -1, ReasonTokenMalformed},
		{"iat in 1970", "iat", 0, ""},
		{"nbf 1e300", "nbf", 1e300, ReasonTokenMalformed},
		{"nbf -1e300", "nbf", -1e300, ReasonTokenMalformed},
		{"exp 1e300", "exp", 1e300, ReasonTokenMalformed},
		{"exp after 9999", "exp", maxNumericDate + 1, ReasonTokenMalformed},
		{"exp at the end of 9999", "exp", maxNumericDate, ""},
		{"exp with a fraction", "exp", exp + 0.5, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantVerdict(t, v, idp.Token(t, testutil.Claim(tt.claim, tt.value)), tt.want)
		})
	}
}

func TestJWTVerifyRefusesRefreshAndIDTokens(t *testing.T) {
	idp := testutil.NewIdP(t)
	v := newTestJWTVerifier(t, jwtOptions(&jwtLog{}), jwtIssuerFor(idp))
	tests := []struct {
		name  string
		claim string
		value any
		want  Reason // "" to accept
	}{
		{"Keycloak access token", "typ", "Bearer", ""},
		{"Keycloak refresh token", "typ", "Refresh", ReasonTokenType},
		{"Keycloak offline token", "typ", "Offline", ReasonTokenType},
		{"Keycloak ID token", "typ", "ID", ReasonTokenType},
		{"Keycloak serialized ID token", "typ", "Serialized-ID", ReasonTokenType},
		{"Keycloak logout token", "typ", "Logout", ReasonTokenType},
		{"typ in another case", "typ", "refresh", ReasonTokenType},
		{"typ not a string", "typ", 1, ReasonTokenInvalid},
		{"Cognito access token", "token_use", "access", ""},
		{"Cognito ID token", "token_use", "id", ReasonTokenType},
		{"Hydra refresh token", "token_use", "refresh_token", ReasonTokenType},
		{"token_use not a string", "token_use", true, ReasonTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantVerdict(t, v, idp.Token(t, testutil.Claim(tt.claim, tt.value)), tt.want)
		})
	}
	// The JOSE header's typ is another matter (RFC 9068's at+jwt): the
	// devidp sets it, and a header typ of Refresh is no claim.
	if _, err := v.Verify(t.Context(), idp.Token(t, testutil.Header("typ", "Refresh"))); err != nil {
		t.Errorf("a header typ refused the token: %v", err)
	}
}

func TestJWTVerifyCopiesExtraStringClaims(t *testing.T) {
	idp := testutil.NewIdP(t)
	opts := jwtOptions(&jwtLog{})
	opts.ExtraClaims = []string{"tenant", "tier", "absent"}
	v := newTestJWTVerifier(t, opts, jwtIssuerFor(idp))
	c, err := v.Verify(t.Context(), idp.Token(t, testutil.Claim("tenant", "acme"), testutil.Claim("tier", 3)))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if want := map[string]string{"tenant": "acme"}; fmt.Sprint(c.Extra) != fmt.Sprint(want) {
		t.Errorf("Extra = %v, want %v", c.Extra, want)
	}
}

// TestJWTClaimsShareValues checks that the claims of different tokens of
// one client share their strings and lists, which a full cache would
// otherwise hold once a token.
func TestJWTClaimsShareValues(t *testing.T) {
	idp := testutil.NewIdP(t)
	jwtOpts := jwtOptions(&jwtLog{})
	jwtOpts.ExtraClaims = []string{"tenant"}
	v := newTestJWTVerifier(t, jwtOpts, jwtIssuerFor(idp))
	opts := []testutil.TokenOption{testutil.Client("billing"), testutil.Scopes("orders:read", "orders:write"), testutil.Claim("tenant", "acme")}
	var claims []*Claims
	for _, tok := range []string{idp.Token(t, opts...), idp.Token(t, opts...)} {
		c, err := v.Verify(t.Context(), tok)
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if c.Subject != "billing" || c.ClientID != "billing" ||
			!slices.Equal(c.Scopes, []string{"orders:read", "orders:write"}) ||
			!slices.Equal(c.Audience, []string{testutil.DefaultAudience}) ||
			!maps.Equal(c.Extra, map[string]string{"tenant": "acme"}) {
			t.Fatalf("claims = %+v", c)
		}
		claims = append(claims, c)
	}
	a, b := claims[0], claims[1]
	if a == b {
		t.Fatal("two tokens have the same claims")
	}
	if !sameString(a.Subject, b.Subject) || !sameString(a.ClientID, b.ClientID) || !sameString(a.Subject, a.ClientID) {
		t.Error("the subjects and client ids of the tokens are copies, not shared")
	}
	if !sameList(a.Scopes, b.Scopes) {
		t.Error("the scopes of the tokens are copies, not shared")
	}
	if reflect.ValueOf(a.Extra).Pointer() != reflect.ValueOf(b.Extra).Pointer() {
		t.Error("the extra claims of the tokens are copies, not shared")
	}
	if audiences := v.issuers[idp.Issuer()].audiences; unsafe.SliceData(a.Audience) != &audiences[0] || cap(a.Audience) != 1 {
		t.Error("the audience of a token is not the issuer's setting")
	}

	// Audiences other than the issuer's one are shared too.
	aud := []string{"https://other.test", testutil.DefaultAudience}
	var auds [][]string
	for range 2 {
		c, err := v.Verify(t.Context(), idp.Token(t, testutil.Audience(aud...)))
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if !slices.Equal(c.Audience, aud) {
			t.Fatalf("audience = %q, want %q", c.Audience, aud)
		}
		auds = append(auds, c.Audience)
	}
	if !sameList(auds[0], auds[1]) {
		t.Error("the audiences of the tokens are copies, not shared")
	}
}
