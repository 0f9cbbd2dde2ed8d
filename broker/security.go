package broker

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"go.uber.org/zap"

	"github.com/arrwdb/arrwcdc/auth"
	"github.com/arrwdb/arrwcdc/subjects"
)

// authTimeout bounds a client's authentication, the auth callout's round
// trip included (nats-server's default is 2 s).
const authTimeout = 5 * time.Second

// MaxTokenSubs is the most subscriptions a client logged in with a token
// may hold at once.
const MaxTokenSubs = 1024

// Reasons the auth callout gives a refused client. The client sees only
// "Authorization Violation"; these go to the server's log.
const (
	reasonMissing = "no token"
	reasonExpired = "token expired"
	reasonInvalid = "invalid token"
)

// initSecurity loads the users and the token verifier and, when clients
// must authenticate, makes the internal user's password and the callout's
// account key.
func (b *Broker) initSecurity() error {
	c := b.cfg
	if c.UsersFile != "" {
		users, err := LoadUsers(c.UsersFile)
		if err != nil {
			return fmt.Errorf("users_file: %w", err)
		}
		b.users = append(b.users, users...)
	}
	b.users = append(b.users, c.Users...)
	if err := ValidateUsers(b.users); err != nil {
		return fmt.Errorf("users: %w", err)
	}
	b.tokens = c.Tokens
	if b.tokens == nil {
		v, err := auth.LoadVerifier(c.TokenSecretFile, c.TokenPublicKeyFile)
		if err != nil {
			return err
		}
		b.tokens = v
	}
	if !c.AuthEnabled() {
		return nil
	}
	b.password = rand.Text() + rand.Text() // 256 bits, new in every process
	if b.tokens != nil {
		kp, err := nkeys.CreateAccount()
		if err != nil {
			return fmt.Errorf("auth callout key: %w", err)
		}
		b.issuer = kp
	}
	return nil
}

// securityOptions adds users, the auth callout and TLS to opts.
func (b *Broker) securityOptions(opts *server.Options) error {
	c := b.cfg
	if b.password != "" {
		opts.Users = append(opts.Users, &server.User{Username: InternalUser, Password: b.password})
		authUsers := []string{InternalUser}
		for _, u := range b.users {
			perms := Permissions(u.Role, c.Prefix)
			if u.NKey != "" {
				opts.Nkeys = append(opts.Nkeys, &server.NkeyUser{Nkey: u.NKey, Permissions: perms})
				authUsers = append(authUsers, u.NKey)
			} else {
				opts.Users = append(opts.Users, &server.User{Username: u.Name, Password: u.Password, Permissions: perms})
				authUsers = append(authUsers, u.Name)
			}
		}
		if b.tokens != nil {
			issuer, err := b.issuer.PublicKey()
			if err != nil {
				return err
			}
			// Every configured user skips the callout: a user missing
			// from AuthUsers would be sent to it (notes/auth-callout.md, 1).
			opts.AuthCallout = &server.AuthCallout{
				Issuer:    issuer,
				Account:   server.DEFAULT_GLOBAL_ACCOUNT, // not defaulted outside the config file
				AuthUsers: authUsers,
			}
		}
	}
	if c.TLS.Enabled() {
		tc, err := c.TLS.serverConfig(false)
		if err != nil {
			return fmt.Errorf("tls: %w", err)
		}
		opts.TLS, opts.TLSConfig, opts.TLSVerify, opts.TLSTimeout = true, tc, c.TLS.CA != "", tlsTimeout.Seconds()
	}
	if c.WebSocketListen != "" {
		h, p, err := splitListen(c.WebSocketListen)
		if err != nil {
			return fmt.Errorf("nats_ws_listen: %w", err)
		}
		opts.Websocket.Host, opts.Websocket.Port = h, p
		opts.Websocket.NoTLS = opts.TLSConfig == nil
		if opts.TLSConfig != nil {
			// Browsers log in with tokens, not client certificates.
			opts.Websocket.TLSConfig = opts.TLSConfig.Clone()
			opts.Websocket.TLSConfig.ClientAuth = tls.NoClientCert
		}
	}
	if c.ClusterTLS.Enabled() && c.ClusterListen != "" {
		tc, err := c.ClusterTLS.serverConfig(true)
		if err != nil {
			return fmt.Errorf("cluster_tls: %w", err)
		}
		opts.Cluster.TLSConfig, opts.Cluster.TLSTimeout = tc, tlsTimeout.Seconds()
	}
	return nil
}

// startCallout connects the auth callout responder and makes sure the
// server has its subscription before anything else connects.
func (b *Broker) startCallout() error {
	if b.tokens == nil {
		return nil
	}
	srv := b.Server()
	if srv == nil {
		return errors.New("not started")
	}
	nc, err := b.Connect(nats.Name("arrwcdc-auth-callout"))
	if err != nil {
		return err
	}
	r := &responder{
		id:     srv.ID(),
		prefix: b.cfg.Prefix,
		tokens: b.tokens,
		issuer: b.issuer,
		log:    b.log.Named("callout"),
	}
	if _, err := nc.Subscribe(server.AuthCalloutSubject, r.serve); err != nil {
		nc.Close()
		return err
	}
	if err := nc.Flush(); err != nil {
		nc.Close()
		return err
	}
	b.mu.Lock()
	b.callout = nc
	b.mu.Unlock()
	return nil
}

// responder answers nats-server's authorization requests for one node.
type responder struct {
	id     string // the server's ID, the public key that signs its requests
	prefix string
	tokens *auth.Verifier
	issuer nkeys.KeyPair
	log    *zap.Logger
}

// serve answers one request: a user JWT with the token's permissions, or
// an error. Requests of other nodes (their subscriptions reach us through
// the routes) and forged ones are ignored: their own responder answers.
func (r *responder) serve(m *nats.Msg) {
	req, err := jwt.DecodeAuthorizationRequestClaims(string(m.Data))
	if err != nil || req.Issuer != r.id || req.Server.ID != r.id {
		return
	}
	resp := jwt.NewAuthorizationResponseClaims(req.UserNkey)
	resp.Audience = req.Server.ID
	log := r.log.With(zap.String("client_host", req.ClientInformation.Host),
		zap.Uint64("client_id", req.ClientInformation.ID), zap.String("client_name", req.ClientInformation.Name))
	claims, err := r.tokens.Verify(req.ConnectOptions.Token)
	if err == nil {
		resp.Jwt, err = r.userJWT(req.UserNkey, claims)
	}
	if err != nil {
		resp.Error = reasonInvalid
		switch {
		case errors.Is(err, auth.ErrMissing):
			resp.Error = reasonMissing
		case errors.Is(err, auth.ErrExpired):
			resp.Error = reasonExpired
		}
		log.Info("refused NATS client", zap.String("reason", resp.Error), zap.Error(err))
	} else {
		log.Debug("token NATS client", zap.String("sub", claims.Subject), zap.Strings("read", claims.Read),
			zap.Time("expires", claims.ExpiresAt()))
	}
	out, err := resp.Encode(r.issuer)
	if err != nil {
		r.log.Error("auth callout response", zap.Error(err))
		return
	}
	_ = m.Respond([]byte(out))
}

// userJWT is the NATS user of a token: subscribe permission on exactly
// its libraries' events and live events, no publishing, and the token's
// expiry, so the server cuts the connection when the token expires.
func (r *responder) userJWT(userNkey string, c *auth.Claims) (string, error) {
	uc := jwt.NewUserClaims(userNkey)
	uc.Audience = server.DEFAULT_GLOBAL_ACCOUNT
	uc.Name = c.Subject
	uc.Expires = c.ExpiresAt().Unix()
	uc.Sub.Allow.Add(TokenSubjects(r.prefix, c)...)
	if len(uc.Sub.Allow) == 0 {
		uc.Sub.Deny.Add(">") // empty lists allow everything
	}
	uc.Pub.Deny.Add(">")
	uc.Limits.Subs = MaxTokenSubs
	uc.AllowedConnectionTypes.Add(jwt.ConnectionTypeStandard, jwt.ConnectionTypeWebsocket)
	return uc.Encode(r.issuer)
}

// TokenSubjects returns the subjects a token's holder may subscribe to
// on NATS: for each read entry "<prefix>.library.<id>.>" and its live
// twin "live.<prefix>.library.<id>.>"; "*" gives
// "<prefix>.library.*.>" and its live twin. Entries that are not valid
// ids are skipped (Verify has refused such tokens already).
func TokenSubjects(prefix string, c *auth.Claims) []string {
	if c.ReadsAll() {
		all := prefix + ".library.*.>"
		return []string{all, subjects.Live(all)}
	}
	var out []string
	for _, id := range c.Read {
		lib, err := subjects.Library(prefix, id)
		if err != nil {
			continue
		}
		out = append(out, lib, subjects.Live(lib))
	}
	return out
}
