// Package jsonspan locates the members of a JSON object and the elements of
// a JSON array inside their document, as byte offsets, so that a caller can
// slice them out (or drop them) without decoding and re-encoding them. It
// reads with jsontext, the project's one tokenizer: every document it
// accepts is valid JSON.
package jsonspan

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// ErrNotObject and ErrNotArray: the document is valid but of another kind.
var (
	ErrNotObject = errors.New("not a JSON object")
	ErrNotArray  = errors.New("not a JSON array")
)

// Member is one member of an object: its name (unescaped) and where its
// name (the opening quote) and its value start and end in the document.
type Member struct {
	Name                        string
	NameStart, ValStart, ValEnd int
}

// Value is the member's value, sliced from doc.
func (m Member) Value(doc []byte) []byte { return doc[m.ValStart:m.ValEnd] }

type reader struct {
	r bytes.Reader
	d jsontext.Decoder
}

var readers = sync.Pool{New: func() any { return new(reader) }}

func open(b []byte) *reader {
	rd := readers.Get().(*reader)
	rd.r.Reset(b)
	// As json.Unmarshal (v1) reads vendors' documents: a repeated name or
	// invalid UTF-8 does not make a record unreadable.
	rd.d.Reset(&rd.r, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	return rd
}

func (rd *reader) close() {
	rd.r.Reset(nil)
	rd.d.Reset(&rd.r)
	readers.Put(rd)
}

// Members calls fn for each member of the object doc, in order; an error
// from fn stops the walk and is returned. Malformed input is an error, met
// where it starts: fn may have seen the members before it.
func Members(doc []byte, fn func(m Member) error) error {
	rd := open(doc)
	defer rd.close()
	d := &rd.d
	tok, err := d.ReadToken()
	if err != nil {
		return fmt.Errorf("json: %w", err)
	}
	if tok.Kind() != '{' {
		return ErrNotObject
	}
	for d.PeekKind() != '}' {
		name, err := d.ReadValue()
		if err != nil {
			return fmt.Errorf("json: %w", err)
		}
		m := Member{NameStart: int(d.InputOffset()) - len(name)}
		if bytes.IndexByte(name, '\\') < 0 {
			m.Name = string(name[1 : len(name)-1])
		} else {
			s, err := jsontext.AppendUnquote(nil, name)
			if err != nil {
				return fmt.Errorf("json: %w", err)
			}
			m.Name = string(s)
		}
		v, err := d.ReadValue()
		if err != nil {
			return fmt.Errorf("json: %w", err)
		}
		m.ValEnd = int(d.InputOffset())
		m.ValStart = m.ValEnd - len(v)
		if err := fn(m); err != nil {
			return err
		}
	}
	if _, err := d.ReadToken(); err != nil {
		return fmt.Errorf("json: %w", err)
	}
	return trailing(d)
}

// Elements calls fn with the offsets of each element of the array doc.
func Elements(doc []byte, fn func(start, end int) error) error {
	rd := open(doc)
	defer rd.close()
	d := &rd.d
	tok, err := d.ReadToken()
	if err != nil {
		return fmt.Errorf("json: %w", err)
	}
	if tok.Kind() != '[' {
		return ErrNotArray
	}
	for d.PeekKind() != ']' {
		v, err := d.ReadValue()
		if err != nil {
			return fmt.Errorf("json: %w", err)
		}
		end := int(d.InputOffset())
		if err := fn(end-len(v), end); err != nil {
			return err
		}
	}
	if _, err := d.ReadToken(); err != nil {
		return fmt.Errorf("json: %w", err)
	}
	return trailing(d)
}

// trailing refuses anything but whitespace after the document.
func trailing(d *jsontext.Decoder) error {
	if _, err := d.ReadToken(); err != io.EOF {
		return errors.New("json: data after the document")
	}
	return nil
}
