// Package dlq owns the dead-letter queue's message format and the operator's
// view of it: what the normalizer writes when it gives up on a RAW message,
// and how an operator lists those entries and replays them after a fix.
package dlq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/itsmhub/itsm/pkg/broker"
)

// Headers a dead-lettered message carries besides the original's own
// (contract: operators and the replay read them).
const (
	// HeaderError is why the message was given up on.
	HeaderError = "Itsm-Error"
	// HeaderOriginalSubject is where the message was consumed from, and
	// where a replay publishes it again.
	HeaderOriginalSubject = "Itsm-Original-Subject"
	// HeaderDeliveries is how many times it was delivered before giving up.
	HeaderDeliveries = "Itsm-Deliveries"
	// HeaderOriginalMsgID keeps the original Nats-Msg-Id for tracing; it is
	// not reused on replay (RAW's dedupe would drop the replay).
	HeaderOriginalMsgID = "Itsm-Original-Msg-Id"
	// HeaderOriginalSeq is the original's stream sequence.
	HeaderOriginalSeq = "Itsm-Original-Seq"
	// HeaderReplayedFrom marks a replayed message with the DLQ sequence it
	// came from.
	HeaderReplayedFrom = "Itsm-Replayed-From"
	// HeaderTruncated is set, to the original body's length, on a copy whose
	// body had to be cut to fit NATS's max_payload; it cannot be replayed.
	HeaderTruncated = "Itsm-Truncated"
)

// ErrTruncated: the entry's body was cut to fit and cannot be replayed.
var ErrTruncated = errors.New("body was truncated to fit the DLQ; replay it from its source")

// maxCopy bounds a DLQ copy, body and headers, with room to spare below the
// max_payload NATS refuses a message above: a copy that does not fit would
// fail to publish, and its message would be redelivered forever.
const maxCopy = broker.MaxPayload - 64<<10

// maxErrorLen bounds the error header: headers travel with every delivery and
// an error may quote a large part of a payload.
const maxErrorLen = 1024

// Message builds the DLQ copy of a message that failed for good: same body,
// the original headers (without JetStream's own, which would make the DLQ
// stream dedupe or reject it), and the cause, subject and delivery count.
func Message(subject string, hdr nats.Header, data []byte, streamSeq, deliveries uint64, cause error) *nats.Msg {
	out := nats.NewMsg(broker.DLQSubject(subject))
	out.Data = data
	for k, vs := range hdr {
		if strings.HasPrefix(k, "Nats-") {
			continue
		}
		for _, v := range vs {
			// Header values come from outside (a delivery's headers); bounded
			// like the error, so the headers cannot crowd out the body.
			out.Header.Add(k, headerValue(v))
		}
	}
	if id := hdr.Get(jetstream.MsgIDHeader); id != "" {
		out.Header.Set(HeaderOriginalMsgID, headerValue(id))
	}
	reason := "unknown error"
	if cause != nil {
		reason = cause.Error()
	}
	out.Header.Set(HeaderError, headerValue(reason))
	out.Header.Set(HeaderOriginalSubject, subject)
	out.Header.Set(HeaderOriginalSeq, strconv.FormatUint(streamSeq, 10))
	out.Header.Set(HeaderDeliveries, strconv.FormatUint(deliveries, 10))
	// Every body the platform accepts is at most broker.MaxRecord, so this
	// never cuts one; it keeps the promise for any other writer of RAW.
	if room := maxCopy - headerSize(out.Header); len(data) > room {
		out.Header.Set(HeaderTruncated, strconv.Itoa(len(data)))
		out.Data = data[:max(room-len(HeaderTruncated)-32, 0)]
	}
	return out
}

// headerSize is the encoded size of h ("Key: value\r\n" per value, plus
// the version line and the blank line).
func headerSize(h nats.Header) int {
	n := len("NATS/1.0\r\n\r\n")
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// MsgID is the Nats-Msg-Id of the DLQ copy of a RAW message: if the
// normalizer dead-letters a message and dies before acking it, the
// redelivery's second copy is dropped by the DLQ stream's dedupe.
func MsgID(streamSeq uint64) string { return "dlq:" + strconv.FormatUint(streamSeq, 10) }

// headerValue makes text safe for a NATS header: CR and LF would end the
// header early and corrupt the message.
func headerValue(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxErrorLen {
		// Cut on a rune boundary so the header stays valid UTF-8.
		cut := maxErrorLen
		for cut > 0 && s[cut]&0xC0 == 0x80 {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// Entry is one dead-lettered message.
type Entry struct {
	// Seq is the DLQ stream sequence: the handle Replay takes.
	Seq             uint64
	Subject         string
	OriginalSubject string
	Error           string
	Deliveries      int
	// Time is when the message was dead-lettered.
	Time    time.Time
	Headers nats.Header
	Data    []byte
}

// Filter selects entries. Empty fields do not filter.
type Filter struct {
	// Subject filters on the ORIGINAL subject and may use wildcards, e.g.
	// "raw.jira.<connection>.>".
	Subject string
	// ConnectionID keeps entries of one connection (Itsm-Connection-Id).
	ConnectionID string
	// StartSeq skips entries before this DLQ sequence (paging).
	StartSeq uint64
}

func (f Filter) subject() string {
	if f.Subject == "" {
		return broker.DLQSubject(">")
	}
	return broker.DLQSubject(f.Subject)
}

// List returns up to limit entries matching f, oldest first; limit <= 0
// means no limit.
func List(ctx context.Context, js jetstream.JetStream, f Filter, limit int) ([]Entry, error) {
	st, err := js.Stream(ctx, broker.StreamDLQ)
	if err != nil {
		return nil, fmt.Errorf("dlq stream: %w", err)
	}
	var out []Entry
	seq := max(f.StartSeq, 1)
	for limit <= 0 || len(out) < limit {
		// Next message at or after seq on the subject: one request per entry,
		// which is fine for an operator's tool and needs no consumer.
		raw, err := st.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(f.subject()))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read dlq at %d: %w", seq, err)
		}
		seq = raw.Sequence + 1
		e := entryOf(raw)
		if f.ConnectionID != "" && e.Headers.Get("Itsm-Connection-Id") != f.ConnectionID {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

func entryOf(raw *jetstream.RawStreamMsg) Entry {
	hdr := raw.Header
	if hdr == nil {
		hdr = nats.Header{}
	}
	orig := hdr.Get(HeaderOriginalSubject)
	if orig == "" {
		orig = strings.TrimPrefix(raw.Subject, broker.DLQSubject(""))
	}
	deliveries, _ := strconv.Atoi(hdr.Get(HeaderDeliveries))
	return Entry{Seq: raw.Sequence, Subject: raw.Subject, OriginalSubject: orig, Error: hdr.Get(HeaderError),
		Deliveries: deliveries, Time: raw.Time, Headers: hdr, Data: raw.Data}
}

// ReplayMessage is the message a replay of e publishes: the original
// subject, body and identity headers, without the DLQ's own headers and with
// a Nats-Msg-Id of its own. That id is derived from the entry (not the
// original's, which RAW's dedupe would drop), so replaying an entry twice,
// e.g. after a failed delete, still reaches RAW once.
func ReplayMessage(e Entry) *nats.Msg {
	out := nats.NewMsg(e.OriginalSubject)
	out.Data = e.Data
	for k, vs := range e.Headers {
		switch {
		case strings.HasPrefix(k, "Nats-"), k == HeaderError, k == HeaderOriginalSubject,
			k == HeaderDeliveries, k == HeaderOriginalMsgID, k == HeaderOriginalSeq, k == HeaderReplayedFrom:
			continue
		}
		out.Header[k] = append([]string(nil), vs...)
	}
	out.Header.Set(HeaderReplayedFrom, strconv.FormatUint(e.Seq, 10))
	out.Header.Set(jetstream.MsgIDHeader, replayMsgID(e))
	return out
}

func replayMsgID(e Entry) string {
	// The time makes the id unique even if the DLQ stream is recreated and
	// its sequences start again.
	return "dlq-replay:" + strconv.FormatUint(e.Seq, 10) + ":" + strconv.FormatInt(e.Time.UnixNano(), 10)
}

// Replay republishes the given entries to their original subjects and
// deletes each from the DLQ once RAW has acknowledged it. It stops at the
// first failure and reports how many were replayed; a missing sequence is a
// failure (it was replayed or expired already).
func Replay(ctx context.Context, js jetstream.JetStream, seqs []uint64) (int, error) {
	st, err := js.Stream(ctx, broker.StreamDLQ)
	if err != nil {
		return 0, fmt.Errorf("dlq stream: %w", err)
	}
	n := 0
	for _, seq := range seqs {
		raw, err := st.GetMsg(ctx, seq)
		if err != nil {
			return n, fmt.Errorf("read dlq entry %d: %w", seq, err)
		}
		if err := replayOne(ctx, js, st, entryOf(raw)); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// ReplayAll replays every entry matching f, oldest first.
func ReplayAll(ctx context.Context, js jetstream.JetStream, f Filter) (int, error) {
	st, err := js.Stream(ctx, broker.StreamDLQ)
	if err != nil {
		return 0, fmt.Errorf("dlq stream: %w", err)
	}
	n := 0
	for {
		// Pages, so that a large DLQ is never held in memory at once.
		page, err := List(ctx, js, f, 100)
		if err != nil {
			return n, err
		}
		if len(page) == 0 {
			return n, nil
		}
		for _, e := range page {
			if err := replayOne(ctx, js, st, e); err != nil {
				return n, err
			}
			n++
		}
		f.StartSeq = page[len(page)-1].Seq + 1
	}
}

func replayOne(ctx context.Context, js jetstream.JetStream, st jetstream.Stream, e Entry) error {
	if !strings.HasPrefix(e.Subject, broker.DLQSubject("")) {
		return fmt.Errorf("dlq entry %d: subject %q is not a dead letter", e.Seq, e.Subject)
	}
	if e.OriginalSubject == "" || strings.HasPrefix(e.OriginalSubject, broker.DLQSubject("")) {
		return fmt.Errorf("dlq entry %d: no original subject to replay to", e.Seq)
	}
	if e.Headers.Get(HeaderTruncated) != "" {
		return fmt.Errorf("dlq entry %d: %w", e.Seq, ErrTruncated)
	}
	if _, err := js.PublishMsg(ctx, ReplayMessage(e)); err != nil {
		return fmt.Errorf("replay dlq entry %d to %s: %w", e.Seq, e.OriginalSubject, err)
	}
	if err := st.DeleteMsg(ctx, e.Seq); err != nil {
		return fmt.Errorf("dlq entry %d replayed but not deleted (a second replay is deduplicated): %w", e.Seq, err)
	}
	return nil
}
