package connections

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	json "github.com/go-json-experiment/json/v1"

	"github.com/itsmhub/itsm/pkg/itsm"
	"github.com/itsmhub/itsm/pkg/store"
)

// ValidationError names the field of a request that is wrong; the API
// answers 400 with it.
type ValidationError struct {
	Field   string
	Message string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Options is the wire form of a connection's options: mappings are lists of
// single-key objects, as in the seed's API.
type Options struct {
	ProjectKeysFilter []string            `json:"project_keys_filter,omitempty"`
	PriorityMapping   []map[string]string `json:"priority_mapping,omitempty"`
	StatusMapping     []map[string]string `json:"status_mapping,omitempty"`
	// SiteURL picks one site when the customer's grant covers several.
	SiteURL string `json:"site_url,omitempty"`
	// InstanceName or InstanceURL name a ServiceNow instance.
	InstanceName string `json:"instance_name,omitempty"`
	InstanceURL  string `json:"instance_url,omitempty"`
	// Auth is a connection's own credentials; responses show its type and
	// names only, never a password or secret.
	Auth *AuthOptions `json:"auth,omitempty"`
	// Tables are the ServiceNow task tables synced as tickets.
	Tables []string `json:"tables,omitempty"`
}

// AuthOptions are credentials a connection brings (basic: username and
// password; oauth: the customer's OAuth application on its instance).
type AuthOptions struct {
	Type         string `json:"type"`
	Username     string `json:"username,omitempty"`
	Password     string `json:"password,omitempty"`
	ClientID     string `json:"client_id,omitempty"`
	ClientSecret string `json:"client_secret,omitempty"`
}

// Credentials are a connection's own secrets, sealed at rest
// (store.ConnectionDetail.Credentials).
type Credentials struct {
	Password     string `json:"password,omitempty"`
	ClientSecret string `json:"client_secret,omitempty"`
	// PushSecret keys the HMAC of the vendor's pushes to the receiver.
	PushSecret string `json:"push_secret,omitempty"`
}

// set names the options o sets, by their JSON names.
func (o Options) set() []string {
	var out []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"project_keys_filter", o.ProjectKeysFilter != nil}, {"priority_mapping", o.PriorityMapping != nil},
		{"status_mapping", o.StatusMapping != nil}, {"site_url", o.SiteURL != ""},
		{"instance_name", o.InstanceName != ""}, {"instance_url", o.InstanceURL != ""},
		{"auth", o.Auth != nil}, {"tables", o.Tables != nil},
	} {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}

// Jira project keys: an uppercase letter, then uppercase letters, digits or
// underscores (Jira's default key pattern), at most 255 characters.
var projectKey = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,254}$`)

// toStore validates wire options into their stored form.
func (o Options) toStore() (store.ConnectionOptions, error) {
	var out store.ConnectionOptions
	seen := map[string]bool{}
	for i, k := range o.ProjectKeysFilter {
		if !projectKey.MatchString(k) {
			return out, invalid(fmt.Sprintf("options.project_keys_filter[%d]", i), "%q is not a Jira project key (uppercase letter, then uppercase letters, digits or _)", k)
		}
		if !seen[k] {
			seen[k] = true
			out.ProjectKeysFilter = append(out.ProjectKeysFilter, k)
		}
	}
	for i, entry := range o.PriorityMapping {
		field := fmt.Sprintf("options.priority_mapping[%d]", i)
		name, value, err := single(field, entry)
		if err != nil {
			return out, err
		}
		p, err := itsm.ParsePriority(value)
		if err != nil {
			return out, invalid(field, "%v", err)
		}
		out.PriorityMapping = append(out.PriorityMapping, store.NameEntry[itsm.Priority]{Name: name, Value: p})
	}
	for i, entry := range o.StatusMapping {
		field := fmt.Sprintf("options.status_mapping[%d]", i)
		name, value, err := single(field, entry)
		if err != nil {
			return out, err
		}
		st, err := itsm.ParseStatus(value)
		if err != nil || st == itsm.StatusDeleted {
			return out, invalid(field, "unknown status %q (DELETED is reserved for deletions)", value)
		}
		out.StatusMapping = append(out.StatusMapping, store.NameEntry[itsm.Status]{Name: name, Value: st})
	}
	if o.SiteURL != "" {
		u, err := url.Parse(o.SiteURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return out, invalid("options.site_url", "want an https:// site URL like https://acme.atlassian.net")
		}
		out.SiteURL = u.Scheme + "://" + u.Host
	}
	out.Tables = slices.Clone(o.Tables)
	return out, nil
}

func single(field string, entry map[string]string) (string, string, error) {
	if len(entry) != 1 {
		return "", "", invalid(field, "each entry maps exactly one vendor name, got %d keys", len(entry))
	}
	for k, v := range entry {
		if strings.TrimSpace(k) == "" {
			return "", "", invalid(field, "the vendor name is empty")
		}
		return k, v, nil
	}
	panic("unreachable")
}

// fromStore renders stored options in wire form, mappings in the order the
// customer gave them.
func fromStore(o store.ConnectionOptions) Options {
	out := Options{ProjectKeysFilter: o.ProjectKeysFilter, SiteURL: o.SiteURL, Tables: o.Tables}
	if a := o.Auth; a != nil {
		out.Auth = &AuthOptions{Type: a.Type, Username: a.Username, ClientID: a.ClientID}
	}
	for _, e := range o.PriorityMapping {
		out.PriorityMapping = append(out.PriorityMapping, map[string]string{e.Name: string(e.Value)})
	}
	for _, e := range o.StatusMapping {
		out.StatusMapping = append(out.StatusMapping, map[string]string{e.Name: string(e.Value)})
	}
	return out
}

// DecodeStrict decodes a JSON body refusing unknown fields, so a misspelt
// option is an error and not silently ignored.
func DecodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid("body", "%v", err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
