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
