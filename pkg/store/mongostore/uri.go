package mongostore

import (
	"net/url"
	"strings"
)

// The connection string is parsed by hand rather than with net/url (which
// does not accept the comma-separated host lists of a replica set) or the
// driver's connstring package (which resolves mongodb+srv hosts over DNS just
// to parse). The standard requires "/", "@" and ":" in credentials to be
// percent-encoded, so the first "/" or "?" after the scheme ends the hosts
// and the last "@" before it ends the credentials.

// uriParts splits mongodb[+srv]://[user[:password]@]hosts[/[db]][?options].
// ok is false when there is no scheme separator.
func uriParts(uri string) (prefix, userinfo, rest string, ok bool) {
	i := strings.Index(uri, "://")
	if i < 0 {
		return "", "", "", false
	}
	prefix, after := uri[:i+3], uri[i+3:]
	end := strings.IndexAny(after, "/?")
	if end < 0 {
		end = len(after)
	}
	at := strings.LastIndex(after[:end], "@")
	if at < 0 {
		return prefix, "", after, true
	}
	return prefix, after[:at], after[at+1:], true
}

// redactURI is the URI fit for an error message: the password is replaced,
// and a URI that cannot be parsed is not shown at all.
func redactURI(uri string) string {
	prefix, userinfo, rest, ok := uriParts(uri)
	if !ok {
		return "(malformed URI)"
	}
	if userinfo == "" {
		return uri
	}
	if user, _, hasPassword := strings.Cut(userinfo, ":"); hasPassword {
		userinfo = user + ":xxxxx"
	}
	return prefix + userinfo + "@" + rest
}

// uriPasswords is the URI's password as written and as decoded, for scrub.
func uriPasswords(uri string) []string {
	_, userinfo, _, ok := uriParts(uri)
	if !ok {
		return nil
	}
	_, pw, hasPassword := strings.Cut(userinfo, ":")
	if !hasPassword || pw == "" {
		return nil
	}
	out := []string{pw}
	if dec, err := url.PathUnescape(pw); err == nil && dec != pw && dec != "" {
		out = append(out, dec)
	}
	return out
}

// uriDatabase is the database named in the URI's path, or "".
func uriDatabase(uri string) string {
	_, _, rest, ok := uriParts(uri)
	if !ok {
		return ""
	}
	slash := strings.IndexAny(rest, "/?")
	if slash < 0 || rest[slash] != '/' {
		return ""
	}
	db, _, _ := strings.Cut(rest[slash+1:], "?")
	if dec, err := url.PathUnescape(db); err == nil {
		return dec
	}
	return db
}

// scrubbedError hides secrets in the message of an error it still wraps, so
// errors.Is/As keep working (timeouts, cancellations) while logging the
// error never prints them.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

func scrub(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	if msg == err.Error() {
		return err
	}
	return &scrubbedError{msg: msg, err: err}
}
