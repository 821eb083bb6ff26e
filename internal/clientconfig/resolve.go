package clientconfig

import (
	"fmt"
	"strings"
)

// Flags are the command line's --host and -t/--token ("" when not given).
type Flags struct {
	Host, Token string
}

// Credentials are the host and credentials a command uses, and where each
// came from (for messages such as "token from SYNAPSE_ACCESS_TOKEN").
type Credentials struct {
	// Host is the backend URL; never "" (DefaultHost at least).
	Host string
	// HostFrom says where Host came from: "--host", "SYNAPSE_HOST", the
	// config file's path, or "default".
	HostFrom string
	// Token is the token to send; "" when none was found (not logged in).
	Token string
	// UserToken reports whether Token is a DRF user token (sent as
	// "Authorization: Token <t>") rather than an access token (sent as
	// "Synapse-Access-Token: Token <t>").
	UserToken bool
	// TokenFrom says where Token came from: "--token", an environment
	// variable's name, or the config file's path; "" without a token.
	TokenFrom string
	// Tenant is the tenant code sent as "Synapse-Tenant: Token <tenant>";
	// "" for none.
	Tenant string
	// Agent is the selected agent of the config file, nil for none.
	Agent *Agent
}

// LoggedIn reports whether there is a token.
func (c Credentials) LoggedIn() bool { return c.Token != "" }

// Describe describes the credentials for people, the token masked by
// mask (such as backend.Mask).
func (c Credentials) Describe(mask func(string) string) string {
	if c.Token == "" {
		return fmt.Sprintf("host %s (from %s), no token", c.Host, c.HostFrom)
	}
	kind := "access token"
	if c.UserToken {
		kind = "user token"
	}
	return fmt.Sprintf("host %s (from %s), %s %s (from %s)", c.Host, c.HostFrom, kind, mask(c.Token), c.TokenFrom)
}

// Resolve picks the host and credentials: flags, then the environment
// (getenv, such as os.Getenv), then the config file f (which may be nil),
// then DefaultHost for the host.
//
// The token is taken from the first of these that has one, whole: -t is an
// access token; in the environment and in the file the user-token pair
// (SYNAPSE_PLUGIN_RUN_USER_TOKEN / "user_token") is preferred over the
// access token, as the Python CLI prefers it. The tenant is
// SYNAPSE_PLUGIN_RUN_TENANT, else the file's "tenant".
func Resolve(flags Flags, getenv func(string) string, f *File) Credentials {
	env := func(k string) string { return strings.TrimSpace(getenv(k)) }
	if f == nil {
		f = &File{}
	}
	var c Credentials
	switch {
	case strings.TrimSpace(flags.Host) != "":
		c.Host, c.HostFrom = strings.TrimSpace(flags.Host), "--host"
	case env(EnvHost) != "":
		c.Host, c.HostFrom = env(EnvHost), EnvHost
	case f.Host != "":
		c.Host, c.HostFrom = f.Host, f.Path
	default:
		c.Host, c.HostFrom = DefaultHost, "default"
	}
	switch {
	case strings.TrimSpace(flags.Token) != "":
		c.Token, c.TokenFrom = strings.TrimSpace(flags.Token), "--token"
	case env(EnvUserToken) != "":
		c.Token, c.TokenFrom, c.UserToken = env(EnvUserToken), EnvUserToken, true
	case env(EnvToken) != "":
		c.Token, c.TokenFrom = env(EnvToken), EnvToken
	case f.UserToken != "":
		c.Token, c.TokenFrom, c.UserToken = f.UserToken, f.Path, true
	case f.AccessToken != "":
		c.Token, c.TokenFrom = f.AccessToken, f.Path
	}
	c.Tenant = env(EnvTenant)
	if c.Tenant == "" {
		c.Tenant = f.Tenant
	}
	c.Agent = f.Agent
	return c
}
