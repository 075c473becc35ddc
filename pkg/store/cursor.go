package store

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Cursor positions are shared by every backend so that a cursor means the
// same thing whichever store issued it.

// EncodeCursor makes the opaque cursor that resumes after doc.
func EncodeCursor(d *Document) string {
	raw := strconv.FormatInt(d.UpdatedAt.UnixNano(), 10) + "|" + d.ID
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// DecodeCursor returns the position a cursor resumes after.
func DecodeCursor(c string) (updatedAt time.Time, id string, err error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", fmt.Errorf("%w: malformed cursor", ErrInvalid)
	}
	ns, id, ok := strings.Cut(string(raw), "|")
	n, perr := strconv.ParseInt(ns, 10, 64)
	if !ok || perr != nil || id == "" {
		return time.Time{}, "", fmt.Errorf("%w: malformed cursor", ErrInvalid)
	}
	return time.Unix(0, n).UTC(), id, nil
}

// connCursorPrefix tells a connection cursor from a document cursor, so that
// one is never taken for the other.
const connCursorPrefix = "conn|"

// EncodeConnectionCursor makes the opaque cursor that resumes after the
// connection with id.
func EncodeConnectionCursor(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(connCursorPrefix + id))
}

// DecodeConnectionCursor returns the connection id a cursor resumes after.
func DecodeConnectionCursor(c string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(c)
	id, ok := strings.CutPrefix(string(raw), connCursorPrefix)
	if err != nil || !ok || id == "" {
		return "", fmt.Errorf("%w: malformed cursor", ErrInvalid)
	}
	return id, nil
}

// EffectiveLimit applies the list defaults and bounds to q.Limit.
func (q ConnectionPageQuery) EffectiveLimit() int { return Filter{Limit: q.Limit}.EffectiveLimit() }
