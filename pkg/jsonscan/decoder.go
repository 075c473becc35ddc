package jsonscan

import (
	"bytes"
	"sync"

	"github.com/go-json-experiment/json/jsontext"
)

// V1Syntax are json.Unmarshal's (v1) tolerances, for reading what it
// reads: repeated names (the last wins) and invalid UTF-8 (replaced).
var V1Syntax = []jsontext.Options{jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true)}

// Decoder is a jsontext.Decoder that reads one JSON value in place (from a
// bytes.Buffer it reads without copying), with V1Syntax. Decoders are
// pooled: the hot paths that use them read many small values, and setting
// one up costs more than reading a small object with it.
type Decoder struct {
	jsontext.Decoder
	in bytes.Buffer
}

var decoders = sync.Pool{New: func() any { return new(Decoder) }}

// NewDecoder returns a pooled decoder reading raw; Release it when done.
func NewDecoder(raw []byte) *Decoder {
	d := decoders.Get().(*Decoder)
	d.in = *bytes.NewBuffer(raw)
	d.Reset(&d.in, V1Syntax...)
	return d
}

// Release returns d to the pool. It keeps its input until its next use,
// which costs less than resetting it now (a pool is emptied by the GC).
func (d *Decoder) Release() { decoders.Put(d) }
