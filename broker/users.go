package broker

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
	"go.yaml.in/yaml/v3"

	"github.com/arrwdb/arrwcdc/subjects"
)

// Role is what a NATS user may do (DESIGN §8). See [Permissions] for the
// exact subjects of each.
type Role string

// The roles of a users file.
const (
	// RolePublisher publishes events under the prefix and reads the
	// JetStream acks: application instances, the outbox relay, `arrwcdc
	// publish`.
	RolePublisher Role = "publisher"
	// RoleBridge is what `arrwcdc bridge` needs: live and stored events,
	// statistics among bridges, replay through ordered consumers, and
	// publishing under the prefix for POST /v1/events.
	RoleBridge Role = "bridge"
	// RoleTap reads: core subscriptions to the events and their live
	// twins (`nats sub`, `arrwcdc tail`), and replay through consumers
	// (`nats sub --all`, `arrwcdc tail --all`). It publishes no event.
	RoleTap Role = "tap"
	// RoleAdmin may do everything, stream management included.
	RoleAdmin Role = "admin"
)

// Roles lists the roles in the order of their power.
var Roles = []Role{RoleTap, RolePublisher, RoleBridge, RoleAdmin}

// InternalUser is the user name of the broker's own connections
// ([Broker.Connect]: provisioning, the auth callout responder, the bridge
// of serve). Its password is random, made anew by every process; a users
// file may not name it.
const InternalUser = "_arrwcdc_internal"

// User is one NATS user of a users file: a name with a password, or an
// nkey, and a role.
type User struct {
	// Name is the user name clients give (nats --user). Required with a
	// password; with an nkey it only names the entry in errors and logs.
	Name string `yaml:"name"`
	// Password is the password, in clear or as a bcrypt hash ("$2a$…",
	// as `nats server passwd` makes; recommended), as nats-server takes it.
	Password string `yaml:"password"`
	// NKey is the user's public nkey ("U…"); the client signs the server's
	// nonce with the seed (nats --nkey FILE).
	NKey string `yaml:"nkey"`
	// Role is publisher, bridge, tap or admin.
	Role Role `yaml:"role"`
}

// usersFile is the YAML document of a users file.
type usersFile struct {
	Users []User `yaml:"users"`
}

// LoadUsers reads a users file:
//
//	users:
//	  - name: app-1
//	    password: "$2a$11$…"   # bcrypt hash (or the password in clear)
//	    role: publisher
//	  - name: ops
//	    nkey: UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4
//	    role: tap
//
// Unknown keys are errors, and so is every problem [ValidateUsers] finds.
func LoadUsers(path string) ([]User, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var f usersFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := ValidateUsers(f.Users); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f.Users, nil
}

// ValidateUsers reports every problem of users, joined: each entry needs
// a known role and exactly one of password and nkey (a valid public user
// nkey); names of password users are required and unique, may not be
// [InternalUser] and contain no whitespace; nkeys are unique.
func ValidateUsers(users []User) error {
	var errs []error
	names := map[string]bool{}
	keys := map[string]bool{}
	for i, u := range users {
		where := fmt.Sprintf("users[%d]", i)
		if u.Name != "" {
			where += " " + fmt.Sprintf("%q", u.Name)
		}
		bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(where+": "+format, a...)) }
		switch {
		case u.Password != "" && u.NKey != "":
			bad("give a password or an nkey, not both")
		case u.Password == "" && u.NKey == "":
			bad("give a password or an nkey")
		case u.NKey != "":
			if !nkeys.IsValidPublicUserKey(u.NKey) {
				bad("nkey %q is not a public user nkey (U…)", u.NKey)
			}
			if keys[u.NKey] {
				bad("nkey given twice")
			}
			keys[u.NKey] = true
		default:
			if u.Name == "" {
				bad("a password user needs a name")
			}
		}
		if u.Name != "" {
			if strings.ContainsFunc(u.Name, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
				bad("name contains whitespace or control characters")
			}
			if u.Name == InternalUser {
				bad("name %s is reserved for the broker's own connections", InternalUser)
			}
			if names[u.Name] {
				bad("name given twice")
			}
			names[u.Name] = true
		}
		if !validRole(u.Role) {
			bad("role %q: want publisher, bridge, tap or admin", u.Role)
		}
	}
	return errors.Join(errs...)
}

func validRole(r Role) bool {
	for _, known := range Roles {
		if r == known {
			return true
		}
	}
	return false
}

// JetStream API subjects of the EVENTS stream.
const (
	jsAPI = "$JS.API."
)

// Permissions returns the subject permissions of role for prefix; nil
// (everything) for [RoleAdmin]. Unknown roles get a permission set that
// allows nothing. In the lists below P is the prefix ("events"), and
// "replies" means publishing to the reply subject of a received request.
//
// publisher: publish P.> and the JetStream API calls a publisher makes
// ($JS.API.INFO, $JS.API.STREAM.INFO.EVENTS, $JS.API.STREAM.NAMES);
// subscribe _INBOX.> for the JetStream acks. It cannot subscribe to
// events.
//
// bridge: subscribe P.>, live.P.>, arrwcdc.bridge.stats.>, _INBOX.> and
// the EVENTS leader advisories; publish P.> (POST /v1/events),
// arrwcdc.bridge.stats.>, replies, and the JetStream API of stream info,
// direct and message get, and ordered consumers on EVENTS (create, info,
// next, delete). It cannot create, update, purge or delete streams.
//
// tap: subscribe P.>, live.P.> and _INBOX.>; publish only the read-only
// JetStream API on EVENTS (info, names, direct and message get, consumer
// info and list) plus what ordered consumers need (consumer create,
// next, flow control, delete: nats.go deletes an ordered consumer's
// previous incarnation). It cannot publish events, create, change, purge
// or delete a stream, or use the legacy durable-consumer API. Caveat:
// JetStream cannot tell by subject an ephemeral consumer from a durable
// one, nor create from update, so a tap user who knows the name of a
// durable consumer on EVENTS can change or delete it; give untrusted
// readers a token instead (auth callout: core subscriptions to their
// libraries only).
//
// Every role that subscribes to _INBOX.> can see replies addressed to
// other clients' inboxes (JetStream acks, consumer deliveries), which are
// events and acks the roles may read anyway.
func Permissions(role Role, prefix string) *server.Permissions {
	all := subjects.All(prefix)
	live := subjects.Live(all)
	stream := StreamName
	pub := func(s ...string) *server.SubjectPermission { return &server.SubjectPermission{Allow: s} }
	// The JetStream API of reading EVENTS through ordered consumers, which
	// bridge and tap both need.
	readEvents := []string{
		jsAPI + "INFO",
		jsAPI + "STREAM.INFO." + stream,
		jsAPI + "STREAM.NAMES",
		jsAPI + "STREAM.MSG.GET." + stream,
		jsAPI + "DIRECT.GET." + stream,
		jsAPI + "DIRECT.GET." + stream + ".>",
		jsAPI + "CONSUMER.CREATE." + stream,
		jsAPI + "CONSUMER.CREATE." + stream + ".>",
		jsAPI + "CONSUMER.INFO." + stream + ".>",
		jsAPI + "CONSUMER.MSG.NEXT." + stream + ".>",
		jsAPI + "CONSUMER.DELETE." + stream + ".>",
		"$JS.FC." + stream + ".>",
	}
	switch role {
	case RoleAdmin:
		return nil
	case RolePublisher:
		return &server.Permissions{
			Publish: pub(all,
				jsAPI+"INFO",
				jsAPI+"STREAM.INFO."+stream,
				jsAPI+"STREAM.NAMES",
			),
			Subscribe: pub("_INBOX.>"),
		}
	case RoleBridge:
		return &server.Permissions{
			Publish: pub(append([]string{all, "arrwcdc.bridge.stats.>"}, readEvents...)...),
			Subscribe: pub(all, live,
				"arrwcdc.bridge.stats.>",
				"_INBOX.>",
				"$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED."+stream,
				"$JS.EVENT.ADVISORY.CONSUMER.>",
			),
			Response: &server.ResponsePermission{MaxMsgs: 1},
		}
	case RoleTap:
		return &server.Permissions{
			Publish: pub(append([]string{
				jsAPI + "STREAM.LIST",
				jsAPI + "CONSUMER.NAMES." + stream,
				jsAPI + "CONSUMER.LIST." + stream,
			}, readEvents...)...),
			Subscribe: pub(all, live, "_INBOX.>"),
		}
	}
	deny := &server.SubjectPermission{Deny: []string{">"}}
	return &server.Permissions{Publish: deny, Subscribe: deny}
}
